//! Composite ops, built only from primitive ops so they run (and differentiate) on every device:
//! softmax family, losses, batch normalisation, cosine similarity, dropout.

use crate::autograd::no_grad;
use crate::dtype::DType;
use crate::rng::Rng;
use crate::shape::fmt_shape;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// log(softmax(x)) along `axis`, computed as x - max - log(sum(exp(x - max))) for stability.
/// The shift is detached: log_softmax does not depend on it, so no gradient is lost.
pub fn log_softmax(x: &Tensor, ax: isize) -> Result<Tensor> {
    // One fused kernel where the device has it.
    if x.device().is_cuda() {
        return x.log_softmax_fused(ax);
    }
    let m = x.max_axis(ax, true)?.detach();
    let s = x.sub(&m)?;
    let lse = s.exp()?.sum_axes(&[ax], true)?.log()?;
    s.sub(&lse)
}

pub fn softmax(x: &Tensor, ax: isize) -> Result<Tensor> {
    log_softmax(x, ax)?.exp()
}

/// Rows of a (N, K) tensor: 1 at the label, 0 elsewhere, with optional label smoothing
/// (1 - s + s/K at the label, s/K elsewhere, as PyTorch).
pub fn one_hot(labels: &[usize], classes: usize, smoothing: f64, dtype: DType) -> Result<Tensor> {
    let off = smoothing / classes as f64;
    let mut v = vec![off; labels.len() * classes];
    for (i, &l) in labels.iter().enumerate() {
        if l >= classes {
            return Err(Error::msg(format!("label {l} at position {i} is out of range for {classes} classes")));
        }
        v[i * classes + l] += 1.0 - smoothing;
    }
    Tensor::from_f64_vec(&v, &[labels.len(), classes], dtype)
}

/// Mean cross-entropy of logits (N, K) against integer labels, with optional label smoothing in [0, 1).
pub fn cross_entropy(logits: &Tensor, labels: &[usize], smoothing: f64) -> Result<Tensor> {
    let [n, k] = logits.shape() else {
        return Err(Error::shape("cross_entropy", format!("logits must be (N, K), got {}", fmt_shape(logits.shape()))));
    };
    if labels.len() != *n {
        return Err(Error::shape("cross_entropy", format!("{} labels for logits {}", labels.len(), fmt_shape(logits.shape()))));
    }
    if !(0.0..1.0).contains(&smoothing) {
        return Err(Error::msg(format!("cross_entropy: label smoothing must be in [0, 1), got {smoothing}")));
    }
    let target = one_hot(labels, *k, smoothing, logits.dtype())?.to_device(&logits.device())?;
    let lp = log_softmax(logits, 1)?;
    lp.mul(&target)?.sum_all()?.mul_scalar(-1.0 / *n as f64)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    Sum,
    Mean,
}

/// Squared error between `a` and `b` (same shape), summed or averaged over all elements.
pub fn mse(a: &Tensor, b: &Tensor, reduction: Reduction) -> Result<Tensor> {
    if a.shape() != b.shape() {
        return Err(Error::shape("mse", format!("shapes differ: {} vs {}", fmt_shape(a.shape()), fmt_shape(b.shape()))));
    }
    let s = a.sub(b)?.square()?.sum_all()?;
    match reduction {
        Reduction::Sum => Ok(s),
        Reduction::Mean => s.mul_scalar(1.0 / a.numel().max(1) as f64),
    }
}

/// Cosine similarity along `axis` (kept out of the result), as PyTorch: x.y / max(|x| |y|, eps).
pub fn cosine_similarity(a: &Tensor, b: &Tensor, ax: isize, eps: f64) -> Result<Tensor> {
    if a.shape() != b.shape() {
        return Err(Error::shape("cosine_similarity", format!("shapes differ: {} vs {}", fmt_shape(a.shape()), fmt_shape(b.shape()))));
    }
    let dot = a.mul(b)?.sum_axes(&[ax], false)?;
    let na = a.square()?.sum_axes(&[ax], false)?;
    let nb = b.square()?.sum_axes(&[ax], false)?;
    let denom = na.mul(&nb)?.sqrt()?;
    let floor = denom.full_like(eps)?;
    dot.div(&denom.maximum(&floor)?)
}

