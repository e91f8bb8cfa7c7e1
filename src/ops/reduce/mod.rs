//! Reductions: sum and mean (all, or over axes), `sum_to` (undo a broadcast), max over an axis.

mod cpu;
#[cfg(feature = "wgpu")]
pub(crate) mod wgpu;

use std::sync::Arc;

use crate::autograd::Backward;
use crate::shape::{axis, fmt_shape, numel};
use crate::storage::Storage;
use crate::tensor::Tensor;
use crate::{cpu_map, Error, Result};

fn keep_mask(op: &'static str, rank: usize, axes: &[isize]) -> Result<Vec<bool>> {
    let mut keep = vec![true; rank];
    for &a in axes {
        let a = axis(op, a, rank)?;
        if !keep[a] {
            return Err(Error::shape(op, format!("axis {a} given twice")));
        }
        keep[a] = false;
    }
    Ok(keep)
}

struct SumBackward {
    in_shape: Vec<usize>,
}
impl Backward for SumBackward {
    fn name(&self) -> &'static str {
        "sum"
    }
    fn backward(&self, _: &[Tensor], _: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        // g has the kept-dims shape (possibly squeezed): restore size-1 axes, then stretch.
        Ok(vec![Some(g.broadcast_to(&self.in_shape)?)])
    }
}

/// Where max's argmax indices live: on the host for CPU tensors, on the device for wgpu tensors (so the
/// forward pass never reads back).
enum ArgIdx {
    Cpu(Arc<Vec<usize>>),
    #[cfg(feature = "wgpu")]
    Wgpu(Arc<crate::backend::wgpu::WgpuBuffer>, Arc<crate::backend::wgpu::WgpuBackend>),
}

struct MaxBackward {
    idx: ArgIdx,
    outer: usize,
    n: usize,
    inner: usize,
    in_shape: Vec<usize>,
}
impl Backward for MaxBackward {
    fn name(&self) -> &'static str {
        "max"
    }
    fn backward(&self, _: &[Tensor], _: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let _p = crate::profile::scope("max_backward", 0.0, crate::profile::bytes_of(g, self.outer * self.n * self.inner));
        let s = match (&*g.storage(), &self.idx) {
            (Storage::Cpu(s), ArgIdx::Cpu(idx)) => Storage::Cpu(cpu_map!(s, |v| cpu::max_axis_backward(
                v, idx, self.outer, self.n, self.inner
            ))),
            #[cfg(feature = "wgpu")]
            (Storage::Wgpu(s), ArgIdx::Wgpu(idx, _)) => crate::backend::wgpu::storage(
                &s.backend,
                wgpu::max_backward_wgpu(&s.backend, &s.buf, idx, self.outer, self.n, self.inner)?,
            ),
            #[allow(unreachable_patterns)]
            (other, _) => return Err(Error::Unsupported { op: "max_backward", device: other.device_name() }),
        };
        Ok(vec![Some(Tensor::from_storage(s, self.in_shape.clone()))])
    }
}

impl Tensor {
    /// Sum over `axes` (negative axes count from the end). `keepdim` keeps them as size 1.
    pub fn sum_axes(&self, axes: &[isize], keepdim: bool) -> Result<Tensor> {
        let keep = keep_mask("sum", self.rank(), axes)?;
        let _p = crate::profile::scope("sum", self.numel() as f64, crate::profile::bytes_of(self, self.numel()));
        let kept_shape: Vec<usize> =
            self.shape().iter().zip(&keep).map(|(&d, &k)| if k { d } else { 1 }).collect();
        let storage = match &*self.storage() {
            Storage::Cpu(s) => Storage::Cpu(cpu_map!(s, |v| cpu::sum_axes(v, self.shape(), &keep))),
            #[cfg(feature = "wgpu")]
            Storage::Wgpu(s) => {
                let shape = self.shape();
                let reduced: Vec<usize> = (0..shape.len()).filter(|&d| !keep[d]).collect();
                let contiguous = reduced.windows(2).all(|w| w[1] == w[0] + 1);
                let buf = match (reduced.first(), reduced.last()) {
                    (Some(&first), Some(&last)) if contiguous => {
                        let (outer, red, inner) = (numel(&shape[..first]), numel(&shape[first..=last]), numel(&shape[last + 1..]));
                        wgpu::sum_wgpu(&s.backend, &s.buf, outer, red, inner)?
                    }
                    (Some(_), Some(_)) => {
                        // Kept axes first, reduced ones last: then the reduced run is contiguous.
                        let mut perm: Vec<usize> = (0..shape.len()).filter(|&d| keep[d]).collect();
                        perm.extend(&reduced);
                        let t = crate::ops::layout::wgpu::permute_wgpu(&s.backend, &s.buf, shape, &perm)?;
                        let red = numel(&reduced.iter().map(|&d| shape[d]).collect::<Vec<_>>());
                        wgpu::sum_wgpu(&s.backend, &t, self.numel() / red.max(1), red, 1)?
                    }
                    // Nothing reduced: a copy (the result must not share storage with the input).
                    _ => crate::ops::layout::wgpu::strided_copy(&s.backend, "sum", &s.buf, 0, &crate::shape::strides(shape), shape)?,
                };
                crate::backend::wgpu::storage(&s.backend, buf)
            }
            #[allow(unreachable_patterns)]
            other => return Err(Error::Unsupported { op: "sum", device: other.device_name() }),
        };
        let out = Tensor::from_op(storage, kept_shape, &[self], SumBackward { in_shape: self.shape().to_vec() });
        if keepdim {
            Ok(out)
        } else {
            let squeezed: Vec<usize> =
                self.shape().iter().zip(&keep).filter(|(_, k)| **k).map(|(&d, _)| d).collect();
            out.reshape(&squeezed)
        }
    }

