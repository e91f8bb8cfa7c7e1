//! CUDA launch code for binary element-wise ops with broadcasting (device code: kernels/elementwise.cu).

use crate::backend::cuda::{Arg, CudaBackend, CudaBuffer, pod};
use crate::ops::BinaryOp;
use crate::{Error, Result};

const FILE: &str = "elementwise.cu";

/// Highest output rank the broadcast kernel takes: the kernel receives the shape by value in a
/// fixed-size struct. Callers with more axes merge adjacent axes that broadcast alike first.
pub const MAX_RANK: usize = 6;

/// Mirror of `struct BroadcastArgs` in kernels/elementwise.cu, field for field.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct BroadcastArgs {
    numel: u64,
    rank: u32,
    wide: u32,
    shape: [u64; MAX_RANK],
    a_strides: [u64; MAX_RANK],
    b_strides: [u64; MAX_RANK],
}

// The C struct has the same fields in the same order with the same natural alignment, so no padding
// differs; the size check catches an edit made to one side only.
const _: () = assert!(std::mem::size_of::<BroadcastArgs>() == 160);

/// Below this, the kernels index with 32 bits (see the kernels' comments): 2^31 rather than 2^32 so
/// that a grid-stride step past the last index cannot wrap around.
const NARROW_LIMIT: u64 = i32::MAX as u64;

/// The op code of `kernels/elementwise.cu` (`B_*`).
fn code(op: BinaryOp) -> u32 {
    match op {
        BinaryOp::Add => 0,
        BinaryOp::Sub => 1,
        BinaryOp::Mul => 2,
        BinaryOp::Div => 3,
        BinaryOp::Maximum => 4,
        BinaryOp::Ge => 5,
    }
}

/// `out = a op b` for two buffers of the same length.
pub fn binary_cuda(be: &CudaBackend, op: BinaryOp, a: &CudaBuffer, b: &CudaBuffer) -> Result<CudaBuffer> {
    if a.len() != b.len() {
        return Err(Error::shape(op.name(), format!("lengths differ: {} vs {}", a.len(), b.len())));
    }
    be.check_owned(op.name(), &[a, b])?;
    let out = be.alloc_uninit(a.len())?;
    if !a.is_empty() {
        let n = a.len() as u64;
        let k = "binary_f32";
        be.launch(FILE, k, be.stride_launch(k, n), &[Arg::Buf(a), Arg::Buf(b), Arg::Buf(&out), Arg::U64(n), Arg::U32(code(op))])?;
    }
    Ok(out)
}

/// `out = a + b` for two buffers of the same length.
pub fn add_cuda(be: &CudaBackend, a: &CudaBuffer, b: &CudaBuffer) -> Result<CudaBuffer> {
    binary_cuda(be, BinaryOp::Add, a, b)
}

/// `out = a op b` broadcast to the contiguous shape `out_shape`: element `idx` (a multi-index of
/// `out_shape`) is `a[sum(idx[d] * a_strides[d])] op b[sum(idx[d] * b_strides[d])]`. Strides count
/// elements; a broadcast axis has stride 0. Any strides are accepted (transposed or sliced views too)
/// as long as every offset stays inside its buffer.
pub fn binary_broadcast_cuda(
    be: &CudaBackend,
    op: BinaryOp,
    a: &CudaBuffer,
    a_strides: &[usize],
    b: &CudaBuffer,
    b_strides: &[usize],
    out_shape: &[usize],
) -> Result<CudaBuffer> {
    let (shape, sa, sb) = merge_axes(out_shape, a_strides, b_strides);
    let args = broadcast_args(a.len(), &sa, b.len(), &sb, &shape)?;
    be.check_owned(op.name(), &[a, b])?;
    let out = be.alloc_uninit(args.numel as usize)?;
    if args.numel > 0 {
        let k = "binary_broadcast_f32";
        be.launch(FILE, k, be.stride_launch(k, args.numel), &[Arg::Buf(a), Arg::Buf(b), Arg::Buf(&out), Arg::U32(code(op)), pod(&args)])?;
    }
    Ok(out)
}

/// `out = a + b` with broadcasting (see [`binary_broadcast_cuda`]).
pub fn add_broadcast_cuda(
    be: &CudaBackend,
    a: &CudaBuffer,
    a_strides: &[usize],
    b: &CudaBuffer,
    b_strides: &[usize],
    out_shape: &[usize],
) -> Result<CudaBuffer> {
    binary_broadcast_cuda(be, BinaryOp::Add, a, a_strides, b, b_strides, out_shape)
}

/// Drops size-1 axes and merges neighbouring axes that both inputs traverse contiguously, so that any
/// rank reaches the kernel as few axes (and fewer divisions): (N, C, H, W) + (1, C, 1, 1) becomes
/// (N, C, H*W) with strides (0, 1, 0) for the bias.
pub(crate) fn merge_axes(shape: &[usize], a: &[usize], b: &[usize]) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
    if shape.len() != a.len() || shape.len() != b.len() {
        // Let broadcast_args report the mismatch.
        return (shape.to_vec(), a.to_vec(), b.to_vec());
    }
    let (mut s, mut sa, mut sb): (Vec<usize>, Vec<usize>, Vec<usize>) = (Vec::new(), Vec::new(), Vec::new());
    for d in 0..shape.len() {
        if shape[d] == 1 {
            continue;
        }
        if let (Some(&ls), Some(&la), Some(&lb)) = (s.last(), sa.last(), sb.last())
            && la == a[d] * shape[d]
            && lb == b[d] * shape[d]
        {
            let _ = ls;
            let last = s.len() - 1;
            s[last] *= shape[d];
            sa[last] = a[d];
            sb[last] = b[d];
            continue;
        }
        s.push(shape[d]);
        sa.push(a[d]);
        sb.push(b[d]);
    }
    if shape.contains(&0) {
        return (vec![0], vec![0], vec![0]);
    }
    (s, sa, sb)
}

