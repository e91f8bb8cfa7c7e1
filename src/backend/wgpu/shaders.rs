//! The one table of WGSL sources, and their validation with naga (no device needed).
//!
//! A new shader is added here and nowhere else: the pipeline cache looks sources up by file name in
//! [`SHADER_SOURCES`], and [`validate_all_shaders`] (run by the test suite even without an adapter) checks
//! every entry.

use crate::{Error, Result};
use wgpu::naga;

/// Every WGSL source of the crate, as `(file name, source)`. The file name (e.g. `"elementwise.wgsl"`) is
/// the key the launch code passes to [`super::WgpuBackend::dispatch`].
pub const SHADER_SOURCES: &[(&str, &str)] = &[
    ("elementwise.wgsl", include_str!("../../../shaders/elementwise.wgsl")),
    ("haar.wgsl", include_str!("../../../shaders/haar.wgsl")),
    ("unary.wgsl", include_str!("../../../shaders/unary.wgsl")),
    ("layout.wgsl", include_str!("../../../shaders/layout.wgsl")),
    ("reduce.wgsl", include_str!("../../../shaders/reduce.wgsl")),
    ("index_select.wgsl", include_str!("../../../shaders/index_select.wgsl")),
    ("matmul.wgsl", include_str!("../../../shaders/matmul.wgsl")),
    ("conv2d.wgsl", include_str!("../../../shaders/conv2d.wgsl")),
    ("pool.wgsl", include_str!("../../../shaders/pool.wgsl")),
    ("optim.wgsl", include_str!("../../../shaders/optim.wgsl")),
];

/// Source of the shader file `name`, or an error listing the known files.
pub fn shader_source(name: &str) -> Result<&'static str> {
    lookup(name).map(|(_, src)| src)
}

/// `(file name, source)` entry of [`SHADER_SOURCES`] for `name`, or an error listing the known files.
pub(crate) fn lookup(name: &str) -> Result<(&'static str, &'static str)> {
    SHADER_SOURCES.iter().find(|(n, _)| *n == name).copied().ok_or_else(|| {
        let known: Vec<&str> = SHADER_SOURCES.iter().map(|(n, _)| *n).collect();
        Error::msg(format!("wgpu: no shader file `{name}` in SHADER_SOURCES (known: {})", known.join(", ")))
    })
}

/// Parse and validate one WGSL source with naga; the error carries naga's own diagnostic (with the
/// offending line) under the given file name.
pub fn validate_wgsl(name: &str, source: &str) -> Result<naga::Module> {
    let module = naga::front::wgsl::parse_str(source).map_err(|e| {
        Error::msg(format!(
            "wgpu: shader {name} does not parse: {}",
            e.emit_to_string_with_path(source, &format!("shaders/{name}"))
        ))
    })?;
    // Capabilities::default() is the portable WebGPU baseline: a shader that validates here does not
    // depend on a feature of this machine's adapter.
    let mut validator = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default(),
    );
    validator.validate(&module).map_err(|e| {
        Error::msg(format!(
            "wgpu: shader {name} fails validation: {}",
            e.emit_to_string_with_path(source, &format!("shaders/{name}"))
        ))
    })?;
    Ok(module)
}

/// Validate every entry of [`SHADER_SOURCES`]; the first failure is returned.
pub fn validate_all_shaders() -> Result<()> {
    for (name, source) in SHADER_SOURCES {
        validate_wgsl(name, source)?;
    }
    Ok(())
}

/// Compute entry points of a shader file, as naga sees them (used for clearer errors on a wrong name).
pub fn entry_points(name: &str) -> Result<Vec<String>> {
    let module = validate_wgsl(name, shader_source(name)?)?;
    Ok(module
        .entry_points
        .iter()
        .filter(|ep| ep.stage == naga::ShaderStage::Compute)
        .map(|ep| ep.name.clone())
        .collect())
}
