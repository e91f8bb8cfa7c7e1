//! Every CUDA kernel run through the CPU emulation of CUDA (`--device cuda-emu`: kernels/*.cu compiled
//! by g++ against kernels/emu/cuda_emu.h, threads of a block as real threads meeting at barriers) and
//! compared with the CPU back end. Runs in CI: it needs g++, but no GPU and no NVRTC.
//!
//! The same launch code as on a GPU runs here (memory pool, launch configurations, argument packing);
//! see kernels/emu/cuda_emu.h for what the emulation cannot show (speed, coalescing, lockstep warps).
#![cfg(feature = "cuda")]

mod common;

use common::cuda_cases as cases;
use deephide::Device;

fn emu() -> Device {
    Device::parse("cuda-emu").unwrap_or_else(|e| panic!("the CUDA emulation needs g++: {e}"))
}

fn run(case: &str) {
    let dev = emu();
    let (_, f) = cases::CASES.iter().find(|(n, _)| *n == case).expect("case exists");
    if let Err(e) = f(&dev) {
        panic!("{case} under cuda-emu: {e}");
    }
}

#[test]
fn unary_ops() {
    run("unary");
}
#[test]
fn binary_ops() {
    run("binary");
}
#[test]
fn reductions() {
    run("reduce");
}
#[test]
fn layout_ops() {
    run("layout");
}
#[test]
fn concat_and_narrow() {
    run("concat_narrow");
}
#[test]
fn index_select() {
    run("index_select");
}
#[test]
fn matmul() {
    run("matmul");
}
#[test]
fn conv2d() {
    run("conv2d");
}
#[test]
fn haar() {
    run("haar");
}
#[test]
fn pooling() {
    run("pool");
}
#[test]
fn batch_norm() {
    run("batch_norm");
}
#[test]
fn losses() {
    run("losses");
}
#[test]
fn optimizers() {
    run("optim");
}
