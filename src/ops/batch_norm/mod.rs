//! Fused training-mode batch normalisation on the CPU: `y = (x - mean) / sqrt(var + eps) * w + b` with the
//! batch's per-channel statistics, and a closed-form backward. `nn::functional::batch_norm` uses it for
//! CPU tensors; other devices run the composite form built from primitive ops.

mod cpu;
#[cfg(feature = "cuda")]
pub(crate) mod cuda;

use std::sync::Arc;

use crate::autograd::Backward;
use crate::dtype::DType;
use crate::storage::{CpuStorage, Storage};
use crate::tensor::Tensor;
use crate::{cpu_map, Error, Result};

struct BatchNormBackward {
    mean: Arc<Vec<f64>>,
    invstd: Arc<Vec<f64>>,
    has_weight: bool,
    has_bias: bool,
}

fn f64s(t: &Tensor) -> Result<Vec<f64>> {
    t.to_vec_f64()
}

impl Backward for BatchNormBackward {
    fn name(&self) -> &'static str {
        "batch_norm"
    }
    fn backward(&self, inputs: &[Tensor], _: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let x = &inputs[0];
        let (n, c, s) = ncs(x);
        let w = if self.has_weight { f64s(&inputs[1])? } else { vec![1.0; c] };
        let _p = crate::profile::scope("batch_norm_backward", 6.0 * x.numel() as f64, crate::profile::bytes_of(x, 3 * x.numel()));
        let (dx, dw, db) = match (&*g.storage(), &*x.storage()) {
            (Storage::Cpu(CpuStorage::F32(gv)), Storage::Cpu(CpuStorage::F32(xv))) => {
                let (dx, dw, db) = cpu::backward(gv, xv, n, c, s, &self.mean, &self.invstd, &w);
                (Storage::Cpu(CpuStorage::F32(dx)), dw, db)
            }
            (Storage::Cpu(CpuStorage::F64(gv)), Storage::Cpu(CpuStorage::F64(xv))) => {
                let (dx, dw, db) = cpu::backward(gv, xv, n, c, s, &self.mean, &self.invstd, &w);
                (Storage::Cpu(CpuStorage::F64(dx)), dw, db)
            }
            #[cfg(feature = "cuda")]
            (Storage::Cuda(gs), Storage::Cuda(xs)) => {
                let (dx, dw, db) = cuda::backward_cuda(&gs.backend, &gs.buf, &xs.buf, n, c, s, &self.mean, &self.invstd, &w)?;
                (gs.wrap(dx), dw, db)
            }
            (a, _) => return Err(Error::Unsupported { op: "batch_norm_backward", device: a.device_name() }),
        };
        let dt = x.dtype();
        let mut out = vec![Some(Tensor::from_storage(dx, x.shape().to_vec()))];
        if self.has_weight {
            out.push(Some(Tensor::from_f64_vec(&dw, &[c], dt)?.to_device(&x.device())?));
        }
        if self.has_bias {
            out.push(Some(Tensor::from_f64_vec(&db, &[c], dt)?.to_device(&x.device())?));
        }
        Ok(out)
    }
}

/// (N, C, S) view of an (N, C) or (N, C, H, W) tensor.
fn ncs(x: &Tensor) -> (usize, usize, usize) {
    let s = x.shape();
    (s[0], s[1], s[2..].iter().product())
}

impl Tensor {
    /// Training-mode batch norm with batch statistics (shapes already validated by the caller). Returns
    /// the output and the per-channel batch mean and biased variance (for the running statistics).
    pub fn batch_norm_train(&self, weight: Option<&Tensor>, bias: Option<&Tensor>, eps: f64) -> Result<(Tensor, Vec<f64>, Vec<f64>)> {
        let (n, c, s) = ncs(self);
        let _p = crate::profile::scope("batch_norm", 5.0 * self.numel() as f64, crate::profile::bytes_of(self, 3 * self.numel()));
        let stats = match &*self.storage() {
            Storage::Cpu(CpuStorage::F32(v)) => cpu::stats(v, n, c, s),
            Storage::Cpu(CpuStorage::F64(v)) => cpu::stats(v, n, c, s),
            #[cfg(feature = "cuda")]
            Storage::Cuda(st) => cuda::stats_cuda(&st.backend, &st.buf, n, c, s)?,
            #[allow(unreachable_patterns)]
            other => return Err(Error::Unsupported { op: "batch_norm (fused)", device: other.device_name() }),
        };
        let mean: Vec<f64> = stats.iter().map(|s| s.0).collect();
        let var: Vec<f64> = stats.iter().map(|s| s.1).collect();
        let invstd: Vec<f64> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
        let w = match weight {
            Some(t) => f64s(t)?,
            None => vec![1.0; c],
        };
        let b = match bias {
            Some(t) => f64s(t)?,
            None => vec![0.0; c],
        };
        let scale: Vec<f64> = (0..c).map(|k| w[k] * invstd[k]).collect();
        let shift: Vec<f64> = (0..c).map(|k| b[k] - mean[k] * scale[k]).collect();
        let storage = match &*self.storage() {
            Storage::Cpu(st) => Storage::Cpu(cpu_map!(st, |v| cpu::normalize(v, n, c, s, &scale, &shift))),
            #[cfg(feature = "cuda")]
            Storage::Cuda(st) => st.wrap(cuda::normalize_cuda(&st.backend, &st.buf, n, c, s, &scale, &shift)?),
            #[allow(unreachable_patterns)]
            other => return Err(Error::Unsupported { op: "batch_norm (fused)", device: other.device_name() }),
        };
        let mut inputs = vec![self];
        if let Some(t) = weight {
            inputs.push(t);
        }
        if let Some(t) = bias {
            inputs.push(t);
        }
        let op = BatchNormBackward { mean: Arc::new(mean.clone()), invstd: Arc::new(invstd), has_weight: weight.is_some(), has_bias: bias.is_some() };
        let y = Tensor::from_op(storage, self.shape().to_vec(), &inputs, op);
        let _ = DType::F32;
        Ok((y, mean, var))
    }
}
