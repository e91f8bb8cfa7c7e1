//! wgpu launch code of the reductions; device code in `shaders/reduce.wgsl`.

use crate::backend::wgpu::{WORKGROUP_SIZE, WgpuBackend, WgpuBuffer, workgroups_for};
use crate::{Error, Result};

const SHADER: &str = "reduce.wgsl";

/// Host mirror of `Params` in reduce.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    outer: u32,
    red: u32,
    inner: u32,
    n_out: u32,
}

fn params(op: &'static str, outer: usize, red: usize, inner: usize) -> Result<Params> {
    let total = outer.checked_mul(red).and_then(|v| v.checked_mul(inner));
    let fits = |v: usize| u32::try_from(v).ok();
    match (total.and_then(fits), fits(outer), fits(red), fits(inner)) {
        (Some(_), Some(o), Some(r), Some(i)) => Ok(Params { outer: o, red: r, inner: i, n_out: o * i }),
        _ => Err(Error::shape(op, format!("({outer}, {red}, {inner}) exceeds the shader's u32 indexing"))),
    }
}

/// Sum over the middle axis of an (outer, red, inner) view: (outer, inner) out.
pub fn sum_wgpu(be: &WgpuBackend, x: &WgpuBuffer, outer: usize, red: usize, inner: usize) -> Result<WgpuBuffer> {
    let p = params("sum", outer, red, inner)?;
    let n_out = outer * inner;
    if red == 0 {
        return be.zeros(n_out);
    }
    let out = be.alloc(n_out)?;
    if n_out == 0 {
        return Ok(out);
    }
    // Many outputs, or short sums: a thread per output keeps every lane busy. Few long sums: a workgroup
    // per output, or the machine would sit mostly idle on a handful of threads.
    let (entry, groups) = if n_out >= 4096 || red <= 64 {
        ("sum_thread", workgroups_for(n_out, WORKGROUP_SIZE))
    } else {
        ("sum_group", n_out as u64)
    };
    be.dispatch_at(SHADER, entry, &[(0, x), (1, &out)], 3, bytemuck::bytes_of(&p), groups)?;
    Ok(out)
}

/// Max over the middle axis of an (outer, n, inner) view: values (outer, inner) and the argmax along the
/// axis as a buffer of u32 (stored in an f32-typed buffer; only shaders read it).
pub fn max_axis_wgpu(be: &WgpuBackend, x: &WgpuBuffer, outer: usize, n: usize, inner: usize) -> Result<(WgpuBuffer, WgpuBuffer)> {
    let p = params("max", outer, n, inner)?;
    let n_out = outer * inner;
    let (vals, idx) = (be.alloc(n_out)?, be.alloc(n_out)?);
    be.dispatch_at(SHADER, "max_axis", &[(0, x), (1, &vals), (2, &idx)], 3, bytemuck::bytes_of(&p), workgroups_for(n_out, WORKGROUP_SIZE))?;
    Ok((vals, idx))
}

/// Backward of [`max_axis_wgpu`]: the gradient `g` (outer, inner) goes to the argmax positions of an
/// (outer, n, inner) tensor of zeros.
pub fn max_backward_wgpu(be: &WgpuBackend, g: &WgpuBuffer, idx: &WgpuBuffer, outer: usize, n: usize, inner: usize) -> Result<WgpuBuffer> {
    let p = params("max_backward", outer, n, inner)?;
    let total = outer * n * inner;
    let out = be.alloc(total)?;
    be.dispatch_at(SHADER, "max_backward", &[(0, g), (1, &out), (2, idx)], 3, bytemuck::bytes_of(&p), workgroups_for(total, WORKGROUP_SIZE))?;
    Ok(out)
}
