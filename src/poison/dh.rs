//! Deep Hiding as a peer method: exactly what `deephide hide` publishes with the shipped weights (or
//! `--weights`), so that it stands in the same table as the others.
//!
//! The shipped network hides one fixed semantic image per class (`--semantic single`, seed 0, as it was
//! trained); `--seed` does not change it. The bound the weights were trained with is applied, then the
//! L-inf clip at `--eps`.

use std::path::{Path, PathBuf};

use super::{OnProgress, PoisonOptions};
use crate::data::Dataset;
use crate::eval::json::Json;
use crate::hiding::{self, SecretPool};
use crate::semantic::SemanticSource;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// The hiding network shipped with deephide, relative to the repository (or the working directory).
pub const SHIPPED_WEIGHTS: &str = "weights/hiding-fashion-mnist-align-sign.safetensors";

/// The shipped weights: in the working directory, else in the source tree this binary was built from.
pub fn shipped_weights() -> PathBuf {
    let here = PathBuf::from(SHIPPED_WEIGHTS);
    if here.is_file() {
        return here;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join(SHIPPED_WEIGHTS)
}

pub fn poison(clean: &Dataset, o: &PoisonOptions, on_progress: &mut OnProgress) -> Result<(Dataset, Vec<(String, Json)>, Vec<Tensor>)> {
    let path = o.weights.clone().unwrap_or_else(shipped_weights);
    let (net, w) = hiding::weights::load(&path)?;
    if net.cfg.channels != clean.channels {
        return Err(Error::msg(format!(
            "dh: {} hides {}-channel images, the data has {} channels; train a network for it (`deephide train`) and pass --weights",
            path.display(),
            net.cfg.channels,
            clean.channels
        )));
    }
    for p in net.parameters() {
        p.move_to_device_(&o.device)?;
    }
    let bound = hiding::bound_eps_of(&w.metadata)?;
    let src = SemanticSource::parse("single", 0)?;
    let pool = SecretPool::new(&src, clean.classes, 1, (clean.channels, clean.height, clean.width))?;
    let n = clean.len();
    let (out, stats) = hiding::protect_dataset(&net, clean, &pool, o.eps, bound, o.batch.max(1), &o.device, |k| on_progress(k, n, "hiding"))?;
    // preview: the secret revealed from the first published image of each class.
    let mut idx = Vec::new();
    for y in 0..clean.classes.min(10) {
        if let Some(i) = clean.labels.iter().position(|&l| l == y) {
            idx.push(i);
        }
    }
    let p = out.batch(&idx)?.to_device(&o.device)?;
    let (c, h, wd) = (clean.channels, clean.height, clean.width);
    let z = Tensor::zeros(&[idx.len(), 4 * c, h / 2, wd / 2], crate::DType::F32).to_device(&o.device)?;
    let (_, r) = crate::no_grad(|| net.reveal(&p, &z))?;
    let r = r.to_device(&crate::Device::Cpu)?.clamp(0.0, 1.0)?;
    let extra = vec![
        ("weights".to_string(), Json::str(path.display().to_string())),
        ("reveal_psnr_db".to_string(), Json::Num(stats.reveal_psnr.mean())),
        ("reveal_class_acc".to_string(), Json::Num(stats.reveal_class_acc)),
    ];
    Ok((out, extra, vec![r]))
}
