//! wgpu launch code for binary element-wise ops; device code in `shaders/elementwise.wgsl`.

use crate::backend::wgpu::{WORKGROUP_SIZE, WgpuBackend, WgpuBuffer, workgroups_for};
use super::BinaryOp;
use crate::{Error, Result};

const SHADER: &str = "elementwise.wgsl";

/// Largest rank `add_broadcast_wgpu` handles (the uniform holds six axes).
pub const MAX_RANK: usize = 6;

/// Host mirror of `Params` in elementwise.wgsl (112 bytes; each 6-axis array padded to two vec4<u32>).
#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    rank: u32,
    /// Op code of the `binary` entry point (see [`op_code`]).
    op: u32,
    _pad: u32,
    out_shape: [u32; 8],
    a_strides: [u32; 8],
    b_strides: [u32; 8],
}

fn to_u32(op: &'static str, what: &str, v: usize) -> Result<u32> {
    u32::try_from(v)
        .map_err(|_| Error::shape(op, format!("{what} = {v} does not fit the shader's u32 indexing")))
}

/// `a + b` for two buffers of equal length.
pub fn add_wgpu(be: &WgpuBackend, a: &WgpuBuffer, b: &WgpuBuffer) -> Result<WgpuBuffer> {
    if a.len() != b.len() {
        return Err(Error::shape(
            "add",
            format!(
                "add_wgpu needs equal lengths, got {} and {} (use add_broadcast_wgpu to broadcast)",
                a.len(),
                b.len()
            ),
        ));
    }
    let n = a.len();
    let out = be.alloc(n)?;
    let params = Params { n: to_u32("add", "element count", n)?, ..Default::default() };
    be.dispatch(
        SHADER,
        "add",
        &[a, b, &out],
        bytemuck::bytes_of(&params),
        workgroups_for(n, WORKGROUP_SIZE),
    )?;
    Ok(out)
}

fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![0; shape.len()];
    let mut acc = 1;
    for d in (0..shape.len()).rev() {
        s[d] = acc;
        acc *= shape[d];
    }
    s
}

/// Highest element index an input reaches over `out_shape` with `strides` (shape has no zero axis).
fn max_index(out_shape: &[usize], strides: &[usize]) -> Option<usize> {
    out_shape.iter().zip(strides).try_fold(0usize, |acc, (&d, &s)| acc.checked_add((d - 1).checked_mul(s)?))
}

fn pack(op: &'static str, what: &str, v: &[usize]) -> Result<[u32; 8]> {
    let mut out = [0u32; 8];
    for (o, &x) in out.iter_mut().zip(v) {
        *o = to_u32(op, what, x)?;
    }
    Ok(out)
}

/// `out[i] = a[ia(i)] + b[ib(i)]` over `out_shape` (rank <= 6): `ia(i) = sum_d coord_d(i) * a_strides[d]`,
/// likewise for `b`. Strides are in elements, one per output axis, 0 on axes where the input is broadcast
/// (e.g. `(1,3,1,1)` against out `(2,3,4,5)` has strides `[0,1,0,0]`). The output is contiguous.
pub fn add_broadcast_wgpu(
    be: &WgpuBackend,
    a: &WgpuBuffer,
    a_strides: &[usize],
    b: &WgpuBuffer,
    b_strides: &[usize],
    out_shape: &[usize],
) -> Result<WgpuBuffer> {
    const OP: &str = "add_broadcast";
    let rank = out_shape.len();
    if rank > MAX_RANK {
        return Err(Error::shape(OP, format!("rank {rank} of out shape {out_shape:?} exceeds {MAX_RANK}")));
    }
    if a_strides.len() != rank || b_strides.len() != rank {
        return Err(Error::shape(
            OP,
            format!(
                "need one stride per output axis: out shape {out_shape:?}, a strides {a_strides:?}, b strides {b_strides:?}"
            ),
        ));
    }
    let n = out_shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::shape(OP, format!("element count of out shape {out_shape:?} overflows")))?;
    if n == 0 {
        return be.alloc(0);
    }
    for (name, buf, strides) in [("a", a, a_strides), ("b", b, b_strides)] {
        let reach = max_index(out_shape, strides);
        if reach.is_none_or(|m| m >= buf.len()) {
            return Err(Error::shape(
                OP,
                format!(
                    "input {name} has {} elements but strides {strides:?} over out shape {out_shape:?} reach index {}",
                    buf.len(),
                    reach.map_or("overflow".to_string(), |m| m.to_string())
                ),
            ));
        }
    }
    // Both inputs laid out exactly like the output: the plain kernel does the same with no index math.
    let dense = contiguous_strides(out_shape);
    if a_strides == dense && b_strides == dense && a.len() == n && b.len() == n {
        return add_wgpu(be, a, b);
    }
    let params = Params {
        n: to_u32(OP, "element count", n)?,
        rank: rank as u32,
        op: 0,
        _pad: 0,
        out_shape: pack(OP, "out shape axis", out_shape)?,
        a_strides: pack(OP, "a stride", a_strides)?,
        b_strides: pack(OP, "b stride", b_strides)?,
    };
    let out = be.alloc(n)?;
    be.dispatch(
        SHADER,
        "add_broadcast",
        &[a, b, &out],
        bytemuck::bytes_of(&params),
        workgroups_for(n, WORKGROUP_SIZE),
    )?;
    Ok(out)
}

/// Code of `op` in elementwise.wgsl's `combine`.
fn op_code(op: BinaryOp) -> u32 {
    match op {
        BinaryOp::Add => 0,
        BinaryOp::Sub => 1,
        BinaryOp::Mul => 2,
        BinaryOp::Div => 3,
        BinaryOp::Maximum => 4,
        BinaryOp::Ge => 5,
    }
}

/// Any broadcasting binary op: `out[i] = op(a[ia(i)], b[ib(i)])` over `out_shape`, with strides as in
/// [`add_broadcast_wgpu`]. Same-shaped inputs take the index-free path (rank 0 in the uniform).
pub fn binary_wgpu(
    be: &WgpuBackend,
    op: BinaryOp,
    a: &WgpuBuffer,
    a_strides: &[usize],
    b: &WgpuBuffer,
    b_strides: &[usize],
    out_shape: &[usize],
) -> Result<WgpuBuffer> {
    let name = op.name();
    let rank = out_shape.len();
    if rank > MAX_RANK {
        return Err(Error::shape(name, format!("rank {rank} of out shape {out_shape:?} exceeds {MAX_RANK} on wgpu")));
    }
    let n: usize = out_shape.iter().product();
    for (what, buf, strides) in [("a", a, a_strides), ("b", b, b_strides)] {
        if n > 0 && max_index(out_shape, strides).is_none_or(|m| m >= buf.len()) {
            return Err(Error::shape(
                name,
                format!("input {what} ({} elements) does not cover out shape {out_shape:?} with strides {strides:?}", buf.len()),
            ));
        }
    }
    let out = be.alloc(n)?;
    if n == 0 {
        return Ok(out);
    }
    let dense = contiguous_strides(out_shape);
    let same = a_strides == dense && b_strides == dense;
    let params = Params {
        n: to_u32(name, "element count", n)?,
        rank: if same { 0 } else { rank as u32 },
        op: op_code(op),
        _pad: 0,
        out_shape: pack(name, "out shape axis", out_shape)?,
        a_strides: pack(name, "a stride", a_strides)?,
        b_strides: pack(name, "b stride", b_strides)?,
    };
    be.dispatch(SHADER, "binary", &[a, b, &out], bytemuck::bytes_of(&params), workgroups_for(n, WORKGROUP_SIZE))?;
    Ok(out)
}
