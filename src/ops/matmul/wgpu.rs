//! wgpu launch code of batched matmul; device code (a 64x64-tiled kernel) in `shaders/matmul.wgsl`.

use crate::backend::wgpu::{WgpuBackend, WgpuBuffer};
use crate::{Error, Result};

/// Tile edge of the shader (TM = TN = 64).
const TILE: usize = 64;

/// Host mirror of `Params` in matmul.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    tiles_m: u32,
    tiles_n: u32,
    b_stride: u32,
    _pad: u32,
}

/// `C[b] = A[b] B[b]` for `batch` (m x k) by (k x n) products; `b_batched = false` shares one B.
#[allow(clippy::too_many_arguments)]
pub fn matmul_wgpu(be: &WgpuBackend, a: &WgpuBuffer, b: &WgpuBuffer, batch: usize, m: usize, k: usize, n: usize, b_batched: bool) -> Result<WgpuBuffer> {
    let f = |v: usize| u32::try_from(v).map_err(|_| Error::shape("matmul", format!("{v} exceeds the shader's u32 indexing")));
    f(batch.saturating_mul(m).saturating_mul(k.max(n)))?;
    f(batch.saturating_mul(k).saturating_mul(n))?;
    if k == 0 {
        return be.zeros(batch * m * n);
    }
    let out = be.alloc(batch * m * n)?;
    if out.is_empty() {
        return Ok(out);
    }
    let (tm, tn) = (m.div_ceil(TILE), n.div_ceil(TILE));
    let p = Params {
        m: f(m)?,
        n: f(n)?,
        k: f(k)?,
        batch: f(batch)?,
        tiles_m: f(tm)?,
        tiles_n: f(tn)?,
        b_stride: if b_batched { f(k * n)? } else { 0 },
        _pad: 0,
    };
    be.dispatch("matmul.wgsl", "matmul", &[a, b, &out], bytemuck::bytes_of(&p), (tm * tn * batch) as u64)?;
    Ok(out)
}
