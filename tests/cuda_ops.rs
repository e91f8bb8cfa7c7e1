//! Every engine op on a real CUDA GPU against the CPU back end (forward and every input's gradient;
//! the cases are shared with tests/cuda_emulation.rs, which runs the same kernels under the CPU
//! emulation). Without a usable GPU each test prints `skipped: <reason>` and passes, after checking
//! that asking for the device failed cleanly (an error, not a panic).
#![cfg(feature = "cuda")]

mod common;

use common::cuda_cases as cases;
use deephide::backend::cuda::probe;
use deephide::Device;

/// The GPU, or why there is none (printed as the skip reason).
fn gpu() -> Option<Device> {
    match (probe(), Device::parse("cuda")) {
        (Ok(()), Ok(d)) => Some(d),
        (Err(why), Err(e)) => {
            println!("skipped: no usable CUDA GPU ({why}); Device::parse(\"cuda\") said: {e}");
            None
        }
        (Ok(()), Err(e)) => panic!("probe says CUDA is usable, yet the device cannot be opened: {e}"),
        (Err(why), Ok(d)) => panic!("probe says CUDA is unusable ({why}), yet {} opened", d.describe()),
    }
}

#[test]
fn every_op_matches_the_cpu_on_the_gpu() {
    let Some(dev) = gpu() else { return };
    println!("GPU: {}", dev.describe());
    let failures = cases::run_all(&dev, cases::CASES);
    assert!(failures.is_empty(), "{} op families differ from the CPU:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn tensors_round_trip_between_cpu_and_gpu() {
    let Some(dev) = gpu() else { return };
    let x = deephide::Tensor::from_vec((0..1000).map(|i| i as f32 * 0.5).collect(), &[10, 100]).unwrap();
    let back = x.to_device(&dev).unwrap().to_device(&Device::Cpu).unwrap();
    assert_eq!(back.to_vec_f32().unwrap(), x.to_vec_f32().unwrap());
}

/// The CLI on `--device cuda`: the gradient checks pass on a GPU; without one the command fails with
/// exit status 2 and a one-line reason, never a panic.
#[test]
fn cli_on_device_cuda() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_deephide"))
        .args(["gradcheck", "--device", "cuda", "--op", "conv2d"])
        .output()
        .expect("run deephide");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if gpu().is_some() {
        assert!(out.status.success(), "{stdout}\n{stderr}");
    } else {
        assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
        assert!(stderr.starts_with("error: device error: CUDA is unavailable"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
