//! Concatenation along any axis, and its inverse narrow/split.

mod cpu;

use crate::autograd::Backward;
use crate::dtype::Float;
use crate::shape::{axis, fmt_shape, numel};
use crate::storage::{CpuStorage, Storage};
use crate::tensor::Tensor;
use crate::{cpu_map, Error, Result};

struct ConcatBackward {
    axis: usize,
    lens: Vec<usize>,
}
impl Backward for ConcatBackward {
    fn name(&self) -> &'static str {
        "concat"
    }
    fn backward(&self, inputs: &[Tensor], _: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let mut start = 0;
        let mut out = Vec::with_capacity(self.lens.len());
        for (inp, &l) in inputs.iter().zip(&self.lens) {
            out.push(if inp.tracks_grad() { Some(g.narrow(self.axis as isize, start, l)?) } else { None });
            start += l;
        }
        Ok(out)
    }
}

struct NarrowBackward {
    axis: usize,
    start: usize,
    in_shape: Vec<usize>,
}
impl Backward for NarrowBackward {
    fn name(&self) -> &'static str {
        "narrow"
    }
    fn backward(&self, _: &[Tensor], _: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let s = &self.in_shape;
        let (outer, n, inner) = (numel(&s[..self.axis]), s[self.axis], numel(&s[self.axis + 1..]));
        let len = g.shape()[self.axis];
        let _p = crate::profile::scope("narrow_backward", 0.0, crate::profile::bytes_of(g, outer * n * inner + g.numel()));
        let st = match &*g.storage() {
            Storage::Cpu(c) => Storage::Cpu(cpu_map!(c, |v| cpu::pad_axis(v, outer, n, inner, self.start, len))),
            #[cfg(feature = "wgpu")]
            Storage::Wgpu(w) => {
                // Zeros, then the gradient copied into its [start, start + len) slab of the axis.
                let out = w.backend.zeros(outer * n * inner)?;
                crate::ops::layout::wgpu::strided_copy_into(
                    &w.backend, "narrow_backward", &w.buf, 0, &[len * inner, 1], &out, self.start * inner, &[n * inner, 1], &[outer, len * inner],
                )?;
                crate::backend::wgpu::storage(&w.backend, out)
            }
            #[allow(unreachable_patterns)]
            other => return Err(Error::Unsupported { op: "narrow_backward", device: other.device_name() }),
        };
        Ok(vec![Some(Tensor::from_storage(st, s.clone()))])
    }
}

fn concat_cpu<T: Float>(ts: &[&Tensor], guards: &[&CpuStorage], lens: &[usize], outer: usize, inner: usize) -> Result<Vec<T>> {
    let mut parts = Vec::with_capacity(ts.len());
    for (t, g) in ts.iter().zip(guards) {
        parts.push(T::slice_of(g).ok_or_else(|| Error::Mismatch {
            op: "concat",
            msg: format!("dtypes differ: {} is {}, expected {}", fmt_shape(t.shape()), g.dtype(), T::DTYPE),
        })?);
    }
    Ok(cpu::concat(&parts, lens, outer, inner))
}

