//! Batched matrix multiplication: (..., m, k) x (..., k, n) -> (..., m, n); a rank-2 right operand is
//! shared across the batch (a linear layer). Backward: dA = dC B^T, dB = A^T dC.

mod cpu;
#[cfg(feature = "wgpu")]
pub(crate) mod wgpu;

use crate::autograd::Backward;
use crate::shape::{fmt_shape, numel};
use crate::storage::Storage;
use crate::tensor::Tensor;
use crate::{cpu_map2, Error, Result};

struct MatmulBackward;
impl Backward for MatmulBackward {
    fn name(&self) -> &'static str {
        "matmul"
    }
    fn backward(&self, inputs: &[Tensor], _: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let (a, b) = (&inputs[0], &inputs[1]);
        let ga = if a.tracks_grad() { Some(g.matmul(&b.transpose(-1, -2)?)?) } else { None };
        let gb = if b.tracks_grad() {
            if b.rank() == 2 && a.rank() > 2 {
                // Shared B: sum the per-batch products, i.e. one big (k x rows) * (rows x n).
                let k = a.shape()[a.rank() - 1];
                let n = g.shape()[g.rank() - 1];
                let a2 = a.reshape(&[usize::MAX, k])?;
                let g2 = g.reshape(&[usize::MAX, n])?;
                Some(a2.transpose(0, 1)?.matmul(&g2)?)
            } else {
                Some(a.transpose(-1, -2)?.matmul(g)?)
            }
        } else {
            None
        };
        Ok(vec![ga, gb])
    }
}

impl Tensor {
    pub fn matmul(&self, other: &Tensor) -> Result<Tensor> {
        let (sa, sb) = (self.shape(), other.shape());
        let bad = || Error::shape("matmul", format!("cannot multiply {} by {}", fmt_shape(sa), fmt_shape(sb)));
        if sa.len() < 2 || sb.len() < 2 {
            return Err(bad());
        }
        let (m, k) = (sa[sa.len() - 2], sa[sa.len() - 1]);
        let (k2, n) = (sb[sb.len() - 2], sb[sb.len() - 1]);
        let b_batched = sb.len() > 2;
        if k != k2 || (b_batched && sa[..sa.len() - 2] != sb[..sb.len() - 2]) {
            return Err(bad());
        }
        let batch = numel(&sa[..sa.len() - 2]);
        let mut out_shape = sa[..sa.len() - 2].to_vec();
        out_shape.extend([m, n]);
        let _p = crate::profile::scope("matmul", 2.0 * (batch * m * n * k) as f64, crate::profile::bytes_of(self, batch * (m * k + m * n) + k * n));
        let storage = {
            let (ga, gb) = (self.storage(), other.storage());
            match (&*ga, &*gb) {
                (Storage::Cpu(x), Storage::Cpu(y)) => Storage::Cpu(
                    cpu_map2!(x, y, |p, q| cpu::matmul(p, q, batch, m, k, n, b_batched))
                        .ok_or_else(|| Error::Mismatch { op: "matmul", msg: format!("dtypes differ: {} vs {}", x.dtype(), y.dtype()) })?,
                ),
                #[cfg(feature = "wgpu")]
                (Storage::Wgpu(x), Storage::Wgpu(y)) if std::sync::Arc::ptr_eq(&x.backend, &y.backend) => {
                    crate::backend::wgpu::storage(&x.backend, wgpu::matmul_wgpu(&x.backend, &x.buf, &y.buf, batch, m, k, n, b_batched)?)
                }
                #[allow(unreachable_patterns)]
                (x, y) if x.device_name() != y.device_name() => {
                    return Err(Error::Mismatch { op: "matmul", msg: format!("tensors on different devices: {} and {}", x.device_name(), y.device_name()) });
                }
                #[allow(unreachable_patterns)]
                (x, _) => return Err(Error::Unsupported { op: "matmul", device: x.device_name() }),
            }
        };
        Ok(Tensor::from_op(storage, out_shape, &[self, other], MatmulBackward))
    }
}
