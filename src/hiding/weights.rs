//! Saving and loading the hiding network as safetensors with HiNet's parameter names and the config as
//! metadata; a HiNet-layout state dict converted to safetensors (no metadata) loads as is.

use std::collections::BTreeMap;
use std::path::Path;

use super::model::{HidingConfig, InvertibleHiding};
use crate::safetensors_io::{self, SaveDType};
use crate::{Error, Result};

pub fn save(net: &InvertibleHiding, path: &Path, dtype: SaveDType, extra: &BTreeMap<String, String>) -> Result<()> {
    let mut meta = net.cfg.to_metadata();
    meta.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    safetensors_io::save(path, &net.named_parameters(), &meta, dtype)
}

/// The config a set of HiNet tensor names and shapes implies (blocks, channels, growth).
fn infer_config(path: &Path, w: &safetensors_io::Weights) -> Result<HidingConfig> {
    let blocks = w
        .tensors
        .keys()
        .filter_map(|k| k.strip_prefix("inv")?.split('.').next()?.parse::<usize>().ok())
        .max()
        .ok_or_else(|| Error::format(path, "no `inv{k}.*` tensors: not a hiding-network weights file"))?;
    let first = w.get("inv1.f.conv1.weight").ok_or_else(|| Error::format(path, "missing key `inv1.f.conv1.weight`"))?;
    let s = first.shape();
    if s.len() != 4 || s[1] % 4 != 0 {
        return Err(Error::format(path, format!("`inv1.f.conv1.weight` has shape {}, expected (growth, 4C, 3, 3)", crate::shape::fmt_shape(s))));
    }
    Ok(HidingConfig { channels: s[1] / 4, blocks, growth: s[0], ..HidingConfig::default() })
}

/// Load weights (f32, f16 or bf16) into a new network; the config comes from the metadata, or from the
/// tensor names and shapes when there is none. Missing, unexpected and mis-shaped tensors are errors.
/// Keys under `optim.` (a training checkpoint's optimizer state) are left in the returned `Weights`.
///
/// Checked before anything is built: the file is a hiding network (not another model's weights), the
/// metadata agrees with the tensors it holds (so absurd values such as a million blocks are refused
/// without allocating them), and every parameter is finite (one NaN would make every published pixel 0).
pub fn load(path: &Path) -> Result<(InvertibleHiding, safetensors_io::Weights)> {
    let mut w = safetensors_io::load(path)?;
    if let Some(m) = w.metadata.get("deephide.model") {
        if m != "invertible_hiding" {
            return Err(Error::format(path, format!("holds a `{m}` model, not a hiding network (deephide.model = {m})")));
        }
    }
    let inferred = infer_config(path, &w)?;
    let cfg = HidingConfig::from_metadata(&w.metadata, &inferred).map_err(|e| Error::format(path, e.to_string()))?;
    for (what, meta, tensors) in [("blocks", cfg.blocks, inferred.blocks), ("channels", cfg.channels, inferred.channels), ("growth", cfg.growth, inferred.growth)] {
        if meta != tensors {
            return Err(Error::format(path, format!("metadata says {what} = {meta} but the tensors hold {tensors}")));
        }
    }
    for (k, t) in &w.tensors {
        if k.starts_with("optim.") {
            continue;
        }
        let v = t.to_vec_f32()?;
        if let Some((i, x)) = v.iter().enumerate().find(|(_, x)| !x.is_finite() || x.abs() > 1e6) {
            return Err(Error::format(path, format!("tensor `{k}` has a non-finite or absurd value {x} at element {i}; the weights are corrupt")));
        }
    }
    let net = InvertibleHiding::new(cfg, 0)?;
    crate::no_grad(|| -> Result<()> {
        for (name, p) in net.named_parameters() {
            p.assign(&w.take(&name, p.shape())?.to_dtype(p.dtype())?)?;
        }
        Ok(())
    })?;
    let extra: Vec<&String> = w.tensors.keys().filter(|k| !k.starts_with("optim.")).collect();
    if !extra.is_empty() {
        return Err(Error::format(path, format!("unexpected tensor(s) {extra:?}: not parameters of a {}-block network", net.cfg.blocks)));
    }
    Ok((net, w))
}
