//! CUDA launch code for the element-wise unary ops (device code: `unary_f32` in kernels/elementwise.cu).

use super::UnaryOp;
use crate::backend::cuda::{Arg, CudaBackend, CudaBuffer};
use crate::Result;

const FILE: &str = "elementwise.cu";

/// The op code (`U_*` in kernels/elementwise.cu) and the op's two scalar parameters.
fn code(op: UnaryOp) -> (u32, f32, f32) {
    match op {
        UnaryOp::Neg => (0, 0.0, 0.0),
        UnaryOp::Exp => (1, 0.0, 0.0),
        UnaryOp::Log => (2, 0.0, 0.0),
        UnaryOp::Sqrt => (3, 0.0, 0.0),
        UnaryOp::Sigmoid => (4, 0.0, 0.0),
        UnaryOp::Tanh => (5, 0.0, 0.0),
        UnaryOp::Relu => (6, 0.0, 0.0),
        UnaryOp::Abs => (7, 0.0, 0.0),
        UnaryOp::LeakyRelu(s) => (8, s as f32, 0.0),
        UnaryOp::Powf(p) => (9, p as f32, 0.0),
        UnaryOp::AddScalar(s) => (10, s as f32, 0.0),
        UnaryOp::MulScalar(s) => (11, s as f32, 0.0),
        UnaryOp::Clamp(lo, hi) => (12, lo as f32, hi as f32),
        UnaryOp::Step => (13, 0.0, 0.0),
        UnaryOp::LeakyStep(s) => (14, s as f32, 0.0),
        UnaryOp::InRange(lo, hi) => (15, lo as f32, hi as f32),
        UnaryOp::Sign => (16, 0.0, 0.0),
        UnaryOp::Square => (17, 0.0, 0.0),
        UnaryOp::Recip => (18, 0.0, 0.0),
    }
}

/// `y = op(x)` element-wise.
pub fn unary_cuda(be: &CudaBackend, op: UnaryOp, x: &CudaBuffer) -> Result<CudaBuffer> {
    be.check_owned(op.name(), &[x])?;
    let y = be.alloc_uninit(x.len())?;
    if !x.is_empty() {
        let (c, p0, p1) = code(op);
        let n = x.len() as u64;
        let k = "unary_f32";
        be.launch(FILE, k, be.stride_launch(k, n), &[Arg::Buf(x), Arg::Buf(&y), Arg::U64(n), Arg::U32(c), Arg::F32(p0), Arg::F32(p1)])?;
    }
    Ok(y)
}

/// A buffer of `n` copies of `v`.
pub fn fill_cuda(be: &CudaBackend, n: usize, v: f32) -> Result<CudaBuffer> {
    let y = be.alloc_uninit(n)?;
    if n > 0 {
        let k = "fill_f32";
        be.launch(FILE, k, be.stride_launch(k, n as u64), &[Arg::Buf(&y), Arg::U64(n as u64), Arg::F32(v)])?;
    }
    Ok(y)
}
