//! wgpu launch code of conv2d forward (bias and LeakyReLU fused), input gradient and weight gradient;
//! device code (implicit GEMM, 16 rows x 64 columns per workgroup) in `shaders/conv2d.wgsl`, which reads
//! the decomposition of its depth index from a per-shape table built here.

use super::reference::Geom;
use crate::backend::wgpu::{WgpuBackend, WgpuBuffer};
use crate::{Error, Result};

const SHADER: &str = "conv2d.wgsl";
/// GEMM rows and columns per workgroup (ROWS and COLS of the shader).
const ROWS: usize = 16;
const COLS: usize = 64;

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
    mp: u32,
    _pad: [u32; 3],
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
        tiles_m: f(gm.div_ceil(ROWS))?,
        tiles_n: f(gn.div_ceil(COLS))?,
        flags,
        slope,
        mp: f(gm.next_multiple_of(ROWS))?,
        _pad: [0; 3],
    })
}

/// The A operand of a GEMM packed as [k][row] with the rows padded to a multiple of 16 (zeros): `src`
/// viewed through `shape` / `strides` (row axis first) is copied so that A[row, k] lands at
/// `k * mp + row`; `dst_strides` are the packed strides of the same view.
fn pack_a(be: &WgpuBackend, src: &WgpuBuffer, gm: usize, gk: usize, shape: &[usize], strides: &[usize], dst_strides: &[usize]) -> Result<WgpuBuffer> {
    let mp = gm.next_multiple_of(ROWS);
    // Zeroed only when there are padding rows to keep at zero.
    let out = if mp == gm { be.alloc(gk * mp)? } else { be.zeros(gk * mp)? };
    crate::ops::layout::wgpu::strided_copy_into(be, "conv2d (packing)", src, 0, strides, &out, 0, dst_strides, shape)?;
    Ok(out)
}

/// Which depth table (see conv2d.wgsl's `ktab`) an entry point reads.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Table {
    /// Forward, k = (ci, i, j): (0, ci*H*W, i, j).
    Taps,
    /// Input gradient, k = (co, i, j): (co*Cin*kh*kw + i*kw + j, co*Ho*Wo, i, j).
    InputGrad,
    /// Weight gradient, k = (n, oh, ow): (n*Cout*Ho*Wo + oh*Wo + ow, n*Cin*H*W, oh*sh - ph, ow*sw - pw).
    Positions,
}

fn build_table(t: Table, g: &Geom) -> Vec<u32> {
    let taps = g.kh * g.kw;
    let mut v = Vec::new();
    match t {
        Table::Taps => {
            for ci in 0..g.cin {
                for i in 0..g.kh {
                    for j in 0..g.kw {
                        v.extend([0, (ci * g.h * g.w) as u32, i as u32, j as u32]);
                    }
                }
            }
        }
        Table::InputGrad => {
            for co in 0..g.cout {
                for i in 0..g.kh {
                    for j in 0..g.kw {
                        v.extend([(co * g.cin * taps + i * g.kw + j) as u32, (co * g.p()) as u32, i as u32, j as u32]);
                    }
                }
            }
        }
        Table::Positions => {
            for n in 0..g.n {
                for oh in 0..g.ho {
                    for ow in 0..g.wo {
                        let ih0 = (oh * g.sh) as i32 - g.ph as i32;
                        let iw0 = (ow * g.sw) as i32 - g.pw as i32;
                        v.extend([
                            (n * g.out_sample() + oh * g.wo + ow) as u32,
                            (n * g.in_sample()) as u32,
                            ih0 as u32,
                            iw0 as u32,
                        ]);
                    }
                }
            }
        }
    }
    v
}

/// The depth table of `t` for `g`, built once per shape and kept by the backend.
fn table(be: &WgpuBackend, t: Table, g: &Geom) -> Result<std::sync::Arc<WgpuBuffer>> {
    let key = format!("conv2d {t:?} {:?}", [g.n, g.cin, g.h, g.w, g.cout, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw]);
    be.cached_u32(key, || build_table(t, g))
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
    let tab = table(be, Table::Taps, g)?;
    let (m, k) = (g.cout, g.k());
    let mp = m.next_multiple_of(ROWS);
    let wp = pack_a(be, w, m, k, &[m, k], &[k, 1], &[1, mp])?;
    let mut bound = vec![(0, x), (1, &wp), (3, &out), (5, &*tab)];
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
    let tab = table(be, Table::InputGrad, g)?;
    // A[ci, (co, r)] = w[co, ci, r] for tap r, packed at (co * taps + r) * mp + ci.
    let (taps, mp) = (g.kh * g.kw, g.cin.next_multiple_of(ROWS));
    let wp = pack_a(be, w, g.cin, g.cout * taps, &[g.cin, g.cout, taps], &[taps, g.cin * taps, 1], &[1, taps * mp, mp])?;
    be.dispatch_at(SHADER, "conv2d_input_grad", &[(0, dy), (1, &wp), (3, &out), (5, &*tab)], 4, bytemuck::bytes_of(&p), tiles(&p))?;
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
    let tab = table(be, Table::Positions, g)?;
    // A[co, (n, q)] = dy[n, co, q] for output position q, packed at (n * P + q) * mp + co.
    let (pl, mp) = (g.p(), g.cout.next_multiple_of(ROWS));
    let dyp = pack_a(be, dy, g.cout, g.n * pl, &[g.cout, g.n, pl], &[pl, g.cout * pl, 1], &[1, pl * mp, mp])?;
    be.dispatch_at(SHADER, "conv2d_weight_grad", &[(0, x), (1, &dyp), (3, &out), (5, &*tab)], 4, bytemuck::bytes_of(&p), tiles(&p))?;
    Ok(out)
}
