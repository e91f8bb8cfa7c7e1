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

/// Tensors move to the emulated device and back, parameters move in place, and gradients flow back.
#[test]
fn tensors_move_between_cpu_and_emulated_device() {
    let dev = emu();
    let x = deephide::Tensor::from_vec((0..1000).map(|i| i as f32 * 0.5).collect(), &[10, 100]).unwrap();
    let on = x.to_device(&dev).unwrap();
    assert_eq!(on.device(), dev);
    assert_eq!(on.to_device(&Device::Cpu).unwrap().to_vec_f32().unwrap(), x.to_vec_f32().unwrap());
    // Moving a parameter in place (how models go to a device), then a gradient flowing back to the CPU.
    let p = deephide::Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3]).unwrap().requires_grad_(true);
    p.move_to_device_(&dev).unwrap();
    assert_eq!(p.device(), dev);
    let leaf = deephide::Tensor::from_vec(vec![1.0f32, -1.0, 2.0], &[3]).unwrap().requires_grad_(true);
    let loss = leaf.to_device(&dev).unwrap().mul(&p).unwrap().sum_all().unwrap();
    loss.backward().unwrap();
    let g = leaf.grad().unwrap();
    assert!(g.device().is_cpu());
    assert_eq!(g.to_vec_f32().unwrap(), vec![1.0, 2.0, 3.0]);
}

/// `deephide gradcheck --device cuda-emu` through the binary, on the ops with the most device code.
#[test]
fn gradcheck_passes_on_the_emulated_device() {
    for op in ["conv2d_concat", "batch_norm", "max_pool2d", "log_softmax"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_deephide"))
            .args(["gradcheck", "--device", "cuda-emu", "--op", op])
            .output()
            .expect("run deephide");
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "gradcheck --op {op} on cuda-emu failed:\n{stdout}\n{stderr}");
        assert!(stderr.contains("gradcheck on cuda-emu"), "{stderr}");
        assert!(stdout.contains(" 0 failed") && !stdout.contains(" 0 passed"), "{stdout}");
    }
}

/// Under `deephide profile`, ops on a CUDA device are credited with the device time of their kernels
/// (CUDA events on a GPU, the emulated launch's duration here), not the time it took to queue them.
#[test]
fn profiling_credits_kernel_time_to_the_op() {
    let dev = emu();
    let x = deephide::Tensor::from_vec(vec![0.5f32; 4096], &[64, 64]).unwrap().to_device(&dev).unwrap();
    deephide::profile::reset();
    deephide::profile::enable(true);
    let y = x.matmul(&x).unwrap();
    deephide::profile::enable(false);
    assert_eq!(y.to_vec_f32().unwrap()[0], 16.0);
    let stats = deephide::profile::snapshot();
    let mm = stats.iter().find(|s| s.name == "matmul").unwrap_or_else(|| panic!("no matmul in {stats:?}"));
    assert_eq!(mm.calls, 1);
    assert!(mm.seconds > 0.0 && mm.flops == 2.0 * 64.0 * 64.0 * 64.0, "{mm:?}");
}
