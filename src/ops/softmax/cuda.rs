//! CUDA launch code for fused log_softmax (kernels/softmax.cu).

use crate::backend::cuda::{Arg, CudaBackend, CudaBuffer};
use crate::Result;

const FILE: &str = "softmax.cu";

fn run(be: &CudaBackend, kernel: &str, inputs: &[&CudaBuffer], outer: usize, n: usize, inner: usize) -> Result<CudaBuffer> {
    be.check_owned("log_softmax", inputs)?;
    let out = be.alloc_uninit(outer * n * inner)?;
    let lines = (outer * inner) as u64;
    if !out.is_empty() {
        // One block per line, up to a few waves of the GPU; blocks loop over further lines.
        let grid = (lines.min(be.max_resident_blocks()) as u32, 1, 1);
        let mut args: Vec<Arg> = inputs.iter().map(|b| Arg::Buf(b)).collect();
        args.extend([Arg::Buf(&out), Arg::U64(lines), Arg::U64(n as u64), Arg::U64(inner as u64)]);
        be.launch(FILE, kernel, be.grid_launch(kernel, grid), &args)?;
    }
    Ok(out)
}

/// log_softmax of `x` seen as (outer, n, inner) along the middle axis.
pub(crate) fn log_softmax_cuda(be: &CudaBackend, x: &CudaBuffer, outer: usize, n: usize, inner: usize) -> Result<CudaBuffer> {
    run(be, "log_softmax_f32", &[x], outer, n, inner)
}

/// Its gradient from the output `y` and the incoming gradient `g`.
pub(crate) fn log_softmax_backward_cuda(be: &CudaBackend, y: &CudaBuffer, g: &CudaBuffer, outer: usize, n: usize, inner: usize) -> Result<CudaBuffer> {
    run(be, "log_softmax_backward_f32", &[y, g], outer, n, inner)
}
