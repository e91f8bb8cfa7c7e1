//! Adam and AdamW, following `torch.optim.Adam` / `torch.optim.AdamW` (without amsgrad):
//!
//! ```text
//! t = t + 1
//! Adam:  g = g + wd * p            (L2 penalty, coupled with the adaptive scaling)
//! AdamW: p = p * (1 - lr * wd)     (decoupled decay)
//! m = b1 * m + (1 - b1) * g
//! v = b2 * v + (1 - b2) * g^2
//! p = p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
//! ```
//! The step count `t` is kept per parameter, so a parameter that had no gradient for a while gets the
//! bias correction of the updates it actually received.

use crate::autograd::NoGradGuard;
use crate::optim::{check_hyper, grad_of, Optimizer};
use crate::tensor::Tensor;
use crate::{Error, Result};

struct State {
    step: i32,
    m: Tensor,
    v: Tensor,
}

struct Core {
    params: Vec<Tensor>,
    lr: f64,
    betas: (f64, f64),
    eps: f64,
    weight_decay: f64,
    state: Vec<Option<State>>,
}

impl Core {
    fn new(params: Vec<Tensor>, lr: f64, weight_decay: f64) -> Core {
        let n = params.len();
        Core { params, lr, betas: (0.9, 0.999), eps: 1e-8, weight_decay, state: (0..n).map(|_| None).collect() }
    }

    fn step(&mut self, name: &'static str, decoupled: bool) -> Result<()> {
        check_hyper(name, &[("lr", self.lr), ("eps", self.eps), ("weight_decay", self.weight_decay)])?;
        let (b1, b2) = self.betas;
        if !(0.0..1.0).contains(&b1) || !(0.0..1.0).contains(&b2) {
            return Err(Error::msg(format!("{name}: betas must lie in [0, 1), got ({b1}, {b2})")));
        }
        let (lr, wd, eps) = (self.lr, self.weight_decay, self.eps);
        let _guard = NoGradGuard::new();
        for (p, st) in self.params.iter().zip(self.state.iter_mut()) {
            let Some(mut g) = grad_of(name, p)? else { continue };
            let st = match st {
                Some(s) => s,
                None => st.insert(State { step: 0, m: p.zeros_like()?, v: p.zeros_like()? }),
            };
            st.step += 1;
            #[cfg(feature = "cuda")]
            {
                let (bc1, bc2) = (1.0 - b1.powi(st.step), 1.0 - b2.powi(st.step));
                if let Some((m, v)) = crate::optim::cuda::adam_step(p, &g, &st.m, &st.v, lr, (b1, b2), eps, wd, decoupled, bc1, bc2)? {
                    (st.m, st.v) = (m, v);
                    continue;
                }
            }
            #[cfg(feature = "wgpu")]
            if crate::optim::wgpu::all_wgpu(&[p, &g, &st.m, &st.v]) {
                // One fused dispatch; parameter, m and v updated in place on the device.
                let params = crate::optim::wgpu::Params {
                    flags: u32::from(decoupled),
                    lr: lr as f32,
                    weight_decay: wd as f32,
                    c0: b1 as f32,
                    c1: b2 as f32,
                    eps: eps as f32,
                    bc1: (1.0 - b1.powi(st.step)) as f32,
                    bc2: (1.0 - b2.powi(st.step)) as f32,
                    ..Default::default()
                };
                crate::optim::wgpu::update(name, "adam", p, &g, &[&st.m, &st.v], params)?;
                continue;
            }
            let bc1 = 1.0 - b1.powi(st.step);
            let bc2 = 1.0 - b2.powi(st.step);
            let h = crate::optim::cpu::AdamStep { lr, b1, b2, eps, weight_decay: wd, decoupled, bc1, bc2 };
            if crate::optim::cpu::adam_update(p, &g, &st.m, &st.v, h) {
                continue;
            }
            let mut base = p.clone();
            if wd != 0.0 {
                if decoupled {
                    base = p.mul_scalar(1.0 - lr * wd)?;
                } else {
                    g = g.add(&p.mul_scalar(wd)?)?;
                }
            }
            st.m = st.m.mul_scalar(b1)?.add(&g.mul_scalar(1.0 - b1)?)?;
            st.v = st.v.mul_scalar(b2)?.add(&g.square()?.mul_scalar(1.0 - b2)?)?;
            let denom = st.v.sqrt()?.mul_scalar(1.0 / bc2.sqrt())?.add_scalar(eps)?;
            let update = st.m.div(&denom)?.mul_scalar(lr / bc1)?;
            p.assign(&base.sub(&update)?)?;
        }
        Ok(())
    }
}

macro_rules! adam_type {
    ($(#[$doc:meta])* $name:ident, $decoupled:expr, $default_wd:expr) => {
        $(#[$doc])*
        pub struct $name(Core);

        impl $name {
            /// Betas (0.9, 0.999), eps 1e-8; weight decay as in PyTorch's default for this optimizer.
            pub fn new(params: Vec<Tensor>, lr: f64) -> $name {
                $name(Core::new(params, lr, $default_wd))
            }
            pub fn betas(mut self, beta1: f64, beta2: f64) -> $name {
                self.0.betas = (beta1, beta2);
                self
            }
            pub fn eps(mut self, eps: f64) -> $name {
                self.0.eps = eps;
                self
            }
            pub fn weight_decay(mut self, weight_decay: f64) -> $name {
                self.0.weight_decay = weight_decay;
                self
            }
            /// Number of updates parameter `i` has received.
            /// Optimizer state for checkpoints: `(m, v, step)` per parameter that has been updated.
            pub fn export_state(&self) -> Vec<Option<(Tensor, Tensor, i32)>> {
                self.0.state.iter().map(|s| s.as_ref().map(|s| (s.m.clone(), s.v.clone(), s.step))).collect()
            }

            /// Restore what [`export_state`] returned (same parameter order and shapes).
            pub fn import_state(&mut self, state: Vec<Option<(Tensor, Tensor, i32)>>) -> Result<()> {
                if state.len() != self.0.params.len() {
                    return Err(Error::msg(format!("optimizer state has {} entries for {} parameters", state.len(), self.0.params.len())));
                }
                for (i, (p, st)) in self.0.params.iter().zip(&state).enumerate() {
                    if let Some((m, v, _)) = st {
                        if m.shape() != p.shape() || v.shape() != p.shape() {
                            return Err(Error::msg(format!("optimizer state {i} does not match its parameter's shape")));
                        }
                    }
                }
                self.0.state = state.into_iter().map(|s| s.map(|(m, v, step)| State { step, m, v })).collect();
                Ok(())
            }

            pub fn step_count(&self, i: usize) -> usize {
                self.0.state.get(i).and_then(|s| s.as_ref()).map_or(0, |s| s.step as usize)
            }
        }

        impl Optimizer for $name {
            fn step(&mut self) -> Result<()> {
                self.0.step(stringify!($name), $decoupled)
            }
            fn params(&self) -> &[Tensor] {
                &self.0.params
            }
            fn lr(&self) -> f64 {
                self.0.lr
            }
            fn set_lr(&mut self, lr: f64) {
                self.0.lr = lr;
            }
        }
    };
}

adam_type!(
    /// Adam with L2 weight decay added to the gradient (default weight decay 0).
    Adam, false, 0.0
);
adam_type!(
    /// AdamW: Adam with decoupled weight decay (default weight decay 0.01).
    AdamW, true, 0.01
);
