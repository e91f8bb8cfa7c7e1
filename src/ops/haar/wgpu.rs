//! wgpu launch code for the Haar DWT; device code in `shaders/haar.wgsl`.

use crate::backend::wgpu::{WORKGROUP_SIZE, WgpuBackend, WgpuBuffer, workgroups_for};
use crate::{Error, Result};

/// Host mirror of `Params` in haar.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    blocks: u32,
    c: u32,
    h2: u32,
    w2: u32,
}

/// One-level 2-D Haar DWT of `x`, NCHW `(n, c, h, w)` with `h`, `w` even, into `(n, 4c, h/2, w/2)` with
/// channels `[LL(c), HL(c), LH(c), HH(c)]`. Per 2x2 block with a=(0,0), b=(1,0), c=(0,1), d=(1,1) (row,
/// col), each halved: LL = a+b+c+d, HL = -a-b+c+d, LH = -a+b-c+d, HH = a-b-c+d.
pub fn haar_dwt_wgpu(
    be: &WgpuBackend,
    x: &WgpuBuffer,
    n: usize,
    c: usize,
    h: usize,
    w: usize,
) -> Result<WgpuBuffer> {
    const OP: &str = "haar_dwt";
    if !h.is_multiple_of(2) || !w.is_multiple_of(2) {
        return Err(Error::shape(OP, format!("H and W must be even, got input shape ({n}, {c}, {h}, {w})")));
    }
    let len = [n, c, h, w].iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    if len != Some(x.len()) {
        return Err(Error::shape(
            OP,
            format!("input shape ({n}, {c}, {h}, {w}) does not match the buffer's {} elements", x.len()),
        ));
    }
    let blocks = x.len() / 4;
    let out = be.alloc(x.len())?;
    if blocks == 0 {
        return Ok(out);
    }
    let params = Params {
        blocks: u32::try_from(blocks)
            .map_err(|_| Error::shape(OP, format!("{blocks} 2x2 blocks exceed the shader's u32 indexing")))?,
        c: c as u32,
        h2: (h / 2) as u32,
        w2: (w / 2) as u32,
    };
    be.dispatch(
        "haar.wgsl",
        "haar_dwt",
        &[x, &out],
        bytemuck::bytes_of(&params),
        workgroups_for(blocks, WORKGROUP_SIZE),
    )?;
    Ok(out)
}

/// Inverse of [`haar_dwt_wgpu`]: `(n, 4c, h2, w2)` into `(n, c, 2 h2, 2 w2)`.
pub fn haar_iwt_wgpu(be: &WgpuBackend, x: &WgpuBuffer, n: usize, c4: usize, h2: usize, w2: usize) -> Result<WgpuBuffer> {
    const OP: &str = "haar_iwt";
    if !c4.is_multiple_of(4) {
        return Err(Error::shape(OP, format!("channels must be a multiple of 4, got input shape ({n}, {c4}, {h2}, {w2})")));
    }
    let len = [n, c4, h2, w2].iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    if len != Some(x.len()) {
        return Err(Error::shape(
            OP,
            format!("input shape ({n}, {c4}, {h2}, {w2}) does not match the buffer's {} elements", x.len()),
        ));
    }
    let blocks = x.len() / 4;
    let out = be.alloc(x.len())?;
    if blocks == 0 {
        return Ok(out);
    }
    let params = Params {
        blocks: u32::try_from(blocks)
            .map_err(|_| Error::shape(OP, format!("{blocks} 2x2 blocks exceed the shader's u32 indexing")))?,
        c: (c4 / 4) as u32,
        h2: h2 as u32,
        w2: w2 as u32,
    };
    be.dispatch("haar.wgsl", "haar_iwt", &[x, &out], bytemuck::bytes_of(&params), workgroups_for(blocks, WORKGROUP_SIZE))?;
    Ok(out)
}
