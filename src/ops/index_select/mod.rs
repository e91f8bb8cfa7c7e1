//! index_select along the batch (first) axis: building mini-batches and pairing samples.

mod cpu;
#[cfg(feature = "wgpu")]
pub(crate) mod wgpu;

use std::sync::Arc;

use crate::autograd::Backward;
use crate::shape::{fmt_shape, numel};
use crate::storage::Storage;
use crate::tensor::Tensor;
use crate::{cpu_map, Error, Result};

struct IndexSelectBackward {
    idx: Arc<Vec<usize>>,
    n: usize,
}
impl Backward for IndexSelectBackward {
    fn name(&self) -> &'static str {
        "index_select"
    }
    fn backward(&self, inputs: &[Tensor], _: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let row = numel(&inputs[0].shape()[1..]);
        let st = match &*g.storage() {
            Storage::Cpu(c) => Storage::Cpu(cpu_map!(c, |v| cpu::scatter_add_rows(v, row, &self.idx, self.n))),
            #[cfg(feature = "wgpu")]
            Storage::Wgpu(w) => crate::backend::wgpu::storage(&w.backend, wgpu::scatter_add_rows_wgpu(&w.backend, &w.buf, row, &self.idx, self.n)?),
            #[allow(unreachable_patterns)]
            other => return Err(Error::Unsupported { op: "index_select_backward", device: other.device_name() }),
        };
        Ok(vec![Some(Tensor::from_storage(st, inputs[0].shape().to_vec()))])
    }
}

impl Tensor {
    /// Rows `idx` of the first axis (repeats allowed); gradients of repeated rows add up.
    pub fn index_select(&self, idx: &[usize]) -> Result<Tensor> {
        let s = self.shape();
        let Some(&n) = s.first() else {
            return Err(Error::shape("index_select", "needs a tensor of rank >= 1, got a scalar"));
        };
        if let Some(&bad) = idx.iter().find(|&&i| i >= n) {
            return Err(Error::shape("index_select", format!("index {bad} out of range for axis 0 of {}", fmt_shape(s))));
        }
        let row = numel(&s[1..]);
        let _p = crate::profile::scope("index_select", 0.0, crate::profile::bytes_of(self, 2 * idx.len() * row));
        let storage = match &*self.storage() {
            Storage::Cpu(c) => Storage::Cpu(cpu_map!(c, |v| cpu::gather_rows(v, row, idx))),
            #[cfg(feature = "wgpu")]
            Storage::Wgpu(w) => crate::backend::wgpu::storage(&w.backend, wgpu::gather_rows_wgpu(&w.backend, &w.buf, row, n, idx)?),
            #[allow(unreachable_patterns)]
            other => return Err(Error::Unsupported { op: "index_select", device: other.device_name() }),
        };
        let mut out_shape = s.to_vec();
        out_shape[0] = idx.len();
        Ok(Tensor::from_op(storage, out_shape, &[self], IndexSelectBackward { idx: Arc::new(idx.to_vec()), n }))
    }
}
