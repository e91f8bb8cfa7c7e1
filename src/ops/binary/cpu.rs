//! CPU kernels of the broadcasting binary ops.
//!
//! The output is walked row by row (last axis innermost); each input is read through broadcast strides
//! (0 on stretched axes), so one loop serves equal shapes, per-channel bias and per-sample scales.

use rayon::prelude::*;

use super::BinaryOp;
use crate::dtype::Float;
use crate::ops::unary::PAR_MIN;
use crate::shape::{broadcast_strides, numel};

#[inline(always)]
fn apply<T: Float>(op: BinaryOp, x: T, y: T) -> T {
    match op {
        BinaryOp::Add => x + y,
        BinaryOp::Sub => x - y,
        BinaryOp::Mul => x * y,
        BinaryOp::Div => x / y,
        BinaryOp::Maximum => if x >= y { x } else { y },
        BinaryOp::Ge => if x >= y { T::ONE } else { T::ZERO },
    }
}

fn rows<T: Float>(
    op: BinaryOp,
    a: &[T],
    sa: &[usize],
    b: &[T],
    sb: &[usize],
    out_shape: &[usize],
    row0: usize,
    out: &mut [T],
) {
    let r = out_shape.len();
    let inner = out_shape[r - 1];
    let (ia, ib) = (sa[r - 1], sb[r - 1]);
    for (k, orow) in out.chunks_mut(inner).enumerate() {
        // Offsets of this row's first element in a and b.
        let mut idx = row0 + k;
        let (mut oa, mut ob) = (0, 0);
        for d in (0..r - 1).rev() {
            let i = idx % out_shape[d];
            idx /= out_shape[d];
            oa += i * sa[d];
            ob += i * sb[d];
        }
        match (ia, ib) {
            (1, 1) => {
                for ((o, &x), &y) in orow.iter_mut().zip(&a[oa..oa + inner]).zip(&b[ob..ob + inner]) {
                    *o = apply(op, x, y);
                }
            }
            (1, 0) => {
                let y = b[ob];
                for (o, &x) in orow.iter_mut().zip(&a[oa..oa + inner]) {
                    *o = apply(op, x, y);
                }
            }
            (0, 1) => {
                let x = a[oa];
                for (o, &y) in orow.iter_mut().zip(&b[ob..ob + inner]) {
                    *o = apply(op, x, y);
                }
            }
            _ => {
                for (j, o) in orow.iter_mut().enumerate() {
                    *o = apply(op, a[oa + j * ia], b[ob + j * ib]);
                }
            }
        }
    }
}

pub(crate) fn binary<T: Float>(
    op: BinaryOp,
    a: &[T],
    a_shape: &[usize],
    b: &[T],
    b_shape: &[usize],
    out_shape: &[usize],
) -> Vec<T> {
    let n = numel(out_shape);
    if a_shape == b_shape {
        return if n >= PAR_MIN {
            a.par_iter().zip(b.par_iter()).with_min_len(4096).map(|(&x, &y)| apply(op, x, y)).collect()
        } else {
            a.iter().zip(b).map(|(&x, &y)| apply(op, x, y)).collect()
        };
    }
    let mut out = vec![T::ZERO; n];
    if n == 0 {
        return out;
    }
    if out_shape.is_empty() {
        out[0] = apply(op, a[0], b[0]);
        return out;
    }
    let sa = broadcast_strides(a_shape, out_shape);
    let sb = broadcast_strides(b_shape, out_shape);
    // Merge neighbouring axes that both inputs walk the same way (e.g. H and W of an NCHW tensor against
    // a per-channel (1, C, 1, 1) operand), so rows are long and the per-row index arithmetic is rare.
    let (mut shape, mut msa, mut msb) = (vec![out_shape[0]], vec![sa[0]], vec![sb[0]]);
    for d in 1..out_shape.len() {
        let last = shape.len() - 1;
        let mergeable = |s: &[usize], prev: usize| prev == s[d] * out_shape[d];
        if mergeable(&sa, msa[last]) && mergeable(&sb, msb[last]) {
            shape[last] *= out_shape[d];
            msa[last] = sa[d];
            msb[last] = sb[d];
        } else {
            shape.push(out_shape[d]);
            msa.push(sa[d]);
            msb.push(sb[d]);
        }
    }
    let inner = shape[shape.len() - 1].max(1);
    if n >= PAR_MIN {
        // Whole rows per task, so each task computes its offsets once per row.
        let rows_per_task = (PAR_MIN / 4 / inner).max(1);
        out.par_chunks_mut(rows_per_task * inner).enumerate().for_each(|(t, chunk)| {
            rows(op, a, &msa, b, &msb, &shape, t * rows_per_task, chunk)
        });
    } else {
        rows(op, a, &msa, b, &msb, &shape, 0, &mut out);
    }
    out
}

/// `dst += src` (same length), in parallel when large: gradient accumulation in place.
pub(crate) fn add_assign_slice<T: Float>(dst: &mut [T], src: &[T]) {
    debug_assert_eq!(dst.len(), src.len());
    if dst.len() >= PAR_MIN {
        dst.par_chunks_mut(1 << 14).zip(src.par_chunks(1 << 14)).for_each(|(d, s)| {
            for (d, &s) in d.iter_mut().zip(s) {
                *d += s;
            }
        });
    } else {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d += s;
        }
    }
}
