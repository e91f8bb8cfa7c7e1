//! CUDA launch code for layout ops (device code: kernels/layout.cu): permute and broadcast_to as strided
//! copies, with plain transposes of the last two axes through the tiled transpose kernel.

use crate::backend::cuda::{Arg, CudaBackend, CudaBuffer, pod};
use crate::{Error, Result};

const FILE: &str = "layout.cu";
const MAX_RANK: usize = 6;

/// Mirror of `struct StridedArgs` in kernels/layout.cu.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct StridedArgs {
    numel: u64,
    rank: u32,
    pad: u32,
    shape: [u64; MAX_RANK],
    strides: [u64; MAX_RANK],
}
const _: () = assert!(std::mem::size_of::<StridedArgs>() == 112);

/// `y` (contiguous, `out_shape`) read from `x` at input strides `strides` (0 on broadcast axes).
pub fn strided_copy_cuda(be: &CudaBackend, op: &'static str, x: &CudaBuffer, strides: &[usize], out_shape: &[usize]) -> Result<CudaBuffer> {
    be.check_owned(op, &[x])?;
    // Merge output axes that the input also walks contiguously, and drop size-1 axes.
    let (mut shape, mut st): (Vec<u64>, Vec<u64>) = (Vec::new(), Vec::new());
    for (&d, &s) in out_shape.iter().zip(strides) {
        if d == 1 {
            continue;
        }
        if let (Some(ld), Some(ls)) = (shape.last_mut(), st.last_mut())
            && *ls == (s * d) as u64
        {
            *ld *= d as u64;
            *ls = s as u64;
            continue;
        }
        shape.push(d as u64);
        st.push(s as u64);
    }
    let numel: u64 = out_shape.iter().map(|&d| d as u64).product();
    let y = be.alloc_uninit(numel as usize)?;
    if numel == 0 {
        return Ok(y);
    }
    if shape.len() > MAX_RANK {
        return Err(Error::shape(op, format!("output shape {out_shape:?} with input strides {strides:?} needs more than {MAX_RANK} axes on CUDA")));
    }
    let mut a = StridedArgs { numel, rank: shape.len() as u32, pad: 0, shape: [1; MAX_RANK], strides: [0; MAX_RANK] };
    a.shape[..shape.len()].copy_from_slice(&shape);
    a.strides[..shape.len()].copy_from_slice(&st);
    let k = "strided_copy_f32";
    be.launch(FILE, k, be.stride_launch(k, numel), &[Arg::Buf(x), Arg::Buf(&y), pod(&a)])?;
    Ok(y)
}

/// Batched transpose: `x` (batch, rows, cols) to (batch, cols, rows).
pub fn transpose_cuda(be: &CudaBackend, x: &CudaBuffer, batch: usize, rows: usize, cols: usize) -> Result<CudaBuffer> {
    be.check_owned("transpose", &[x])?;
    let y = be.alloc_uninit(x.len())?;
    if x.is_empty() {
        return Ok(y);
    }
    if [batch, rows, cols].iter().any(|&d| d > u32::MAX as usize) {
        return Err(Error::shape("transpose", format!("({batch}, {rows}, {cols}): every axis must fit 32 bits on CUDA")));
    }
    let k = "transpose_f32";
    let grid = (cols.div_ceil(32) as u32, rows.div_ceil(32) as u32, batch.min(65_535) as u32);
    if grid.1 > 65_535 {
        return Err(Error::shape("transpose", format!("{rows} rows: at most {} on CUDA", 65_535 * 32)));
    }
    be.launch(FILE, k, be.grid_launch(k, grid), &[Arg::Buf(x), Arg::Buf(&y), Arg::U32(batch as u32), Arg::U32(rows as u32), Arg::U32(cols as u32)])?;
    Ok(y)
}

/// `x` permuted by `perm` (output axis i is input axis perm[i]).
pub fn permute_cuda(be: &CudaBackend, x: &CudaBuffer, shape: &[usize], perm: &[usize]) -> Result<CudaBuffer> {
    let r = shape.len();
    // A swap of the last two axes with everything before in order: the tiled transpose.
    if r >= 2 && perm[..r - 2].iter().enumerate().all(|(i, &p)| i == p) && perm[r - 2] == r - 1 && perm[r - 1] == r - 2 {
        let batch = shape[..r - 2].iter().product();
        return transpose_cuda(be, x, batch, shape[r - 2], shape[r - 1]);
    }
    let mut in_strides = vec![1usize; r];
    for d in (0..r.saturating_sub(1)).rev() {
        in_strides[d] = in_strides[d + 1] * shape[d + 1];
    }
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let strides: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
    strided_copy_cuda(be, "permute", x, &strides, &out_shape)
}

/// 2-D block copy (see `copy2d_f32`): `dst[r * dst_stride + dst_off + j] = src[r * src_stride + src_off + j]`.
#[allow(clippy::too_many_arguments)]
pub fn copy2d_cuda(be: &CudaBackend, src: &CudaBuffer, dst: &CudaBuffer, rows: usize, cols: usize, src_stride: usize, src_off: usize, dst_stride: usize, dst_off: usize) -> Result<()> {
    be.check_owned("copy2d", &[src, dst])?;
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    // Bounds on the host: the last element read and written must be inside the buffers.
    let last_src = (rows - 1) * src_stride + src_off + cols;
    let last_dst = (rows - 1) * dst_stride + dst_off + cols;
    if last_src > src.len() || last_dst > dst.len() {
        return Err(Error::shape("copy2d", format!("{rows}x{cols} block reads up to {last_src} of {} floats, writes up to {last_dst} of {}", src.len(), dst.len())));
    }
    let k = "copy2d_f32";
    let total = (rows * cols) as u64;
    let u = |v: usize| Arg::U64(v as u64);
    be.launch(FILE, k, be.stride_launch(k, total), &[Arg::Buf(src), Arg::Buf(dst), u(rows), u(cols), u(src_stride), u(src_off), u(dst_stride), u(dst_off)])
}
