//! CUDA launch code for conv2d as implicit GEMM (kernels/gemm.cu): forward with fused bias (and
//! LeakyReLU for `conv2d_leaky_relu`), input gradient, and split-K weight gradient.

use std::sync::{Arc, RwLockReadGuard};

use super::reference::Geom;
use crate::backend::cuda::{Arg, CudaBackend, CudaBuffer, pod};
use crate::storage::Storage;
use crate::{Error, Result};

const FILE: &str = "gemm.cu";
const TILE: usize = 64;
/// K steps of the GEMM tile (BK in kernels/gemm.cu): split-K chunks are multiples of it.
const BK: usize = 16;
/// Target K length per block of the weight gradient: long enough to amortise the tile's fixed cost,
/// short enough that a small weight (few output tiles) still spreads over many blocks.
const WGRAD_K_CHUNK: usize = 2048;

/// Mirror of `struct ConvArgs` in kernels/gemm.cu.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct ConvArgs {
    n: i32,
    cin: i32,
    h: i32,
    w: i32,
    cout: i32,
    kh: i32,
    kw: i32,
    sh: i32,
    sw: i32,
    ph: i32,
    pw: i32,
    ho: i32,
    wo: i32,
    pad: i32,
}
const _: () = assert!(std::mem::size_of::<ConvArgs>() == 56);

/// The kernels index inside a tensor with 32 bits: every tensor involved must hold fewer than 2^31 floats.
fn args(op: &'static str, g: &Geom) -> Result<ConvArgs> {
    let sizes = [g.n * g.cin * g.h * g.w, g.n * g.cout * g.ho * g.wo, g.cout * g.cin * g.kh * g.kw];
    if sizes.iter().any(|&s| s > i32::MAX as usize) {
        return Err(Error::shape(op, format!("{g:?}: every tensor must have fewer than 2^31 elements on CUDA")));
    }
    let c = |v: usize| v as i32;
    Ok(ConvArgs {
        n: c(g.n),
        cin: c(g.cin),
        h: c(g.h),
        w: c(g.w),
        cout: c(g.cout),
        kh: c(g.kh),
        kw: c(g.kw),
        sh: c(g.sh),
        sw: c(g.sw),
        ph: c(g.ph),
        pw: c(g.pw),
        ho: c(g.ho),
        wo: c(g.wo),
        pad: 0,
    })
}

/// The CUDA buffers behind `guards` and their backend, or `None` when the first tensor is not on a
/// CUDA device (the caller then takes its CPU path). Mixed devices are an error naming both.
pub(crate) fn buffers<'a>(op: &'static str, guards: &'a [RwLockReadGuard<'_, Storage>]) -> Result<Option<(Arc<CudaBackend>, Vec<&'a CudaBuffer>)>> {
    let Storage::Cuda(first) = &*guards[0] else { return Ok(None) };
    let mut bufs = Vec::with_capacity(guards.len());
    for g in guards {
        match &**g {
            Storage::Cuda(s) if Arc::ptr_eq(&s.backend, &first.backend) => bufs.push(&s.buf),
            other => {
                return Err(Error::Mismatch { op, msg: format!("tensors on different devices: {} and {}", first.backend.name(), other.device_name()) });
            }
        }
    }
    Ok(Some((first.backend.clone(), bufs)))
}

fn grid(op: &'static str, rows: usize, cols: usize, z: usize) -> Result<(u32, u32, u32)> {
    let g = (cols.div_ceil(TILE), rows.div_ceil(TILE), z);
    if g.0 > i32::MAX as usize || g.1 > 65_535 || g.2 > 65_535 {
        return Err(Error::shape(op, format!("GEMM grid {g:?} exceeds CUDA's limits")));
    }
    Ok((g.0 as u32, g.1 as u32, g.2 as u32))
}

/// `conv2d(x, w) + bias`, then LeakyReLU with `slope` when given.
pub fn conv2d_cuda(be: &CudaBackend, x: &CudaBuffer, w: &CudaBuffer, bias: Option<&CudaBuffer>, g: &Geom, leaky: Option<f32>) -> Result<CudaBuffer> {
    const OP: &str = "conv2d";
    let a = args(OP, g)?;
    let empty = be.alloc_uninit(0)?;
    let b = bias.unwrap_or(&empty);
    be.check_owned(OP, &[x, w, b])?;
    let y = be.alloc_uninit(g.n * g.cout * g.ho * g.wo)?;
    if y.is_empty() {
        return Ok(y);
    }
    let k = "conv2d_f32";
    let grid = grid(OP, g.cout, g.n * g.ho * g.wo, 1)?;
    let args = [Arg::Buf(x), Arg::Buf(w), Arg::Buf(b), Arg::Buf(&y), pod(&a), Arg::I32(bias.is_some() as i32), Arg::I32(leaky.is_some() as i32), Arg::F32(leaky.unwrap_or(0.0))];
    be.launch(FILE, k, be.grid_launch(k, grid), &args)?;
    Ok(y)
}

/// Gradient of conv2d with respect to its input, (N, Cin, H, W).
pub fn conv2d_input_grad_cuda(be: &CudaBackend, dy: &CudaBuffer, w: &CudaBuffer, g: &Geom) -> Result<CudaBuffer> {
    const OP: &str = "conv2d_input_grad";
    let a = args(OP, g)?;
    be.check_owned(OP, &[dy, w])?;
    let dx = be.alloc_uninit(g.n * g.cin * g.h * g.w)?;
    if dx.is_empty() {
        return Ok(dx);
    }
    let k = "conv2d_input_grad_f32";
    let grid = grid(OP, g.cin, g.n * g.h * g.w, 1)?;
    be.launch(FILE, k, be.grid_launch(k, grid), &[Arg::Buf(dy), Arg::Buf(w), Arg::Buf(&dx), pod(&a)])?;
    Ok(dx)
}

/// Gradient of conv2d with respect to its weight, (Cout, Cin, kh, kw), summed over the batch.
pub fn conv2d_weight_grad_cuda(be: &CudaBackend, x: &CudaBuffer, dy: &CudaBuffer, g: &Geom) -> Result<CudaBuffer> {
    const OP: &str = "conv2d_weight_grad";
    let a = args(OP, g)?;
    be.check_owned(OP, &[x, dy])?;
    // Split-K partial tiles are added into dw with atomics, so it starts at zero.
    let dw = be.zeros(g.cout * g.cin * g.kh * g.kw)?;
    let k_total = g.n * g.ho * g.wo;
    if dw.is_empty() || k_total == 0 {
        return Ok(dw);
    }
    let splits = k_total.div_ceil(WGRAD_K_CHUNK).min(65_535);
    let chunk = k_total.div_ceil(splits).div_ceil(BK) * BK;
    let splits = k_total.div_ceil(chunk);
    let k = "conv2d_weight_grad_f32";
    let grid = grid(OP, g.cout, g.cin * g.kh * g.kw, splits)?;
    be.launch(FILE, k, be.grid_launch(k, grid), &[Arg::Buf(x), Arg::Buf(dy), Arg::Buf(&dw), pod(&a), Arg::I32(chunk as i32)])?;
    Ok(dw)
}
