//! Resumable state of the long poison loops (em, em-classwise, rem, tap): after every round the
//! perturbation so far, the surrogate's parameters and buffers, its SGD momentum and the round counter go to
//! one safetensors file, written atomically. `poison --resume` continues from it exactly (every round's
//! randomness derives from the seed and the round index), so a killed run loses at most one round.
//!
//! The file carries a fingerprint of the run (method, settings, seed, data size and labels); a state of
//! another run is refused rather than silently mixed in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::data::Dataset;
use crate::nn::module::Module;
use crate::optim::Sgd;
use crate::safetensors_io::{self, SaveDType};
use crate::tensor::Tensor;
use crate::{Error, Result};

/// Where the state of a run publishing to `out` lives: beside it, hidden.
pub fn state_path(out: &Path) -> PathBuf {
    let name = out.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "out".into());
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    dir.join(format!(".{name}.poison-state.safetensors"))
}

/// What identifies a run: a state is only resumed by the same method, settings, seed and data.
pub fn fingerprint(method: &str, settings: &str, seed: u64, data: &Dataset) -> String {
    // FNV-1a over the labels and a sample of the pixels: cheap, and different data sets differ.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    for &l in &data.labels {
        for b in (l as u32).to_le_bytes() {
            eat(b);
        }
    }
    for &b in data.images.iter().step_by(97) {
        eat(b);
    }
    format!("{method}|{settings}|seed {seed}|{} images {}x{}x{}|{h:016x}", data.len(), data.channels, data.height, data.width)
}

/// Write the state (atomically).
pub fn save(path: &Path, fingerprint: &str, round: usize, delta: &[f32], model: &dyn Module, sgd: Option<&Sgd>) -> Result<()> {
    let mut tensors: Vec<(String, Tensor)> = vec![("delta".into(), Tensor::from_vec(delta.to_vec(), &[delta.len()])?)];
    for (k, t) in model.state_dict() {
        tensors.push((format!("model.{k}"), t));
    }
    if let Some(sgd) = sgd {
        for (i, b) in sgd.export_state().into_iter().enumerate() {
            if let Some(b) = b {
                tensors.push((format!("sgd.{i}"), b));
            }
        }
    }
    let mut meta = BTreeMap::new();
    meta.insert("deephide.poison_state".into(), fingerprint.to_string());
    meta.insert("round".into(), round.to_string());
    safetensors_io::save(path, &tensors, &meta, SaveDType::F32)
}

/// Load a state written by [`save`] into `model` and `sgd`; returns (rounds done, delta).
pub fn load(path: &Path, fingerprint: &str, delta_len: usize, model: &dyn Module, sgd: Option<&mut Sgd>) -> Result<(usize, Vec<f32>)> {
    let mut w = safetensors_io::load(path)?;
    let got = w.metadata.get("deephide.poison_state").cloned().unwrap_or_default();
    if got != fingerprint {
        return Err(Error::format(
            path,
            format!("this state belongs to another run ({got}); this run is ({fingerprint}). Remove the file or rerun without --resume"),
        ));
    }
    let round: usize = w
        .metadata
        .get("round")
        .and_then(|r| r.parse().ok())
        .ok_or_else(|| Error::format(path, "metadata `round` missing or not a number"))?;
    let delta = w.take("delta", &[delta_len])?.to_vec_f32()?;
    crate::no_grad(|| -> Result<()> {
        for (k, t) in model.state_dict() {
            t.assign(&w.take(&format!("model.{k}"), t.shape())?.to_dtype(t.dtype())?.to_device(&t.device())?)?;
        }
        Ok(())
    })?;
    if let Some(sgd) = sgd {
        let n = sgd.params().len();
        let mut bufs = Vec::with_capacity(n);
        for (i, p) in sgd.params().to_vec().iter().enumerate() {
            let key = format!("sgd.{i}");
            bufs.push(if w.get(&key).is_some() { Some(w.take(&key, p.shape())?.to_device(&p.device())?) } else { None });
        }
        sgd.import_state(bufs)?;
    }
    if let Some(k) = w.tensors.keys().next() {
        return Err(Error::format(path, format!("unexpected tensor `{k}` in a poison state")));
    }
    Ok((round, delta))
}

use crate::optim::Optimizer as _;