/// Validates a broadcast add and packs its kernel argument. Bounds are checked here, on the host,
/// because an out-of-range stride would otherwise read other allocations silently.
pub(crate) fn broadcast_args(
    a_len: usize,
    a_strides: &[usize],
    b_len: usize,
    b_strides: &[usize],
    out_shape: &[usize],
) -> Result<BroadcastArgs> {
    const OP: &str = "binary_broadcast";
    let rank = out_shape.len();
    if rank > MAX_RANK {
        return Err(Error::shape(
            OP,
            format!("output shape {out_shape:?} has rank {rank} after merging axes; the CUDA kernel takes at most {MAX_RANK}"),
        ));
    }
    if a_strides.len() != rank || b_strides.len() != rank {
        return Err(Error::shape(
            OP,
            format!(
                "output shape {out_shape:?} needs {rank} strides per input, got a: {a_strides:?}, b: {b_strides:?}"
            ),
        ));
    }
    let too_big =
        || Error::shape(OP, format!("output shape {out_shape:?} has more elements than fit in memory"));
    let numel = out_shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d as u64)).ok_or_else(too_big)?;
    usize::try_from(numel).map_err(|_| too_big())?;

    // Largest offset each input is read at: the last coordinate on every axis.
    let max_offset = |strides: &[usize]| -> Option<u64> {
        out_shape.iter().zip(strides).try_fold(0u64, |acc, (&d, &s)| {
            (d.saturating_sub(1) as u64).checked_mul(s as u64).and_then(|o| acc.checked_add(o))
        })
    };
    let mut narrow = numel <= NARROW_LIMIT;
    if numel > 0 {
        for (name, len, strides) in [("a", a_len, a_strides), ("b", b_len, b_strides)] {
            let max = max_offset(strides).filter(|&m| m < len as u64).ok_or_else(|| {
                Error::shape(
                    OP,
                    format!("input {name} ({len} elements) with strides {strides:?} reads out of bounds for output shape {out_shape:?}"),
                )
            })?;
            narrow &= max <= NARROW_LIMIT;
        }
    }

    let mut args = BroadcastArgs {
        numel,
        rank: rank as u32,
        wide: u32::from(!narrow),
        shape: [1; MAX_RANK],
        a_strides: [0; MAX_RANK],
        b_strides: [0; MAX_RANK],
    };
    for d in 0..rank {
        args.shape[d] = out_shape[d] as u64;
        args.a_strides[d] = a_strides[d] as u64;
        args.b_strides[d] = b_strides[d] as u64;
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_a_row_broadcast() {
        // (2, 3) + (3,) as strides: a contiguous, b broadcast along rows.
        let args = broadcast_args(6, &[3, 1], 3, &[0, 1], &[2, 3]).unwrap();
        assert_eq!((args.numel, args.rank, args.wide), (6, 2, 0));
        assert_eq!(&args.shape[..2], &[2, 3]);
        assert_eq!(&args.b_strides[..2], &[0, 1]);
    }

    #[test]
    fn rejects_bad_broadcasts() {
        // Reads past the end of b.
        assert!(broadcast_args(6, &[3, 1], 2, &[0, 1], &[2, 3]).is_err());
        // Stride count does not match the rank.
        assert!(broadcast_args(6, &[3, 1], 3, &[1], &[2, 3]).is_err());
        // Rank above the kernel's limit.
        assert!(broadcast_args(1, &[0; 7], 1, &[0; 7], &[1; 7]).is_err());
        // Overflowing element count.
        assert!(broadcast_args(1, &[0; 3], 1, &[0; 3], &[usize::MAX, 2, 2]).is_err());
    }

    #[test]
    fn merges_contiguous_axes() {
        // (2, 3, 4, 5) + (1, 3, 1, 1): the bias axis stays, H and W merge, N stays.
        let (s, a, b) = merge_axes(&[2, 3, 4, 5], &[60, 20, 5, 1], &[0, 1, 0, 0]);
        assert_eq!((s, a, b), (vec![2, 3, 20], vec![60, 20, 1], vec![0, 1, 0]));
        // Same layouts everywhere: one axis.
        let (s, _, _) = merge_axes(&[2, 3, 4], &[12, 4, 1], &[12, 4, 1]);
        assert_eq!(s, vec![24]);
        // Size-1 axes vanish; an empty shape is one empty axis.
        assert_eq!(merge_axes(&[1, 1], &[1, 1], &[1, 1]).0, Vec::<usize>::new());
        assert_eq!(merge_axes(&[3, 0], &[0, 1], &[1, 0]).0, vec![0]);
    }

    #[test]
    fn empty_output_reads_nothing() {
        let args = broadcast_args(0, &[0, 1], 0, &[1, 0], &[0, 5]).unwrap();
        assert_eq!(args.numel, 0);
    }

    #[test]
    fn wide_indices_above_2_pow_31() {
        // A large strided input forces 64-bit offsets even for a small output.
        let args = broadcast_args(1 << 32, &[1 << 31, 1], 2, &[0, 1], &[2, 2]).unwrap();
        assert_eq!(args.wide, 1);
    }
}
