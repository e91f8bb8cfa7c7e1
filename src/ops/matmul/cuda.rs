//! CUDA launch code for batched matmul (`matmul_f32` in kernels/gemm.cu).

use crate::backend::cuda::{Arg, CudaBackend, CudaBuffer};
use crate::{Error, Result};

const FILE: &str = "gemm.cu";
/// Output tile of the GEMM kernel (BM x BN in kernels/gemm.cu).
pub(crate) const TILE: usize = 64;

/// `batch` products (m x k) * (k x n); `b` is shared across the batch unless `b_batched`.
#[allow(clippy::too_many_arguments)]
pub fn matmul_cuda(be: &CudaBackend, a: &CudaBuffer, b: &CudaBuffer, batch: usize, m: usize, k: usize, n: usize, b_batched: bool) -> Result<CudaBuffer> {
    be.check_owned("matmul", &[a, b])?;
    let fits = |v: usize| v <= i32::MAX as usize;
    if ![batch, m, k, n, m * k, k * n, m * n].into_iter().all(fits) {
        return Err(Error::shape("matmul", format!("({batch} x {m} x {k}) * ({k} x {n}): each matrix must have fewer than 2^31 elements on CUDA")));
    }
    let c = be.alloc_uninit(batch * m * n)?;
    if c.is_empty() {
        return Ok(c);
    }
    if k == 0 {
        return be.zeros(batch * m * n);
    }
    let kernel = "matmul_f32";
    if m.div_ceil(TILE) > 65_535 {
        return Err(Error::shape("matmul", format!("{m} rows: at most {} on CUDA", 65_535 * TILE)));
    }
    let sb = if b_batched { (k * n) as i64 } else { 0 };
    let i = |v: usize| Arg::I32(v as i32);
    let l = |v: i64| Arg::U64(v as u64);
    // gridDim.z is limited to 65535: larger batches take several launches.
    for base in (0..batch).step_by(65_535) {
        let grid = (n.div_ceil(TILE) as u32, m.div_ceil(TILE) as u32, (batch - base).min(65_535) as u32);
        be.launch(FILE, kernel, be.grid_launch(kernel, grid), &[Arg::Buf(a), Arg::Buf(b), Arg::Buf(&c), i(m), i(n), i(k), l((m * k) as i64), l(sb), l((m * n) as i64), i(base)])?;
    }
    Ok(c)
}
