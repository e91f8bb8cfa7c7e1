//! 2-D pooling over NCHW tensors: `avg_pool2d` (padding counted as zeros, PyTorch's default
//! count_include_pad = true), `max_pool2d` (padding acts as -inf; the gradient goes to the first maximum of
//! each window) and `global_avg_pool` (mean over H and W, keeping them as size 1).
//!
//! Output size (floor mode): `Ho = (H + 2ph - kh) / sh + 1`, `Wo = (W + 2pw - kw) / sw + 1`. As in PyTorch,
//! the padding may be at most half the kernel, so every window holds at least one input element.

mod cpu;
#[cfg(feature = "wgpu")]
pub(crate) mod wgpu;

use std::sync::Arc;

use crate::autograd::Backward;
use crate::shape::fmt_shape;
use crate::storage::{CpuStorage, Storage};
use crate::tensor::Tensor;
use crate::{cpu_map, Error, Result};

use cpu::PoolGeom;

fn pool_geom(
    op: &'static str,
    x: &Tensor,
    kernel: (usize, usize),
    stride: (usize, usize),
    padding: (usize, usize),
) -> Result<PoolGeom> {
    let xs = fmt_shape(x.shape());
    let &[n, c, h, w] = x.shape() else {
        return Err(Error::shape(op, format!("input must be a rank-4 NCHW tensor, got shape {xs}")));
    };
    let ((kh, kw), (sh, sw), (ph, pw)) = (kernel, stride, padding);
    if kh == 0 || kw == 0 {
        return Err(Error::shape(op, format!("kernel must be at least 1x1, got {kernel:?} (input {xs})")));
    }
    if sh == 0 || sw == 0 {
        return Err(Error::shape(op, format!("stride must be at least 1 in both dimensions, got {stride:?} (input {xs})")));
    }
    if 2 * ph > kh || 2 * pw > kw {
        return Err(Error::shape(
            op,
            format!("padding {padding:?} must be at most half the kernel {kernel:?} (input {xs})"),
        ));
    }
    if h == 0 || w == 0 || kh > h + 2 * ph || kw > w + 2 * pw {
        return Err(Error::shape(
            op,
            format!(
                "kernel {kh}x{kw} does not fit the input {xs} padded by {padding:?} (padded size {}x{})",
                h + 2 * ph,
                w + 2 * pw
            ),
        ));
    }
    let (ho, wo) = ((h + 2 * ph - kh) / sh + 1, (w + 2 * pw - kw) / sw + 1);
    Ok(PoolGeom { nc: n * c, h, w, kh, kw, sh, sw, ph, pw, ho, wo })
}

struct AvgPoolBackward(PoolGeom);
impl Backward for AvgPoolBackward {
    fn name(&self) -> &'static str {
        "avg_pool2d"
    }
    fn backward(&self, inputs: &[Tensor], _: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let s = match &*g.storage() {
            Storage::Cpu(s) => {
                let _p = crate::profile::scope("avg_pool2d_backward", 0.0, crate::profile::bytes_of(g, g.numel()));
                Storage::Cpu(cpu_map!(s, |v| cpu::avg_pool2d_backward(v, &self.0)))
            }
            #[cfg(feature = "wgpu")]
            Storage::Wgpu(s) => crate::backend::wgpu::storage(&s.backend, wgpu::avg_pool2d_backward_wgpu(&s.backend, &s.buf, &self.0)?),
            #[allow(unreachable_patterns)]
            other => return Err(Error::Unsupported { op: "avg_pool2d_backward", device: other.device_name() }),
        };
        Ok(vec![Some(Tensor::from_storage(s, inputs[0].shape().to_vec()))])
    }
}

/// Argmax indices of max pooling: host memory for CPU tensors, a device buffer for wgpu tensors.
enum PoolIdx {
    Cpu(Arc<Vec<usize>>),
    #[cfg(feature = "wgpu")]
    Wgpu(crate::backend::wgpu::WgpuBuffer),
}

