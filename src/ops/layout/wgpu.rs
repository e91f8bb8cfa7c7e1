//! wgpu launch code of the layout ops: one strided copy (`shaders/layout.wgsl`) serves permute,
//! broadcast_to, narrow and its backward, and concat (see the shader for the index formula).

use crate::backend::wgpu::{WORKGROUP_SIZE, WgpuBackend, WgpuBuffer, workgroups_for};
use crate::shape::strides;
use crate::{Error, Result};

/// Largest rank of a copy (the uniform holds six axes).
pub const MAX_RANK: usize = 6;

/// Host mirror of `Params` in layout.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    rank: u32,
    src_off: u32,
    dst_off: u32,
    shape: [u32; 8],
    src_strides: [u32; 8],
    dst_strides: [u32; 8],
}

fn u32_of(op: &'static str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::shape(op, format!("index {v} does not fit the shader's u32 indexing")))
}

fn pack(op: &'static str, v: &[usize]) -> Result<[u32; 8]> {
    let mut out = [0u32; 8];
    for (o, &x) in out.iter_mut().zip(v) {
        *o = u32_of(op, x)?;
    }
    Ok(out)
}

/// Drop axes of extent 1 and merge neighbours that are contiguous in both views, so that high-rank but
/// simple copies (e.g. narrow of a rank-5 tensor) fit the shader's six axes and do less index math.
fn simplify(shape: &[usize], ss: &[usize], ds: &[usize]) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
    let (mut sh, mut s, mut d): (Vec<usize>, Vec<usize>, Vec<usize>) = (vec![], vec![], vec![]);
    for k in 0..shape.len() {
        if shape[k] == 1 {
            continue;
        }
        if let (Some(&last_n), Some(&last_s), Some(&last_d)) = (sh.last(), s.last(), d.last())
            && last_s == ss[k] * shape[k]
            && last_d == ds[k] * shape[k]
        {
            let j = sh.len() - 1;
            sh[j] = last_n * shape[k];
            s[j] = ss[k];
            d[j] = ds[k];
            continue;
        }
        sh.push(shape[k]);
        s.push(ss[k]);
        d.push(ds[k]);
    }
    (sh, s, d)
}

/// Copy the view (`shape`, `src_strides`, `src_off`) of `src` into the view (`shape`, `dst_strides`,
/// `dst_off`) of `dst`. The caller guarantees both views lie inside their buffers.
#[allow(clippy::too_many_arguments)]
pub fn strided_copy_into(
    be: &WgpuBackend,
    op: &'static str,
    src: &WgpuBuffer,
    src_off: usize,
    src_strides: &[usize],
    dst: &WgpuBuffer,
    dst_off: usize,
    dst_strides: &[usize],
    shape: &[usize],
) -> Result<()> {
    let n: usize = shape.iter().product();
    if n == 0 {
        return Ok(());
    }
    let (sh, ss, ds) = simplify(shape, src_strides, dst_strides);
    // Contiguous runs on both sides (concat, narrow, a plain copy): the division-free row kernel.
    let runs = match (sh.len(), ss.last(), ds.last()) {
        (1, Some(1), Some(1)) => Some((1, sh[0], 0, 0)),
        (2, Some(1), Some(1)) => Some((sh[0], sh[1], ss[0], ds[0])),
        _ => None,
    };
    if let Some((rows, cols, s_row, d_row)) = runs {
        let blocks = cols.div_ceil(256);
        let params = Params {
            n: u32_of(op, n)?,
            rank: 2,
            src_off: u32_of(op, src_off)?,
            dst_off: u32_of(op, dst_off)?,
            shape: pack(op, &[rows, cols, blocks])?,
            src_strides: pack(op, &[s_row])?,
            dst_strides: pack(op, &[d_row])?,
        };
        return be.dispatch("layout.wgsl", "copy_rows", &[src, dst], bytemuck::bytes_of(&params), (rows * blocks) as u64);
    }
    if sh.len() > MAX_RANK {
        return Err(Error::shape(op, format!("a copy over shape {shape:?} needs {} axes; wgpu handles {MAX_RANK}", sh.len())));
    }
    let params = Params {
        n: u32_of(op, n)?,
        rank: sh.len() as u32,
        src_off: u32_of(op, src_off)?,
        dst_off: u32_of(op, dst_off)?,
        shape: pack(op, &sh)?,
        src_strides: pack(op, &ss)?,
        dst_strides: pack(op, &ds)?,
    };
    be.dispatch("layout.wgsl", "strided_copy", &[src, dst], bytemuck::bytes_of(&params), workgroups_for(n, WORKGROUP_SIZE))
}

/// A new contiguous tensor of `out_shape` read from `src` through `src_strides` (one per output axis).
pub fn strided_copy(be: &WgpuBackend, op: &'static str, src: &WgpuBuffer, src_off: usize, src_strides: &[usize], out_shape: &[usize]) -> Result<WgpuBuffer> {
    let out = be.alloc(out_shape.iter().product())?;
    strided_copy_into(be, op, src, src_off, src_strides, &out, 0, &strides(out_shape), out_shape)?;
    Ok(out)
}

/// Permute the axes of a contiguous tensor of `in_shape`: output axis i is input axis `perm[i]`.
pub fn permute_wgpu(be: &WgpuBackend, x: &WgpuBuffer, in_shape: &[usize], perm: &[usize]) -> Result<WgpuBuffer> {
    let st = strides(in_shape);
    let out_shape: Vec<usize> = perm.iter().map(|&p| in_shape[p]).collect();
    let src: Vec<usize> = perm.iter().map(|&p| st[p]).collect();
    strided_copy(be, "permute", x, 0, &src, &out_shape)
}
