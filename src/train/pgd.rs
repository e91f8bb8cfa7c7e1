//! Projected gradient descent (Madry et al.) in the L-inf ball: the adversarial-training countermeasure
//! (PGD-10, eps 4/255 or 8/255, step 2/255, random start).
//!
//! `x_0 = clip(x + U(-eps, eps))`, then `steps` times `x_{t+1} = P(x_t + step * sign(grad_x loss))`, where P
//! clips to `[x - eps, x + eps]` and to `[0, 1]`. The model is run in evaluation mode (BatchNorm uses its
//! running statistics, which the attack therefore does not disturb); its parameters are frozen during the
//! attack, so only the input gradient is computed.

use crate::countermeasures::Targets;
use crate::nn::module::Module;
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pgd {
    pub eps: f64,
    pub step: f64,
    pub steps: usize,
    pub random_start: bool,
}

impl Pgd {
    /// PGD-10 with step 2/255 and random start at budget `eps`.
    pub fn linf(eps: f64) -> Pgd {
        Pgd { eps, step: 2.0 / 255.0, steps: 10, random_start: true }
    }
}

/// Parameters frozen (requires_grad off) while alive; restored on drop, even after an error.
pub(crate) struct Frozen(Vec<(Tensor, bool)>);

impl Frozen {
    pub(crate) fn new(model: &dyn Module) -> Frozen {
        Frozen(
            model
                .parameters()
                .into_iter()
                .map(|p| {
                    let was = p.requires_grad();
                    (p.clone().requires_grad_(false), was)
                })
                .collect(),
        )
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        for (p, was) in self.0.drain(..) {
            let _ = p.requires_grad_(was);
        }
    }
}

/// The training loss for hard or soft targets (mean over the batch).
pub fn loss_for(logits: &Tensor, targets: &Targets) -> Result<Tensor> {
    match targets {
        Targets::Hard(labels) => crate::nn::functional::cross_entropy(logits, labels, 0.0),
        Targets::Soft(t) => soft_cross_entropy(logits, t),
    }
}

/// `-mean_i sum_k t_ik log softmax(logits)_ik` for soft targets (N, K).
pub fn soft_cross_entropy(logits: &Tensor, target: &Tensor) -> Result<Tensor> {
    if logits.shape() != target.shape() || logits.rank() != 2 {
        return Err(Error::shape(
            "soft_cross_entropy",
            format!("logits {:?} and soft targets {:?} must both be (N, K)", logits.shape(), target.shape()),
        ));
    }
    let n = logits.shape()[0].max(1);
    let t = target.to_dtype(logits.dtype())?.to_device(&logits.device())?;
    let lp = crate::nn::functional::log_softmax(logits, 1)?;
    lp.mul(&t)?.sum_all()?.mul_scalar(-1.0 / n as f64)
}

/// The sign of a gradient component, 0 for 0 and NaN (a value the loss does not see stays where it is):
/// the step direction of every signed-gradient method (PGD, error-minimising noise, TAP).
pub fn sign(g: f32) -> f32 {
    if g > 0.0 {
        1.0
    } else if g < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Adversarial examples for `x` (f32 (N, C, H, W) in [0, 1]) against `model`, maximising the loss on
/// `targets`. Puts the model in evaluation mode; the caller switches it back.
pub fn pgd_attack(model: &dyn Module, x: &Tensor, targets: &Targets, pgd: &Pgd, rng: &mut Rng) -> Result<Tensor> {
    if !(pgd.eps >= 0.0 && pgd.step >= 0.0) {
        return Err(Error::msg(format!("pgd: eps and step must be >= 0, got {} and {}", pgd.eps, pgd.step)));
    }
    let device = x.device();
    let shape = x.shape().to_vec();
    let x0 = x.to_vec_f32()?;
    let eps = pgd.eps as f32;
    let step = pgd.step as f32;
    let mut xa: Vec<f32> = if pgd.random_start {
        x0.iter().map(|&v| (v + ((2.0 * rng.uniform() - 1.0) as f32) * eps).clamp(0.0, 1.0)).collect()
    } else {
        x0.clone()
    };
    model.set_training(false);
    let _frozen = Frozen::new(model);
    for _ in 0..pgd.steps {
        let t = Tensor::from_vec(xa.clone(), &shape)?.to_device(&device)?.requires_grad_(true);
        let loss = loss_for(&model.forward(&t)?, targets)?;
        loss.backward()?;
        let g = t.grad().ok_or_else(|| Error::msg("pgd: no gradient reached the input"))?.to_vec_f32()?;
        for ((a, &o), &gi) in xa.iter_mut().zip(&x0).zip(&g) {
            *a = (*a + step * sign(gi)).clamp(o - eps, o + eps).clamp(0.0, 1.0);
        }
    }
    Tensor::from_vec(xa, &shape)?.to_device(&device)
}
