//! Layout ops: reshape (zero-copy), permute/transpose (copy), broadcast_to (copy).

mod cpu;
#[cfg(feature = "wgpu")]
pub(crate) mod wgpu;

use crate::autograd::Backward;
use crate::shape::{broadcast_strides, fmt_shape, numel};
use crate::storage::Storage;
use crate::tensor::Tensor;
use crate::{cpu_map, Error, Result};

struct ReshapeBackward(Vec<usize>);
impl Backward for ReshapeBackward {
    fn name(&self) -> &'static str {
        "reshape"
    }
    fn backward(&self, _: &[Tensor], _: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.reshape(&self.0)?)])
    }
}

struct PermuteBackward(Vec<usize>);
impl Backward for PermuteBackward {
    fn name(&self) -> &'static str {
        "permute"
    }
    fn backward(&self, _: &[Tensor], _: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let mut inv = vec![0; self.0.len()];
        for (i, &p) in self.0.iter().enumerate() {
            inv[p] = i;
        }
        Ok(vec![Some(g.permute(&inv)?)])
    }
}

struct BroadcastBackward(Vec<usize>);
impl Backward for BroadcastBackward {
    fn name(&self) -> &'static str {
        "broadcast_to"
    }
    fn backward(&self, _: &[Tensor], _: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.sum_to(&self.0)?)])
    }
}

impl Tensor {
    /// Same data, new shape (one axis may be given as `usize::MAX` to be inferred). No copy.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        let mut shape = shape.to_vec();
        let n = self.numel();
        if let Some(pos) = shape.iter().position(|&d| d == usize::MAX) {
            let known: usize = shape.iter().filter(|&&d| d != usize::MAX).product();
            if known == 0 || n % known != 0 {
                return Err(Error::shape("reshape", format!("cannot infer an axis reshaping {} to {:?}", fmt_shape(self.shape()), shape)));
            }
            shape[pos] = n / known;
        }
        if numel(&shape) != n {
            return Err(Error::shape(
                "reshape",
                format!("cannot reshape {} ({} elements) to {}", fmt_shape(self.shape()), n, fmt_shape(&shape)),
            ));
        }
        if shape == self.shape() {
            return Ok(self.clone());
        }
        Ok(Tensor::from_op_shared(
            self.storage_arc().clone(),
            shape,
            &[self],
            ReshapeBackward(self.shape().to_vec()),
        ))
    }

    /// Collapse all axes after the first: (N, ...) -> (N, rest).
    pub fn flatten_from1(&self) -> Result<Tensor> {
        let n = self.shape().first().copied().unwrap_or(1);
        self.reshape(&[n, usize::MAX])
    }

    /// Reorder axes: output axis i is input axis `perm[i]`.
    pub fn permute(&self, perm: &[usize]) -> Result<Tensor> {
        let r = self.rank();
        let mut seen = vec![false; r];
        if perm.len() != r || perm.iter().any(|&p| p >= r || std::mem::replace(&mut seen[p], true)) {
            return Err(Error::shape("permute", format!("{:?} is not a permutation of the axes of {}", perm, fmt_shape(self.shape()))));
        }
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            return Ok(self.clone());
        }
        let out_shape: Vec<usize> = perm.iter().map(|&p| self.shape()[p]).collect();
        let _p = crate::profile::scope("permute", 0.0, crate::profile::bytes_of(self, 2 * self.numel()));
        let storage = match &*self.storage() {
            Storage::Cpu(s) => Storage::Cpu(cpu_map!(s, |v| cpu::permute(v, self.shape(), perm))),
            #[cfg(feature = "wgpu")]
            Storage::Wgpu(s) => crate::backend::wgpu::storage(&s.backend, wgpu::permute_wgpu(&s.backend, &s.buf, self.shape(), perm)?),
            #[allow(unreachable_patterns)]
            other => return Err(Error::Unsupported { op: "permute", device: other.device_name() }),
        };
        Ok(Tensor::from_op(storage, out_shape, &[self], PermuteBackward(perm.to_vec())))
    }

    /// Swap two axes (negative axes count from the end).
    pub fn transpose(&self, a: isize, b: isize) -> Result<Tensor> {
        let r = self.rank();
        let (a, b) = (crate::shape::axis("transpose", a, r)?, crate::shape::axis("transpose", b, r)?);
        let mut perm: Vec<usize> = (0..r).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }

    /// Materialise a broadcast to `shape` (size-1 and missing leading axes are repeated).
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Tensor> {
        let ok = shape.len() >= self.rank()
            && self.shape().iter().rev().zip(shape.iter().rev()).all(|(&s, &o)| s == o || s == 1);
        if !ok {
            return Err(Error::shape("broadcast_to", format!("cannot broadcast {} to {}", fmt_shape(self.shape()), fmt_shape(shape))));
        }
        if shape == self.shape() {
            return Ok(self.clone());
        }
        let src = broadcast_strides(self.shape(), shape);
        let _p = crate::profile::scope("broadcast_to", 0.0, crate::profile::bytes_of(self, numel(shape) + self.numel()));
        let storage = match &*self.storage() {
            Storage::Cpu(s) => Storage::Cpu(cpu_map!(s, |v| cpu::strided_copy(v, &src, shape))),
            #[cfg(feature = "wgpu")]
            Storage::Wgpu(s) => crate::backend::wgpu::storage(&s.backend, wgpu::strided_copy(&s.backend, "broadcast_to", &s.buf, 0, &src, shape)?),
            #[allow(unreachable_patterns)]
            other => return Err(Error::Unsupported { op: "broadcast_to", device: other.device_name() }),
        };
        Ok(Tensor::from_op(storage, shape.to_vec(), &[self], BroadcastBackward(self.shape().to_vec())))
    }
}
