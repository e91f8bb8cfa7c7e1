//! wgpu launch code of index_select and its backward; device code in `shaders/index_select.wgsl`.

use crate::backend::wgpu::{WORKGROUP_SIZE, WgpuBackend, WgpuBuffer, workgroups_for};
use crate::{Error, Result};

/// Host mirror of `Params` in index_select.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    row: u32,
    count: u32,
    rows: u32,
    total: u32,
}

fn params(op: &'static str, row: usize, count: usize, rows: usize, total: usize) -> Result<Params> {
    let f = |v: usize| u32::try_from(v).map_err(|_| Error::shape(op, format!("{v} exceeds the shader's u32 indexing")));
    // The source's element count bounds every index the shader computes.
    f(rows.saturating_mul(row))?;
    f(count.saturating_mul(row))?;
    Ok(Params { row: f(row)?, count: f(count)?, rows: f(rows)?, total: f(total)? })
}

/// The indices as a device buffer of u32 (checked against `rows` by the caller).
fn upload_idx(be: &WgpuBackend, op: &'static str, idx: &[usize]) -> Result<WgpuBuffer> {
    let v = idx
        .iter()
        .map(|&i| u32::try_from(i).map_err(|_| Error::shape(op, format!("index {i} exceeds u32"))))
        .collect::<Result<Vec<u32>>>()?;
    be.upload_u32(&v)
}

/// Rows `idx` of a (rows, row) tensor.
pub fn gather_rows_wgpu(be: &WgpuBackend, x: &WgpuBuffer, row: usize, rows: usize, idx: &[usize]) -> Result<WgpuBuffer> {
    let total = idx.len() * row;
    let out = be.alloc(total)?;
    if total == 0 {
        return Ok(out);
    }
    let p = params("index_select", row, idx.len(), rows, total)?;
    let ib = upload_idx(be, "index_select", idx)?;
    be.dispatch("index_select.wgsl", "gather_rows", &[x, &out, &ib], bytemuck::bytes_of(&p), workgroups_for(total, WORKGROUP_SIZE))?;
    Ok(out)
}

/// Backward of [`gather_rows_wgpu`]: a (rows, row) tensor where row i sums the gradient rows picked from i.
pub fn scatter_add_rows_wgpu(be: &WgpuBackend, g: &WgpuBuffer, row: usize, idx: &[usize], rows: usize) -> Result<WgpuBuffer> {
    let total = rows * row;
    if idx.is_empty() {
        return be.zeros(total);
    }
    let out = be.alloc(total)?;
    if total == 0 {
        return Ok(out);
    }
    let p = params("index_select_backward", row, idx.len(), rows, total)?;
    let ib = upload_idx(be, "index_select_backward", idx)?;
    be.dispatch("index_select.wgsl", "scatter_add_rows", &[g, &out, &ib], bytemuck::bytes_of(&p), workgroups_for(total, WORKGROUP_SIZE))?;
    Ok(out)
}
