//! CUDA launch code for reductions (device code: kernels/reduce.cu).

use crate::backend::cuda::{Arg, CudaBackend, CudaBuffer, pod};
use crate::shape::numel;
use crate::{Error, Result};

const FILE: &str = "reduce.cu";
const MAX_RANK: usize = 6;
/// Up to this many elements per output, one thread sums each output (`sum_reduce_short_f32`); above, a
/// block does (`sum_reduce_f32`).
const SHORT_REDUCTION: u64 = 64;

/// Mirror of `struct ReduceArgs` in kernels/reduce.cu.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct ReduceArgs {
    outputs: u64,
    count: u64,
    out_rank: u32,
    red_rank: u32,
    out_shape: [u64; MAX_RANK],
    out_strides: [u64; MAX_RANK],
    red_shape: [u64; MAX_RANK],
    red_strides: [u64; MAX_RANK],
}
const _: () = assert!(std::mem::size_of::<ReduceArgs>() == 216);

/// Axes of one index space (kept or reduced), outermost first, with neighbouring axes merged when the
/// outer one steps exactly over the inner one (so a contiguous run of axes is one axis).
fn merged(axes: impl Iterator<Item = (usize, usize)>) -> (Vec<u64>, Vec<u64>) {
    let (mut shape, mut strides): (Vec<u64>, Vec<u64>) = (Vec::new(), Vec::new());
    for (d, s) in axes {
        if d == 1 {
            continue;
        }
        if let (Some(ld), Some(ls)) = (shape.last_mut(), strides.last_mut())
            && *ls == (s * d) as u64
        {
            *ld *= d as u64;
            *ls = s as u64;
            continue;
        }
        shape.push(d as u64);
        strides.push(s as u64);
    }
    (shape, strides)
}

/// Sum of `x` (shape `shape`) over the axes where `keep` is false; the result has the kept-dims shape
/// (reduced axes of size 1), contiguous.
pub fn sum_axes_cuda(be: &CudaBackend, x: &CudaBuffer, shape: &[usize], keep: &[bool]) -> Result<CudaBuffer> {
    be.check_owned("sum", &[x])?;
    let rank = shape.len();
    let mut strides = vec![1usize; rank];
    for d in (0..rank.saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    let (out_shape, out_strides) = merged((0..rank).filter(|&d| keep[d]).map(|d| (shape[d], strides[d])));
    let (red_shape, red_strides) = merged((0..rank).filter(|&d| !keep[d]).map(|d| (shape[d], strides[d])));
    if out_shape.len() > MAX_RANK || red_shape.len() > MAX_RANK {
        return Err(Error::shape("sum", format!("shape {shape:?} has too many separate axes for the CUDA kernel (at most {MAX_RANK} kept and {MAX_RANK} reduced after merging)")));
    }
    let outputs: u64 = out_shape.iter().product();
    let count: u64 = red_shape.iter().product();
    let out = be.alloc_uninit(outputs as usize)?;
    if outputs == 0 {
        return Ok(out);
    }
    if count == 0 || numel(shape) == 0 {
        return be.zeros(outputs as usize);
    }
    let mut a = ReduceArgs {
        outputs,
        count,
        out_rank: out_shape.len() as u32,
        red_rank: red_shape.len() as u32,
        out_shape: [1; MAX_RANK],
        out_strides: [0; MAX_RANK],
        red_shape: [1; MAX_RANK],
        red_strides: [0; MAX_RANK],
    };
    a.out_shape[..out_shape.len()].copy_from_slice(&out_shape);
    a.out_strides[..out_shape.len()].copy_from_slice(&out_strides);
    a.red_shape[..red_shape.len()].copy_from_slice(&red_shape);
    a.red_strides[..red_shape.len()].copy_from_slice(&red_strides);
    if count <= SHORT_REDUCTION {
        let k = "sum_reduce_short_f32";
        be.launch(FILE, k, be.stride_launch(k, outputs), &[Arg::Buf(x), Arg::Buf(&out), pod(&a)])?;
    } else {
        // One block per output, up to a few waves of the GPU; the blocks loop over further outputs.
        let k = "sum_reduce_f32";
        let grid = (outputs.min(be.max_resident_blocks()) as u32, 1, 1);
        be.launch(FILE, k, be.grid_launch(k, grid), &[Arg::Buf(x), Arg::Buf(&out), pod(&a)])?;
    }
    Ok(out)
}

/// Maximum over the middle axis of `x` seen as (outer, n, inner): the values (outer * inner) and the
/// index of the first maximum of each line (u32 bits, on the device).
pub fn max_axis_cuda(be: &CudaBackend, x: &CudaBuffer, outer: usize, n: usize, inner: usize) -> Result<(CudaBuffer, CudaBuffer)> {
    be.check_owned("max", &[x])?;
    let total = (outer * inner) as u64;
    let out = be.alloc_uninit(total as usize)?;
    let idx = be.alloc_uninit(total as usize)?;
    if total == 0 {
        return Ok((out, idx));
    }
    if n > u32::MAX as usize {
        return Err(Error::shape("max", format!("axis of {n} elements: indices must fit 32 bits on CUDA")));
    }
    let k = "max_axis_f32";
    be.launch(FILE, k, be.stride_launch(k, total), &[Arg::Buf(x), Arg::Buf(&out), Arg::Buf(&idx), Arg::U64(outer as u64), Arg::U64(n as u64), Arg::U64(inner as u64)])?;
    Ok((out, idx))
}

/// Gradient of [`max_axis_cuda`]: `g` (outer * inner) routed to the first maximum of each line of `x`.
pub fn max_axis_backward_cuda(be: &CudaBackend, x: &CudaBuffer, g: &CudaBuffer, outer: usize, n: usize, inner: usize) -> Result<CudaBuffer> {
    be.check_owned("max_backward", &[x, g])?;
    if g.len() != outer * inner || x.len() != outer * n * inner {
        return Err(Error::shape("max_backward", format!("buffers of {} and {} floats for (outer, n, inner) = ({outer}, {n}, {inner})", x.len(), g.len())));
    }
    let dx = be.alloc_uninit(x.len())?;
    let total = (outer * inner) as u64;
    if total > 0 && n > 0 {
        let k = "max_axis_backward_f32";
        be.launch(FILE, k, be.stride_launch(k, total), &[Arg::Buf(x), Arg::Buf(g), Arg::Buf(&dx), Arg::U64(outer as u64), Arg::U64(n as u64), Arg::U64(inner as u64)])?;
    }
    Ok(dx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_contiguous_axes_and_drops_ones() {
        // (2, 3, 4) contiguous, all kept: one axis of 24.
        assert_eq!(merged([(2, 12), (3, 4), (4, 1)].into_iter()), (vec![24], vec![1]));
        // Axes 0 and 2 of (2, 3, 4): not adjacent in memory, stay apart.
        assert_eq!(merged([(2, 12), (4, 1)].into_iter()), (vec![2, 4], vec![12, 1]));
        assert_eq!(merged([(1, 5), (3, 1)].into_iter()), (vec![3], vec![1]));
    }
}