struct MaxPoolBackward {
    geom: PoolGeom,
    idx: PoolIdx,
}
impl Backward for MaxPoolBackward {
    fn name(&self) -> &'static str {
        "max_pool2d"
    }
    fn backward(&self, inputs: &[Tensor], _: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let s = match (&*g.storage(), &self.idx) {
            (Storage::Cpu(s), PoolIdx::Cpu(idx)) => {
                let _p = crate::profile::scope("max_pool2d_backward", 0.0, crate::profile::bytes_of(g, g.numel()));
                Storage::Cpu(cpu_map!(s, |v| cpu::max_pool2d_backward(v, idx, &self.geom)))
            }
            #[cfg(feature = "wgpu")]
            (Storage::Wgpu(s), PoolIdx::Wgpu(idx)) => {
                let _p = crate::profile::scope("max_pool2d_backward", 0.0, crate::profile::bytes_of(g, g.numel()));
                crate::backend::wgpu::storage(&s.backend, wgpu::max_pool2d_backward_wgpu(&s.backend, &s.buf, idx, &self.geom)?)
            }
            #[allow(unreachable_patterns)]
            (other, _) => return Err(Error::Unsupported { op: "max_pool2d_backward", device: other.device_name() }),
        };
        Ok(vec![Some(Tensor::from_storage(s, inputs[0].shape().to_vec()))])
    }
}

impl Tensor {
    /// Average pooling of an NCHW tensor with a `kernel` (kh, kw) window, `stride` (sh, sw) and zero
    /// `padding` (ph, pw), each at most half the kernel. Padded positions count in the divisor (kh*kw),
    /// as PyTorch's default `count_include_pad = true`. Result: (N, C, Ho, Wo).
    pub fn avg_pool2d(&self, kernel: (usize, usize), stride: (usize, usize), padding: (usize, usize)) -> Result<Tensor> {
        let g = pool_geom("avg_pool2d", self, kernel, stride, padding)?;
        let _p = crate::profile::scope("avg_pool2d", 0.0, crate::profile::bytes_of(self, self.numel()));
        let storage = match &*self.storage() {
            Storage::Cpu(s) => Storage::Cpu(cpu_map!(s, |v| cpu::avg_pool2d(v, &g))),
            #[cfg(feature = "wgpu")]
            Storage::Wgpu(s) => crate::backend::wgpu::storage(&s.backend, wgpu::avg_pool2d_wgpu(&s.backend, &s.buf, &g)?),
            #[allow(unreachable_patterns)]
            other => return Err(Error::Unsupported { op: "avg_pool2d", device: other.device_name() }),
        };
        let shape = vec![self.shape()[0], self.shape()[1], g.ho, g.wo];
        Ok(Tensor::from_op(storage, shape, &[self], AvgPoolBackward(g)))
    }

    /// Max pooling of an NCHW tensor with a `kernel` (kh, kw) window, `stride` (sh, sw) and `padding`
    /// (ph, pw), each at most half the kernel; padded positions act as -inf. The gradient goes to the
    /// position of the maximum (the first one in row-major window order on ties). Result: (N, C, Ho, Wo).
    pub fn max_pool2d(&self, kernel: (usize, usize), stride: (usize, usize), padding: (usize, usize)) -> Result<Tensor> {
        let g = pool_geom("max_pool2d", self, kernel, stride, padding)?;
        let _p = crate::profile::scope("max_pool2d", 0.0, crate::profile::bytes_of(self, self.numel()));
        let (storage, idx) = match &*self.storage() {
            Storage::Cpu(s) => match s {
                CpuStorage::F32(v) => {
                    let (o, i) = cpu::max_pool2d(v, &g);
                    (Storage::Cpu(CpuStorage::F32(o)), PoolIdx::Cpu(Arc::new(i)))
                }
                CpuStorage::F64(v) => {
                    let (o, i) = cpu::max_pool2d(v, &g);
                    (Storage::Cpu(CpuStorage::F64(o)), PoolIdx::Cpu(Arc::new(i)))
                }
            },
            #[cfg(feature = "wgpu")]
            Storage::Wgpu(s) => {
                let (o, i) = wgpu::max_pool2d_wgpu(&s.backend, &s.buf, &g)?;
                (crate::backend::wgpu::storage(&s.backend, o), PoolIdx::Wgpu(i))
            }
            #[allow(unreachable_patterns)]
            other => return Err(Error::Unsupported { op: "max_pool2d", device: other.device_name() }),
        };
        let shape = vec![self.shape()[0], self.shape()[1], g.ho, g.wo];
        Ok(Tensor::from_op(storage, shape, &[self], MaxPoolBackward { geom: g, idx }))
    }

    /// Mean over the spatial axes of an NCHW tensor: (N, C, H, W) -> (N, C, 1, 1).
    pub fn global_avg_pool(&self) -> Result<Tensor> {
        self.dims4("global_avg_pool")?;
        self.mean_axes(&[2, 3], true)
    }
}
