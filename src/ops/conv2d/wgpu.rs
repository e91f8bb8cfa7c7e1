//! wgpu launch code of conv2d forward (bias and LeakyReLU fused), input gradient and weight gradient;
//! device code (implicit GEMM, 64x64 tiles through workgroup memory) in `shaders/conv2d.wgsl`.

use super::reference::Geom;
use crate::backend::wgpu::{WgpuBackend, WgpuBuffer};
use crate::{Error, Result};

const SHADER: &str = "conv2d.wgsl";
/// Tile edge of the shader (TM = TN = 64).
const TILE: usize = 64;

/// Host mirror of `Params` in conv2d.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    cin: u32,
    h: u32,
    w: u32,
    cout: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    ph: u32,
    pw: u32,
    ho: u32,
    wo: u32,
    gm: u32,
    gn: u32,
    gk: u32,
    tiles_m: u32,
    tiles_n: u32,
    flags: u32,
    slope: f32,
}

fn params(op: &'static str, g: &Geom, (gm, gn, gk): (usize, usize, usize), flags: u32, slope: f32) -> Result<Params> {
    let f = |v: usize| u32::try_from(v).map_err(|_| Error::shape(op, format!("{v} exceeds the shader's u32 indexing")));
    // Largest flat index any loader or store computes.
    f(g.n.saturating_mul(g.cin.max(g.cout)).saturating_mul((g.h * g.w).max(g.ho * g.wo)))?;
    Ok(Params {
        n: f(g.n)?,
        cin: f(g.cin)?,
        h: f(g.h)?,
        w: f(g.w)?,
        cout: f(g.cout)?,
        kh: f(g.kh)?,
        kw: f(g.kw)?,
        sh: f(g.sh)?,
        sw: f(g.sw)?,
        ph: f(g.ph)?,
        pw: f(g.pw)?,
        ho: f(g.ho)?,
        wo: f(g.wo)?,
        gm: f(gm)?,
        gn: f(gn)?,
        gk: f(gk)?,
        tiles_m: f(gm.div_ceil(TILE))?,
        tiles_n: f(gn.div_ceil(TILE))?,
        flags,
        slope,
    })
}

fn tiles(p: &Params) -> u64 {
    p.tiles_m as u64 * p.tiles_n as u64
}

/// Forward convolution (shapes validated by the caller), plus `bias` (Cout) if given, then LeakyReLU
/// with slope `leaky` if given.
pub fn conv2d_wgpu(be: &WgpuBackend, x: &WgpuBuffer, w: &WgpuBuffer, bias: Option<&WgpuBuffer>, g: &Geom, leaky: Option<f32>) -> Result<WgpuBuffer> {
    let out_len = g.n * g.cout * g.p();
    if g.k() == 0 {
        // No taps: the output is the bias (or zero) broadcast, activated; rare enough to do on the host.
        let mut v = vec![0f32; out_len];
        if let Some(b) = bias {
            let bv = be.download(b)?;
            for (i, o) in v.iter_mut().enumerate() {
                *o = bv[(i / g.p().max(1)) % g.cout];
            }
        }
        if let Some(s) = leaky {
            v.iter_mut().for_each(|o| if *o <= 0.0 { *o *= s });
        }
        return be.upload(&v);
    }
    let out = be.alloc(out_len)?;
    if out_len == 0 {
        return Ok(out);
    }
    let flags = u32::from(bias.is_some()) | (u32::from(leaky.is_some()) << 1);
    let p = params("conv2d", g, (g.cout, g.n * g.p(), g.k()), flags, leaky.unwrap_or(0.0))?;
    let mut bound = vec![(0, x), (1, w), (3, &out)];
    if let Some(b) = bias {
        bound.push((2, b));
    }
    let entry = if bias.is_some() { "conv2d_forward" } else { "conv2d_forward_nobias" };
    be.dispatch_at(SHADER, entry, &bound, 4, bytemuck::bytes_of(&p), tiles(&p))?;
    Ok(out)
}

/// Input gradient (N, Cin, H, W) from `dy` (N, Cout, Ho, Wo) and `w`.
pub fn conv2d_input_grad_wgpu(be: &WgpuBackend, dy: &WgpuBuffer, w: &WgpuBuffer, g: &Geom) -> Result<WgpuBuffer> {
    let len = g.n * g.cin * g.h * g.w;
    if g.cout * g.kh * g.kw == 0 || g.p() == 0 {
        return be.zeros(len);
    }
    let out = be.alloc(len)?;
    if len == 0 {
        return Ok(out);
    }
    let p = params("conv2d_input_grad", g, (g.cin, g.n * g.h * g.w, g.cout * g.kh * g.kw), 0, 0.0)?;
    be.dispatch_at(SHADER, "conv2d_input_grad", &[(0, dy), (1, w), (3, &out)], 4, bytemuck::bytes_of(&p), tiles(&p))?;
    Ok(out)
}

/// Weight gradient (Cout, Cin, kh, kw) from `x` (N, Cin, H, W) and `dy` (N, Cout, Ho, Wo), summed over
/// the batch.
pub fn conv2d_weight_grad_wgpu(be: &WgpuBackend, x: &WgpuBuffer, dy: &WgpuBuffer, g: &Geom) -> Result<WgpuBuffer> {
    let len = g.cout * g.k();
    if g.n * g.p() == 0 {
        return be.zeros(len);
    }
    let out = be.alloc(len)?;
    if len == 0 {
        return Ok(out);
    }
    let p = params("conv2d_weight_grad", g, (g.cout, g.k(), g.n * g.p()), 0, 0.0)?;
    be.dispatch_at(SHADER, "conv2d_weight_grad", &[(0, x), (1, dy), (3, &out)], 4, bytemuck::bytes_of(&p), tiles(&p))?;
    Ok(out)
}
