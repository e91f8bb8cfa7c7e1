//! CPU kernels of the element-wise unary ops: one generic map, parallel over chunks when large.

use rayon::prelude::*;

use super::UnaryOp;
use crate::dtype::Float;

/// Below this many elements, threading costs more than it saves.
pub(crate) const PAR_MIN: usize = 1 << 15;

#[inline(always)]
fn sigmoid<T: Float>(x: T) -> T {
    // Split by sign so exp never overflows.
    if x >= T::ZERO {
        T::ONE / (T::ONE + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::ONE + e)
    }
}

pub(crate) fn map<T: Float, F: Fn(T) -> T + Sync>(x: &[T], f: F) -> Vec<T> {
    if x.len() >= PAR_MIN {
        x.par_iter().with_min_len(4096).map(|&v| f(v)).collect()
    } else {
        x.iter().map(|&v| f(v)).collect()
    }
}

pub(crate) fn unary<T: Float>(op: UnaryOp, x: &[T]) -> Vec<T> {
    let c = T::from_f64;
    match op {
        UnaryOp::Neg => map(x, |v| -v),
        UnaryOp::Exp => map(x, |v| v.exp()),
        UnaryOp::Log => map(x, |v| v.ln()),
        UnaryOp::Sqrt => map(x, |v| v.sqrt()),
        UnaryOp::Sigmoid => map(x, sigmoid),
        UnaryOp::Tanh => map(x, |v| v.tanh()),
        UnaryOp::Relu => map(x, |v| if v > T::ZERO { v } else { T::ZERO }),
        UnaryOp::Abs => map(x, |v| v.abs()),
        UnaryOp::LeakyRelu(s) => {
            let s = c(s);
            map(x, move |v| if v > T::ZERO { v } else { v * s })
        }
        UnaryOp::Powf(p) => {
            let p = c(p);
            map(x, move |v| v.powf(p))
        }
        UnaryOp::AddScalar(s) => {
            let s = c(s);
            map(x, move |v| v + s)
        }
        UnaryOp::MulScalar(s) => {
            let s = c(s);
            map(x, move |v| v * s)
        }
        UnaryOp::Clamp(lo, hi) => {
            let (lo, hi) = (c(lo), c(hi));
            map(x, move |v| if v < lo { lo } else if v > hi { hi } else { v })
        }
        UnaryOp::Step => map(x, |v| if v > T::ZERO { T::ONE } else { T::ZERO }),
        UnaryOp::LeakyStep(s) => {
            let s = c(s);
            map(x, move |v| if v > T::ZERO { T::ONE } else { s })
        }
        UnaryOp::InRange(lo, hi) => {
            let (lo, hi) = (c(lo), c(hi));
            map(x, move |v| if v >= lo && v <= hi { T::ONE } else { T::ZERO })
        }
        UnaryOp::Sign => map(x, |v| {
            if v > T::ZERO {
                T::ONE
            } else if v < T::ZERO {
                -T::ONE
            } else {
                T::ZERO
            }
        }),
        UnaryOp::Square => map(x, |v| v * v),
        UnaryOp::Recip => map(x, |v| T::ONE / v),
    }
}

/// `g * (x > 0 ? 1 : slope)` in one pass.
pub(crate) fn masked_grad<T: Float>(g: &[T], x: &[T], slope: T) -> Vec<T> {
    let f = |(&gv, &xv): (&T, &T)| if xv > T::ZERO { gv } else { gv * slope };
    if g.len() >= PAR_MIN {
        g.par_iter().zip(x.par_iter()).with_min_len(4096).map(f).collect()
    } else {
        g.iter().zip(x).map(f).collect()
    }
}
