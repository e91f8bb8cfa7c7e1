//! CUDA launch code for 2-D pooling (device code: kernels/pool.cu).

use super::cpu::PoolGeom;
use crate::backend::cuda::{Arg, CudaBackend, CudaBuffer, pod};
use crate::{Error, Result};

const FILE: &str = "pool.cu";

/// Mirror of `struct PoolArgs` in kernels/pool.cu.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct PoolArgs {
    nc: i32,
    h: i32,
    w: i32,
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
const _: () = assert!(std::mem::size_of::<PoolArgs>() == 48);

fn args(op: &'static str, g: &PoolGeom) -> Result<PoolArgs> {
    let fields = [g.nc, g.h, g.w, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.ho, g.wo];
    let big = |v: usize| v > i32::MAX as usize;
    if fields.iter().any(|&v| big(v)) || big(g.h * g.w) || big(g.ho * g.wo) {
        return Err(Error::shape(op, format!("{g:?}: sizes must fit 32 bits on CUDA")));
    }
    let c = |v: usize| v as i32;
    Ok(PoolArgs { nc: c(g.nc), h: c(g.h), w: c(g.w), kh: c(g.kh), kw: c(g.kw), sh: c(g.sh), sw: c(g.sw), ph: c(g.ph), pw: c(g.pw), ho: c(g.ho), wo: c(g.wo), pad: 0 })
}

fn run(be: &CudaBackend, op: &'static str, kernel: &str, inputs: &[&CudaBuffer], out_len: usize, g: &PoolGeom) -> Result<CudaBuffer> {
    be.check_owned(op, inputs)?;
    let a = args(op, g)?;
    let y = be.alloc_uninit(out_len)?;
    if out_len > 0 {
        let mut list: Vec<Arg> = inputs.iter().map(|b| Arg::Buf(b)).collect();
        list.push(Arg::Buf(&y));
        list.push(pod(&a));
        be.launch(FILE, kernel, be.stride_launch(kernel, out_len as u64), &list)?;
    }
    Ok(y)
}

pub(crate) fn avg_pool2d_cuda(be: &CudaBackend, x: &CudaBuffer, g: &PoolGeom) -> Result<CudaBuffer> {
    run(be, "avg_pool2d", "avg_pool2d_f32", &[x], g.nc * g.ho * g.wo, g)
}

pub(crate) fn avg_pool2d_backward_cuda(be: &CudaBackend, gy: &CudaBuffer, g: &PoolGeom) -> Result<CudaBuffer> {
    run(be, "avg_pool2d_backward", "avg_pool2d_backward_f32", &[gy], g.nc * g.h * g.w, g)
}

pub(crate) fn max_pool2d_cuda(be: &CudaBackend, x: &CudaBuffer, g: &PoolGeom) -> Result<CudaBuffer> {
    run(be, "max_pool2d", "max_pool2d_f32", &[x], g.nc * g.ho * g.wo, g)
}

/// Needs the forward input `x`: the kernel finds each window's maximum again.
pub(crate) fn max_pool2d_backward_cuda(be: &CudaBackend, x: &CudaBuffer, gy: &CudaBuffer, g: &PoolGeom) -> Result<CudaBuffer> {
    run(be, "max_pool2d_backward", "max_pool2d_backward_f32", &[x, gy], g.nc * g.h * g.w, g)
}
