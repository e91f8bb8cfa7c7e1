//! CUDA launch code for fused training-mode batch normalisation (kernels/batch_norm.cu). The per-channel
//! numbers (2C or 4C floats) go through the host, where the CPU path computes them in f64 too: the API
//! returns the batch statistics to the caller (running averages) anyway.

use crate::backend::cuda::{Arg, CudaBackend, CudaBuffer};
use crate::{Error, Result};

const FILE: &str = "batch_norm.cu";

fn dims(op: &'static str, n: usize, c: usize, s: usize) -> Result<(i32, i32, i32)> {
    if n.checked_mul(c).and_then(|v| v.checked_mul(s)).is_none_or(|v| v > i32::MAX as usize) || c > 65_535 * 1024 {
        return Err(Error::shape(op, format!("(N, C, S) = ({n}, {c}, {s}): too large for the CUDA kernels")));
    }
    Ok((n as i32, c as i32, s as i32))
}

/// Per-channel (mean, biased variance) of `x` seen as (n, c, s).
pub(crate) fn stats_cuda(be: &CudaBackend, x: &CudaBuffer, n: usize, c: usize, s: usize) -> Result<Vec<(f64, f64)>> {
    let (ni, ci, si) = dims("batch_norm", n, c, s)?;
    be.check_owned("batch_norm", &[x])?;
    if c == 0 {
        return Ok(Vec::new());
    }
    let stats = be.alloc_uninit(2 * c)?;
    let k = "bn_stats_f32";
    be.launch(FILE, k, be.grid_launch(k, (c as u32, 1, 1)), &[Arg::Buf(x), Arg::Buf(&stats), Arg::I32(ni), Arg::I32(ci), Arg::I32(si)])?;
    let v = be.download(&stats)?;
    Ok((0..c).map(|ch| (v[ch] as f64, v[c + ch] as f64)).collect())
}

/// `y = x * scale[ch] + shift[ch]`.
pub(crate) fn normalize_cuda(be: &CudaBackend, x: &CudaBuffer, n: usize, c: usize, s: usize, scale: &[f64], shift: &[f64]) -> Result<CudaBuffer> {
    let (ni, ci, si) = dims("batch_norm", n, c, s)?;
    let coef: Vec<f32> = scale.iter().chain(shift).map(|&v| v as f32).collect();
    let coef = be.upload(&coef)?;
    let y = be.alloc_uninit(x.len())?;
    if !x.is_empty() {
        let k = "bn_normalize_f32";
        be.launch(FILE, k, be.stride_launch(k, x.len() as u64), &[Arg::Buf(x), Arg::Buf(&y), Arg::Buf(&coef), Arg::I32(ni), Arg::I32(ci), Arg::I32(si)])?;
    }
    Ok(y)
}

/// Backward: (dx, dw, db) as in the CPU kernel, dw and db on the host.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward_cuda(be: &CudaBackend, g: &CudaBuffer, x: &CudaBuffer, n: usize, c: usize, s: usize, mean: &[f64], invstd: &[f64], w: &[f64]) -> Result<(CudaBuffer, Vec<f64>, Vec<f64>)> {
    let (ni, ci, si) = dims("batch_norm_backward", n, c, s)?;
    be.check_owned("batch_norm_backward", &[g, x])?;
    if x.is_empty() {
        return Ok((be.alloc_uninit(0)?, vec![0.0; c], vec![0.0; c]));
    }
    let params: Vec<f32> = mean.iter().chain(invstd).map(|&v| v as f32).collect();
    let params = be.upload(&params)?;
    let sums = be.alloc_uninit(2 * c)?;
    let k = "bn_backward_reduce_f32";
    be.launch(FILE, k, be.grid_launch(k, (c as u32, 1, 1)), &[Arg::Buf(g), Arg::Buf(x), Arg::Buf(&params), Arg::Buf(&sums), Arg::I32(ni), Arg::I32(ci), Arg::I32(si)])?;
    let sv = be.download(&sums)?;
    let (db, dw): (Vec<f64>, Vec<f64>) = ((0..c).map(|ch| sv[ch] as f64).collect(), (0..c).map(|ch| sv[c + ch] as f64).collect());
    let m = (n * s) as f64;
    let mut coef = vec![0f32; 4 * c];
    for ch in 0..c {
        let kk = w[ch] * invstd[ch] / m;
        coef[ch] = (kk * m) as f32;
        coef[c + ch] = (kk * db[ch]) as f32;
        coef[2 * c + ch] = (kk * dw[ch] * invstd[ch]) as f32;
        coef[3 * c + ch] = mean[ch] as f32;
    }
    let coef = be.upload(&coef)?;
    let dx = be.alloc_uninit(x.len())?;
    let k = "bn_backward_dx_f32";
    be.launch(FILE, k, be.stride_launch(k, x.len() as u64), &[Arg::Buf(g), Arg::Buf(x), Arg::Buf(&coef), Arg::Buf(&dx), Arg::I32(ni), Arg::I32(ci), Arg::I32(si)])?;
    Ok((dx, dw, db))
}
