//! CUDA launch code for index_select along the first axis and its gradient (kernels/index.cu).

use crate::backend::cuda::{Arg, CudaBackend, CudaBuffer};
use crate::{Error, Result};

const FILE: &str = "index.cu";

fn indices(be: &CudaBackend, idx: &[usize]) -> Result<CudaBuffer> {
    let as_u32: Option<Vec<u32>> = idx.iter().map(|&i| u32::try_from(i).ok()).collect();
    let as_u32 = as_u32.ok_or_else(|| Error::shape("index_select", "indices must fit 32 bits on CUDA"))?;
    be.upload_u32(&as_u32)
}

/// Rows `idx` of `x` (rows of `row` floats). Indices were checked against the row count by the caller.
pub fn gather_rows_cuda(be: &CudaBackend, x: &CudaBuffer, row: usize, idx: &[usize]) -> Result<CudaBuffer> {
    be.check_owned("index_select", &[x])?;
    let y = be.alloc_uninit(idx.len() * row)?;
    if !y.is_empty() {
        let ib = indices(be, idx)?;
        let k = "gather_rows_f32";
        be.launch(FILE, k, be.stride_launch(k, y.len() as u64), &[Arg::Buf(x), Arg::Buf(&ib), Arg::Buf(&y), Arg::U64(idx.len() as u64), Arg::U64(row as u64)])?;
    }
    Ok(y)
}

/// Gradient of [`gather_rows_cuda`]: `g` (idx.len() rows) added into `n` zero rows at `idx`.
pub fn scatter_add_rows_cuda(be: &CudaBackend, g: &CudaBuffer, row: usize, idx: &[usize], n: usize) -> Result<CudaBuffer> {
    be.check_owned("index_select_backward", &[g])?;
    if let Some(&bad) = idx.iter().find(|&&i| i >= n) {
        return Err(Error::shape("index_select_backward", format!("index {bad} out of range for {n} rows")));
    }
    let dx = be.zeros(n * row)?;
    if !g.is_empty() {
        let ib = indices(be, idx)?;
        let k = "scatter_add_rows_f32";
        be.launch(FILE, k, be.stride_launch(k, g.len() as u64), &[Arg::Buf(g), Arg::Buf(&ib), Arg::Buf(&dx), Arg::U64(idx.len() as u64), Arg::U64(row as u64)])?;
    }
    Ok(dx)
}
