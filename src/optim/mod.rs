//! Optimizers (SGD, Adam, AdamW), learning-rate schedules and gradient clipping.
//!
//! Optimizers follow PyTorch's update rules exactly, so hyper-parameters from papers carry over. State
//! (momentum buffers, moments) is kept as tensors on each parameter's device; updates are computed with the
//! engine's ops under `no_grad` and written into the parameters with [`Tensor::assign`]. Parameters
//! without a gradient are skipped (and their state, step count included, is left alone).

mod adam;
mod clip;
mod cpu;
mod schedule;
mod sgd;
#[cfg(feature = "wgpu")]
mod wgpu;

#[cfg(feature = "cuda")]
mod cuda;
pub use adam::{Adam, AdamW};
pub use clip::clip_grad_norm;
pub use schedule::{CosineLr, LrSchedule, StepLr};
pub use sgd::Sgd;

use crate::tensor::Tensor;
use crate::{Error, Result};

pub trait Optimizer {
    /// Apply one update to every parameter that has a gradient.
    fn step(&mut self) -> Result<()>;

    /// The parameters this optimizer updates.
    fn params(&self) -> &[Tensor];

    /// Drop the gradients of all parameters.
    fn zero_grad(&self) {
        for p in self.params() {
            p.zero_grad();
        }
    }

    fn lr(&self) -> f64;

    fn set_lr(&mut self, lr: f64);
}

/// Common argument checks: every value must be finite and non-negative.
pub(crate) fn check_hyper(opt: &'static str, items: &[(&str, f64)]) -> Result<()> {
    for &(name, v) in items {
        if !v.is_finite() || v < 0.0 {
            return Err(Error::msg(format!("{opt}: {name} must be finite and >= 0, got {v}")));
        }
    }
    Ok(())
}

/// The gradient of `p`, checked to fit it.
pub(crate) fn grad_of(opt: &'static str, p: &Tensor) -> Result<Option<Tensor>> {
    let Some(g) = p.grad() else { return Ok(None) };
    if g.shape() != p.shape() || g.dtype() != p.dtype() {
        return Err(Error::Mismatch {
            op: opt,
            msg: format!(
                "gradient {} {} does not fit parameter {} {}",
                crate::shape::fmt_shape(g.shape()),
                g.dtype(),
                crate::shape::fmt_shape(p.shape()),
                p.dtype()
            ),
        });
    }
    Ok(Some(g))
}