impl Tensor {
    /// Join tensors along `axis`; all other axes must agree.
    pub fn concat(ts: &[&Tensor], ax: isize) -> Result<Tensor> {
        let first = ts.first().ok_or_else(|| Error::msg("concat: no tensors given"))?;
        let a = axis("concat", ax, first.rank())?;
        for t in ts {
            let same = t.rank() == first.rank()
                && t.shape().iter().zip(first.shape()).enumerate().all(|(d, (x, y))| d == a || x == y);
            if !same {
                let shapes: Vec<String> = ts.iter().map(|t| fmt_shape(t.shape())).collect();
                return Err(Error::shape("concat", format!("shapes {} do not agree off axis {a}", shapes.join(", "))));
            }
        }
        let lens: Vec<usize> = ts.iter().map(|t| t.shape()[a]).collect();
        let (outer, inner) = (numel(&first.shape()[..a]), numel(&first.shape()[a + 1..]));
        let mut out_shape = first.shape().to_vec();
        out_shape[a] = lens.iter().sum();
        let _p = crate::profile::scope("concat", 0.0, crate::profile::bytes_of(first, 2 * numel(&out_shape)));
        let guards: Vec<_> = ts.iter().map(|t| t.storage()).collect();
        #[cfg(feature = "wgpu")]
        if let Storage::Wgpu(w0) = &*guards[0] {
            let be = w0.backend.clone();
            // Each part is copied into its slab of the output: (outer, len_i * inner) blocks at column
            // offset start_i * inner of rows of total * inner.
            let total: usize = lens.iter().sum();
            let out = be.alloc(outer * total * inner)?;
            let mut start = 0;
            for ((g, t), &l) in guards.iter().zip(ts).zip(&lens) {
                let Storage::Wgpu(w) = &**g else {
                    return Err(Error::Mismatch {
                        op: "concat",
                        msg: format!("tensors on different devices: wgpu and {}", t.device().name()),
                    });
                };
                if !std::sync::Arc::ptr_eq(&w.backend, &be) {
                    return Err(Error::Mismatch { op: "concat", msg: "tensors on two different wgpu devices".into() });
                }
                crate::ops::layout::wgpu::strided_copy_into(
                    &w.backend, "concat", &w.buf, 0, &[l * inner, 1], &out, start * inner, &[total * inner, 1], &[outer, l * inner],
                )?;
                start += l;
            }
            drop(guards);
            let storage = crate::backend::wgpu::storage(&be, out);
            return Ok(Tensor::from_op(storage, out_shape, ts, ConcatBackward { axis: a, lens }));
        }
        let mut cpus = Vec::with_capacity(ts.len());
        for g in &guards {
            match &**g {
                Storage::Cpu(c) => cpus.push(c),
                #[allow(unreachable_patterns)]
                other => return Err(Error::Unsupported { op: "concat", device: other.device_name() }),
            }
        }
        let storage = match first.dtype() {
            crate::dtype::DType::F32 => CpuStorage::F32(concat_cpu(ts, &cpus, &lens, outer, inner)?),
            crate::dtype::DType::F64 => CpuStorage::F64(concat_cpu(ts, &cpus, &lens, outer, inner)?),
        };
        drop(guards);
        Ok(Tensor::from_op(Storage::Cpu(storage), out_shape, ts, ConcatBackward { axis: a, lens }))
    }

    /// `len` entries from `start` along `axis` (a copy).
    pub fn narrow(&self, ax: isize, start: usize, len: usize) -> Result<Tensor> {
        let a = axis("narrow", ax, self.rank())?;
        let s = self.shape();
        if start + len > s[a] {
            return Err(Error::shape("narrow", format!("range {start}..{} exceeds axis {a} of {}", start + len, fmt_shape(s))));
        }
        if start == 0 && len == s[a] {
            return Ok(self.clone());
        }
        let (outer, n, inner) = (numel(&s[..a]), s[a], numel(&s[a + 1..]));
        let _p = crate::profile::scope("narrow", 0.0, crate::profile::bytes_of(self, 2 * outer * len * inner));
        let storage = match &*self.storage() {
            Storage::Cpu(c) => Storage::Cpu(cpu_map!(c, |v| cpu::narrow(v, outer, n, inner, start, len))),
            #[cfg(feature = "wgpu")]
            Storage::Wgpu(w) => crate::backend::wgpu::storage(
                &w.backend,
                crate::ops::layout::wgpu::strided_copy(&w.backend, "narrow", &w.buf, start * inner, &[n * inner, 1], &[outer, len * inner])?,
            ),
            #[allow(unreachable_patterns)]
            other => return Err(Error::Unsupported { op: "narrow", device: other.device_name() }),
        };
        let mut out_shape = s.to_vec();
        out_shape[a] = len;
        Ok(Tensor::from_op(storage, out_shape, &[self], NarrowBackward { axis: a, start, in_shape: s.to_vec() }))
    }

    /// Split along `axis` into pieces of the given sizes (which must add up to the axis length).
    pub fn split(&self, ax: isize, sizes: &[usize]) -> Result<Vec<Tensor>> {
        let a = axis("split", ax, self.rank())?;
        if sizes.iter().sum::<usize>() != self.shape()[a] {
            return Err(Error::shape("split", format!("sizes {:?} do not add up to axis {a} of {}", sizes, fmt_shape(self.shape()))));
        }
        let mut start = 0;
        let mut out = Vec::with_capacity(sizes.len());
        for &l in sizes {
            out.push(self.narrow(a as isize, start, l)?);
            start += l;
        }
        Ok(out)
    }

    /// Split along `axis` into `n` equal pieces.
    pub fn chunk(&self, n: usize, ax: isize) -> Result<Vec<Tensor>> {
        let a = axis("chunk", ax, self.rank())?;
        if n == 0 || self.shape()[a] % n != 0 {
            return Err(Error::shape("chunk", format!("axis {a} of {} does not split into {n} equal parts", fmt_shape(self.shape()))));
        }
        self.split(a as isize, &vec![self.shape()[a] / n; n])
    }
}
