//! `deephide kernels`: per CUDA kernel, the registers, shared memory and spills ptxas assigns (through
//! NVRTC, no GPU needed), the launch configuration the op code uses and the occupancy it implies.

use clap::Args;

#[derive(Args)]
pub struct KernelsArgs {
    /// Real architecture(s) to compile for, like sm_90 (repeatable); default sm_80 and sm_90.
    #[arg(long)]
    arch: Vec<String>,
    /// Exit with status 1 if a conv/matmul kernel spills registers or a kernel has no launch configuration.
    #[arg(long)]
    check: bool,
    /// Also report this .cu file (repeatable), e.g. a kernel being written.
    #[arg(long)]
    extra: Vec<std::path::PathBuf>,
}

#[cfg(feature = "cuda")]
pub fn run(a: KernelsArgs) -> deephide::Result<bool> {
    use deephide::backend::cuda::{nvrtc, table};
    let archs = if a.arch.is_empty() { vec!["sm_80".to_string(), "sm_90".to_string()] } else { a.arch.clone() };
    let mut extra = Vec::new();
    for p in &a.extra {
        let src = std::fs::read_to_string(p).map_err(|e| deephide::Error::io(p, e))?;
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "extra.cu".into());
        extra.push((name, src));
    }
    nvrtc::version().map_err(deephide::Error::Device)?;
    let mut problems = Vec::new();
    for arch in &archs {
        let rows = table::kernel_table(arch, &extra)?;
        println!("{arch} (NVRTC {}): {} kernels", nvrtc::version_string(), rows.len());
        print!("{}", table::format_table(&rows));
        println!();
        problems.extend(table::check_problems(&rows));
    }
    for k in table::stale_launch_entries() {
        problems.push(format!("{k} is in the launch table but no kernel file declares it"));
    }
    if a.check {
        if problems.is_empty() {
            println!("check passed: no spills in conv/matmul kernels, every kernel has a launch configuration");
        } else {
            for p in &problems {
                println!("check FAILED: {p}");
            }
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(not(feature = "cuda"))]
pub fn run(_: KernelsArgs) -> deephide::Result<bool> {
    Err(deephide::Error::Device("this deephide was built without the `cuda` feature".into()))
}
