//! CUDA launch code for concat and narrow: 2-D block copies (`copy2d_f32` in kernels/layout.cu), since
//! both move runs of `len * inner` contiguous floats between rows of `outer`.

use crate::backend::cuda::{CudaBackend, CudaBuffer};
use crate::ops::layout::cuda::copy2d_cuda;
use crate::Result;

/// Joins `parts` (each `outer x lens[i] x inner`) along the middle axis.
pub fn concat_cuda(be: &CudaBackend, parts: &[&CudaBuffer], lens: &[usize], outer: usize, inner: usize) -> Result<CudaBuffer> {
    let total: usize = lens.iter().sum();
    let out = be.alloc_uninit(outer * total * inner)?;
    let mut start = 0;
    for (p, &l) in parts.iter().zip(lens) {
        copy2d_cuda(be, p, &out, outer, l * inner, l * inner, 0, total * inner, start * inner)?;
        start += l;
    }
    Ok(out)
}

/// Entries `start..start + len` of the middle axis of `x` seen as (outer, n, inner).
pub fn narrow_cuda(be: &CudaBackend, x: &CudaBuffer, outer: usize, n: usize, inner: usize, start: usize, len: usize) -> Result<CudaBuffer> {
    let out = be.alloc_uninit(outer * len * inner)?;
    copy2d_cuda(be, x, &out, outer, len * inner, n * inner, start * inner, len * inner, 0)?;
    Ok(out)
}

/// Gradient of narrow: `g` (outer, len, inner) placed at `start` of a zero (outer, n, inner).
pub fn pad_axis_cuda(be: &CudaBackend, g: &CudaBuffer, outer: usize, n: usize, inner: usize, start: usize, len: usize) -> Result<CudaBuffer> {
    let out = be.zeros(outer * n * inner)?;
    copy2d_cuda(be, g, &out, outer, len * inner, len * inner, 0, n * inner, start * inner)?;
    Ok(out)
}