    /// Sum of all elements, as a 0-d tensor.
    pub fn sum_all(&self) -> Result<Tensor> {
        let axes: Vec<isize> = (0..self.rank() as isize).collect();
        self.sum_axes(&axes, false)
    }

    pub fn mean_axes(&self, axes: &[isize], keepdim: bool) -> Result<Tensor> {
        let keep = keep_mask("mean", self.rank(), axes)?;
        let count: usize = self.shape().iter().zip(&keep).filter(|(_, k)| !**k).map(|(&d, _)| d).product();
        self.sum_axes(axes, keepdim)?.mul_scalar(1.0 / count.max(1) as f64)
    }

    pub fn mean_all(&self) -> Result<Tensor> {
        self.sum_all()?.mul_scalar(1.0 / self.numel().max(1) as f64)
    }

    /// Sum a broadcast result back down to `shape` (the gradient rule of broadcasting).
    pub fn sum_to(&self, shape: &[usize]) -> Result<Tensor> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let r = self.rank();
        if shape.len() > r {
            return Err(Error::shape("sum_to", format!("cannot sum {} to {}", fmt_shape(self.shape()), fmt_shape(shape))));
        }
        let off = r - shape.len();
        let mut axes = Vec::new();
        for d in 0..r {
            let target = if d < off { 1 } else { shape[d - off] };
            if target == 1 && self.shape()[d] != 1 {
                axes.push(d as isize);
            } else if target != self.shape()[d] {
                return Err(Error::shape("sum_to", format!("cannot sum {} to {}", fmt_shape(self.shape()), fmt_shape(shape))));
            }
        }
        let s = if axes.is_empty() { self.clone() } else { self.sum_axes(&axes, true)? };
        s.reshape(shape)
    }

    /// Maximum over one axis, with the index of the (first) maximum. Gradient flows to that position.
    pub fn max_axis_with_indices(&self, ax: isize, keepdim: bool) -> Result<(Tensor, Vec<usize>)> {
        let (t, idx) = self.max_axis_impl(ax, keepdim, true)?;
        Ok((t, idx.expect("indices were asked for")))
    }

    /// Max over an axis; the indices are returned (read back from a device) only when `want_idx`.
    fn max_axis_impl(&self, ax: isize, keepdim: bool, want_idx: bool) -> Result<(Tensor, Option<Vec<usize>>)> {
        let a = axis("max", ax, self.rank())?;
        let s = self.shape();
        let (outer, n, inner) = (numel(&s[..a]), s[a], numel(&s[a + 1..]));
        if n == 0 {
            return Err(Error::shape("max", format!("axis {a} of {} is empty", fmt_shape(s))));
        }
        let _p = crate::profile::scope("max", self.numel() as f64, crate::profile::bytes_of(self, self.numel()));
        let (storage, idx) = match &*self.storage() {
            Storage::Cpu(st) => match st {
                crate::storage::CpuStorage::F32(v) => {
                    let (vals, idx) = cpu::max_axis(v, outer, n, inner);
                    (Storage::Cpu(crate::storage::CpuStorage::F32(vals)), ArgIdx::Cpu(Arc::new(idx)))
                }
                crate::storage::CpuStorage::F64(v) => {
                    let (vals, idx) = cpu::max_axis(v, outer, n, inner);
                    (Storage::Cpu(crate::storage::CpuStorage::F64(vals)), ArgIdx::Cpu(Arc::new(idx)))
                }
            },
            #[cfg(feature = "wgpu")]
            Storage::Wgpu(st) => {
                let (vals, idx) = wgpu::max_axis_wgpu(&st.backend, &st.buf, outer, n, inner)?;
                (crate::backend::wgpu::storage(&st.backend, vals), ArgIdx::Wgpu(Arc::new(idx), st.backend.clone()))
            }
            #[allow(unreachable_patterns)]
            other => return Err(Error::Unsupported { op: "max", device: other.device_name() }),
        };
        let host_idx = if want_idx {
            Some(match &idx {
                ArgIdx::Cpu(v) => (**v).clone(),
                // The indices are u32 bit patterns in an f32-typed buffer.
                #[cfg(feature = "wgpu")]
                ArgIdx::Wgpu(b, be) => be.download(b)?.into_iter().map(|f| f.to_bits() as usize).collect(),
            })
        } else {
            None
        };
        let mut out_shape = s.to_vec();
        out_shape[a] = 1;
        let op = MaxBackward { idx, outer, n, inner, in_shape: s.to_vec() };
        let out = Tensor::from_op(storage, out_shape, &[self], op);
        let out = if keepdim {
            out
        } else {
            let mut sq = s.to_vec();
            sq.remove(a);
            out.reshape(&sq)?
        };
        Ok((out, host_idx))
    }

    pub fn max_axis(&self, ax: isize, keepdim: bool) -> Result<Tensor> {
        Ok(self.max_axis_impl(ax, keepdim, false)?.0)
    }

    /// Index of the maximum along an axis (e.g. predicted class per row).
    pub fn argmax(&self, ax: isize) -> Result<Vec<usize>> {
        crate::autograd::no_grad(|| Ok(self.max_axis_with_indices(ax, false)?.1))
    }
}
