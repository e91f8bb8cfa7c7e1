//! wgpu launch code of avg/max pooling and their backwards; device code in `shaders/pool.wgsl`.

use super::cpu::PoolGeom;
use crate::backend::wgpu::{WORKGROUP_SIZE, WgpuBackend, WgpuBuffer, workgroups_for};
use crate::{Error, Result};

const SHADER: &str = "pool.wgsl";

/// Host mirror of `Params` in pool.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    nc: u32,
    h: u32,
    w: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    ph: u32,
    pw: u32,
    ho: u32,
    wo: u32,
    total: u32,
}

fn params(op: &'static str, g: &PoolGeom, total: usize) -> Result<Params> {
    let f = |v: usize| u32::try_from(v).map_err(|_| Error::shape(op, format!("{v} exceeds the shader's u32 indexing")));
    f(g.nc.saturating_mul(g.h * g.w).max(g.nc.saturating_mul(g.ho * g.wo)))?;
    Ok(Params {
        nc: f(g.nc)?,
        h: f(g.h)?,
        w: f(g.w)?,
        kh: f(g.kh)?,
        kw: f(g.kw)?,
        sh: f(g.sh)?,
        sw: f(g.sw)?,
        ph: f(g.ph)?,
        pw: f(g.pw)?,
        ho: f(g.ho)?,
        wo: f(g.wo)?,
        total: f(total)?,
    })
}

pub fn avg_pool2d_wgpu(be: &WgpuBackend, x: &WgpuBuffer, g: &PoolGeom) -> Result<WgpuBuffer> {
    let total = g.nc * g.ho * g.wo;
    let out = be.alloc(total)?;
    let p = params("avg_pool2d", g, total)?;
    be.dispatch_at(SHADER, "avg_pool_forward", &[(0, x), (1, &out)], 3, bytemuck::bytes_of(&p), workgroups_for(total, WORKGROUP_SIZE))?;
    Ok(out)
}

pub fn avg_pool2d_backward_wgpu(be: &WgpuBackend, gy: &WgpuBuffer, g: &PoolGeom) -> Result<WgpuBuffer> {
    let total = g.nc * g.h * g.w;
    let out = be.alloc(total)?;
    let p = params("avg_pool2d_backward", g, total)?;
    be.dispatch_at(SHADER, "avg_pool_backward", &[(0, gy), (1, &out)], 3, bytemuck::bytes_of(&p), workgroups_for(total, WORKGROUP_SIZE))?;
    Ok(out)
}

/// Values and per-output argmax (u32 plane index `ih * W + iw`, kept on the device for the backward).
pub fn max_pool2d_wgpu(be: &WgpuBackend, x: &WgpuBuffer, g: &PoolGeom) -> Result<(WgpuBuffer, WgpuBuffer)> {
    let total = g.nc * g.ho * g.wo;
    let (out, idx) = (be.alloc(total)?, be.alloc(total)?);
    let p = params("max_pool2d", g, total)?;
    be.dispatch_at(SHADER, "max_pool_forward", &[(0, x), (1, &out), (2, &idx)], 3, bytemuck::bytes_of(&p), workgroups_for(total, WORKGROUP_SIZE))?;
    Ok((out, idx))
}

pub fn max_pool2d_backward_wgpu(be: &WgpuBackend, gy: &WgpuBuffer, idx: &WgpuBuffer, g: &PoolGeom) -> Result<WgpuBuffer> {
    let total = g.nc * g.h * g.w;
    let out = be.alloc(total)?;
    let p = params("max_pool2d_backward", g, total)?;
    be.dispatch_at(SHADER, "max_pool_backward", &[(0, gy), (1, &out), (2, idx)], 3, bytemuck::bytes_of(&p), workgroups_for(total, WORKGROUP_SIZE))?;
    Ok(out)
}
