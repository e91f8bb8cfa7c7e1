//! Stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 weight decay, following
//! `torch.optim.SGD`:
//!
//! ```text
//! d = g + wd * p
//! buf = d                                   (first step)
//! buf = momentum * buf + (1 - dampening) * d (later steps)
//! d = d + momentum * buf  (nesterov)   or   d = buf
//! p = p - lr * d
//! ```

use crate::autograd::NoGradGuard;
use crate::optim::{check_hyper, grad_of, Optimizer};
use crate::tensor::Tensor;
use crate::{Error, Result};

pub struct Sgd {
    params: Vec<Tensor>,
    lr: f64,
    momentum: f64,
    dampening: f64,
    weight_decay: f64,
    nesterov: bool,
    bufs: Vec<Option<Tensor>>,
}

impl Sgd {
    /// Plain SGD (no momentum, no weight decay); configure with the builder methods.
    pub fn new(params: Vec<Tensor>, lr: f64) -> Sgd {
        let n = params.len();
        Sgd { params, lr, momentum: 0.0, dampening: 0.0, weight_decay: 0.0, nesterov: false, bufs: vec![None; n] }
    }
    pub fn momentum(mut self, momentum: f64) -> Sgd {
        self.momentum = momentum;
        self
    }
    pub fn dampening(mut self, dampening: f64) -> Sgd {
        self.dampening = dampening;
        self
    }
    pub fn weight_decay(mut self, weight_decay: f64) -> Sgd {
        self.weight_decay = weight_decay;
        self
    }
    /// Nesterov momentum (needs momentum > 0 and dampening 0, as in PyTorch).
    pub fn nesterov(mut self, on: bool) -> Sgd {
        self.nesterov = on;
        self
    }

    /// Momentum buffers for checkpoints: one per parameter, `None` before its first update.
    pub fn export_state(&self) -> Vec<Option<Tensor>> {
        self.bufs.clone()
    }

    /// Restore what [`Sgd::export_state`] returned (same parameter order and shapes).
    pub fn import_state(&mut self, state: Vec<Option<Tensor>>) -> Result<()> {
        if state.len() != self.params.len() {
            return Err(Error::msg(format!("Sgd state has {} entries for {} parameters", state.len(), self.params.len())));
        }
        for (i, (p, b)) in self.params.iter().zip(&state).enumerate() {
            if let Some(b) = b {
                if b.shape() != p.shape() {
                    return Err(Error::msg(format!("Sgd state {i} has shape {:?}, its parameter {:?}", b.shape(), p.shape())));
                }
            }
        }
        self.bufs = state;
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        check_hyper(
            "Sgd",
            &[("lr", self.lr), ("momentum", self.momentum), ("dampening", self.dampening), ("weight_decay", self.weight_decay)],
        )?;
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(Error::msg(format!(
                "Sgd: nesterov needs momentum > 0 and dampening 0, got momentum {} dampening {}",
                self.momentum, self.dampening
            )));
        }
        Ok(())
    }
}

impl Optimizer for Sgd {
    fn step(&mut self) -> Result<()> {
        self.validate()?;
        let _guard = NoGradGuard::new();
        for (p, buf) in self.params.iter().zip(self.bufs.iter_mut()) {
            let Some(g) = grad_of("Sgd", p)? else { continue };
            #[cfg(feature = "cuda")]
            if let Some(b) = crate::optim::cuda::sgd_step(p, &g, buf.as_ref(), self.lr, self.momentum, self.dampening, self.weight_decay, self.nesterov)? {
                *buf = b;
                continue;
            }
            #[cfg(feature = "wgpu")]
            if crate::optim::wgpu::all_wgpu(&[p, &g]) {
                // One fused dispatch, parameter and momentum buffer updated in place on the device.
                let mut params = crate::optim::wgpu::Params {
                    lr: self.lr as f32,
                    weight_decay: self.weight_decay as f32,
                    c0: self.momentum as f32,
                    c1: self.dampening as f32,
                    ..Default::default()
                };
                if self.momentum == 0.0 {
                    crate::optim::wgpu::update("Sgd", "sgd_plain", p, &g, &[], params)?;
                } else {
                    let first = buf.is_none();
                    let b = match buf.take() {
                        Some(b) if crate::optim::wgpu::all_wgpu(&[p, &b]) => b,
                        _ => p.zeros_like()?,
                    };
                    params.flags = u32::from(first) | (u32::from(self.nesterov) << 1);
                    crate::optim::wgpu::update("Sgd", "sgd_momentum", p, &g, &[&b], params)?;
                    *buf = Some(b);
                }
                continue;
            }
            let mut d = if self.weight_decay != 0.0 { g.add(&p.mul_scalar(self.weight_decay)?)? } else { g };
            if self.momentum != 0.0 {
                let b = match buf.take() {
                    // A copy: the buffer must not share storage with the gradient.
                    None => d.copy()?,
                    Some(b) => b.mul_scalar(self.momentum)?.add(&d.mul_scalar(1.0 - self.dampening)?)?,
                };
                d = if self.nesterov { d.add(&b.mul_scalar(self.momentum)?)? } else { b.clone() };
                *buf = Some(b);
            }
            p.assign(&p.sub(&d.mul_scalar(self.lr)?)?)?;
        }
        Ok(())
    }
    fn params(&self) -> &[Tensor] {
        &self.params
    }
    fn lr(&self) -> f64 {
        self.lr
    }
    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
}