/// Batch normalisation over (N, H, W) per channel of an NCHW tensor (or over N of an (N, C) tensor).
/// Training: batch statistics, and the running stats are updated in place
/// (`running = (1 - momentum) * running + momentum * batch`, unbiased variance, as PyTorch).
/// Evaluation: the running statistics.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm(
    x: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    training: bool,
    momentum: f64,
    eps: f64,
) -> Result<Tensor> {
    let r = x.rank();
    if r != 2 && r != 4 {
        return Err(Error::shape("batch_norm", format!("expected (N, C) or (N, C, H, W), got {}", fmt_shape(x.shape()))));
    }
    let c = x.shape()[1];
    for (name, t) in [("running_mean", Some(running_mean)), ("running_var", Some(running_var)), ("weight", weight), ("bias", bias)] {
        if let Some(t) = t {
            if t.shape() != [c] {
                return Err(Error::shape("batch_norm", format!("{name} has shape {}, expected ({c},) for input {}", fmt_shape(t.shape()), fmt_shape(x.shape()))));
            }
        }
    }
    let axes: Vec<isize> = if r == 4 { vec![0, 2, 3] } else { vec![0] };
    let bshape: Vec<usize> = if r == 4 { vec![1, c, 1, 1] } else { vec![1, c] };
    let count = x.numel() / c.max(1);
    if training && count < 2 {
        return Err(Error::msg(format!("batch_norm: training needs more than one value per channel, input {}", fmt_shape(x.shape()))));
    }
    if training && (x.device().is_cpu() || x.device().is_cuda()) {
        // The fused kernel (CPU or CUDA): same result, a fraction of the passes over the data.
        let (y, mean, var) = x.batch_norm_train(weight, bias, eps)?;
        no_grad(|| -> Result<()> {
            let unbias = count as f64 / (count - 1) as f64;
            let rm = running_mean.to_vec_f64()?;
            let rv = running_var.to_vec_f64()?;
            let nm: Vec<f64> = rm.iter().zip(&mean).map(|(r, m)| (1.0 - momentum) * r + momentum * m).collect();
            let nv: Vec<f64> = rv.iter().zip(&var).map(|(r, v)| (1.0 - momentum) * r + momentum * v * unbias).collect();
            running_mean.assign(&Tensor::from_f64_vec(&nm, &[c], running_mean.dtype())?.to_device(&running_mean.device())?)?;
            running_var.assign(&Tensor::from_f64_vec(&nv, &[c], running_var.dtype())?.to_device(&running_var.device())?)?;
            Ok(())
        })?;
        return Ok(y);
    }
    let (mean, var) = if training {
        let mean = x.mean_axes(&axes, true)?;
        let var = x.sub(&mean)?.square()?.mean_axes(&axes, true)?;
        no_grad(|| -> Result<()> {
            let m = mean.detach().reshape(&[c])?;
            let v = var.detach().reshape(&[c])?.mul_scalar(count as f64 / (count - 1) as f64)?;
            running_mean.assign(&running_mean.mul_scalar(1.0 - momentum)?.add(&m.mul_scalar(momentum)?)?)?;
            running_var.assign(&running_var.mul_scalar(1.0 - momentum)?.add(&v.mul_scalar(momentum)?)?)?;
            Ok(())
        })?;
        (mean, var)
    } else {
        // The running statistics may still be on the host (moved with the model or not): follow x.
        (running_mean.to_device(&x.device())?.reshape(&bshape)?, running_var.to_device(&x.device())?.reshape(&bshape)?)
    };
    let inv_std = var.add_scalar(eps)?.sqrt()?.recip()?;
    let mut y = x.sub(&mean)?.mul(&inv_std)?;
    if let Some(w) = weight {
        y = y.mul(&w.reshape(&bshape)?)?;
    }
    if let Some(b) = bias {
        y = y.add(&b.reshape(&bshape)?)?;
    }
    Ok(y)
}

/// Inverted dropout: zero each element with probability `p` and scale the rest by 1/(1-p) in training;
/// the identity in evaluation.
pub fn dropout(x: &Tensor, p: f64, training: bool, rng: &mut Rng) -> Result<Tensor> {
    if !(0.0..1.0).contains(&p) {
        return Err(Error::msg(format!("dropout: probability must be in [0, 1), got {p}")));
    }
    if !training || p == 0.0 {
        return Ok(x.clone());
    }
    let scale = 1.0 / (1.0 - p);
    let mask: Vec<f64> = (0..x.numel()).map(|_| if rng.uniform() < p { 0.0 } else { scale }).collect();
    let mask = Tensor::from_f64_vec(&mask, x.shape(), x.dtype())?.to_device(&x.device())?;
    x.mul(&mask)
}
