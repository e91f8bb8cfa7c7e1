//! wgpu launch code for the element-wise unary ops; device code in `shaders/unary.wgsl`.

use super::UnaryOp;
use crate::backend::wgpu::{WORKGROUP_SIZE, WgpuBackend, WgpuBuffer, workgroups_for};
use crate::{Error, Result};

/// Host mirror of `Params` in unary.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    op: u32,
    a: f32,
    b: f32,
}

/// The op's code in unary.wgsl's `apply` and its scalar arguments (f64 parameters are rounded to f32, the
/// device's precision).
fn encode(op: UnaryOp) -> (u32, f32, f32) {
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
        UnaryOp::Powf(e) => (9, e as f32, 0.0),
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
pub fn unary_wgpu(be: &WgpuBackend, op: UnaryOp, x: &WgpuBuffer) -> Result<WgpuBuffer> {
    let n = x.len();
    let out = be.alloc(n)?;
    if n == 0 {
        return Ok(out);
    }
    let (code, a, b) = encode(op);
    let n32 = u32::try_from(n)
        .map_err(|_| Error::shape(op.name(), format!("{n} elements exceed the shader's u32 indexing")))?;
    let params = Params { n: n32, op: code, a, b };
    be.dispatch("unary.wgsl", "unary", &[x, &out], bytemuck::bytes_of(&params), workgroups_for(n, WORKGROUP_SIZE))?;
    Ok(out)
}
