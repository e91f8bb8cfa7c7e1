//! Tensors on the GPU back ends against the CPU, through the public tensor API. The wgpu tests run on
//! Mesa's lavapipe here and in CI; CUDA tests run where a GPU exists and print why they skipped otherwise.

use deephide::{DType, Device, Rng, Tensor};

/// |ref - out| <= ATOL + RTOL * |ref| for f32 device results against the CPU's f32 results.
const ATOL: f64 = 1e-6;
const RTOL: f64 = 1e-6;

fn assert_close(op: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{op}: lengths differ");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (*g as f64, *w as f64);
        assert!((g - w).abs() <= ATOL + RTOL * w.abs(), "{op}: element {i}: {g} vs {w}");
    }
}

fn check_tracer_ops(dev: &Device) {
    let mut rng = Rng::new(21);
    let cases: [(&[usize], &[usize]); 4] = [(&[3, 5, 7], &[3, 5, 7]), (&[2, 3, 4, 5], &[1, 3, 1, 1]), (&[7], &[1]), (&[4, 1, 6], &[5, 1])];
    for (sa, sb) in cases {
        let a = Tensor::randn(sa, 1.0, DType::F32, &mut rng);
        let b = Tensor::randn(sb, 1.0, DType::F32, &mut rng);
        let want = a.add(&b).unwrap();
        let got = a.to_device(dev).unwrap().add(&b.to_device(dev).unwrap()).unwrap();
        assert_eq!(got.device(), *dev);
        assert_eq!(got.shape(), want.shape());
        assert_close("add", &got.to_vec_f32().unwrap(), &want.to_vec_f32().unwrap());
    }
    for shape in [[3, 5, 6, 10], [1, 1, 2, 2], [2, 3, 32, 32]] {
        let x = Tensor::randn(&shape, 1.0, DType::F32, &mut rng);
        let want = x.haar_dwt().unwrap();
        let got = x.to_device(dev).unwrap().haar_dwt().unwrap();
        assert_eq!(got.shape(), want.shape());
        assert_close("haar_dwt", &got.to_vec_f32().unwrap(), &want.to_vec_f32().unwrap());
    }
    // What a device cannot do is an error naming the op and the device (GPU tensors are f32 only).
    let x = Tensor::ones(&[4], DType::F32).to_device(dev).unwrap();
    let e = x.to_dtype(DType::F64).unwrap_err().to_string();
    assert!(e.contains("to_dtype") && e.contains(&dev.name()), "{e}");
    // Odd sizes are refused before any launch.
    let e = Tensor::ones(&[1, 1, 3, 4], DType::F32).to_device(dev).unwrap().haar_dwt().unwrap_err().to_string();
    assert!(e.contains("even"), "{e}");
    // Gradients flow back through the device: d/da sum(a + b) = 1.
    let a = Tensor::ones(&[2, 3], DType::F32).to_device(dev).unwrap().requires_grad_(true);
    let b = Tensor::ones(&[2, 3], DType::F32).to_device(dev).unwrap();
    let s = a.add(&b).unwrap();
    s.backward_with(&s.ones_like().unwrap()).unwrap();
    assert_eq!(a.grad().unwrap().to_vec_f32().unwrap(), vec![1.0; 6]);
}

#[test]
#[cfg(feature = "wgpu")]
fn wgpu_tensors_match_the_cpu() {
    let dev = match Device::parse("wgpu") {
        Ok(d) => d,
        Err(e) => {
            println!("skipped: no wgpu adapter: {e}");
            return;
        }
    };
    println!("running on {}", dev.describe());
    check_tracer_ops(&dev);
}

#[test]
#[cfg(feature = "cuda")]
fn cuda_tensors_match_the_cpu() {
    let dev = match Device::parse("cuda") {
        Ok(d) => d,
        Err(e) => {
            println!("skipped: no usable CUDA GPU: {e}");
            return;
        }
    };
    println!("running on {}", dev.describe());
    check_tracer_ops(&dev);
}

/// The same checks through the CPU emulation of CUDA (needs g++, no GPU).
#[test]
#[cfg(feature = "cuda")]
fn cuda_emulated_tensors_match_the_cpu() {
    let dev = Device::parse("cuda-emu").unwrap_or_else(|e| panic!("the CUDA emulation needs g++: {e}"));
    assert_eq!(dev.name(), "cuda-emu");
    check_tracer_ops(&dev);
}

#[test]
fn device_selection_never_panics() {
    for spec in ["cpu", "auto", "wgpu", "cuda", "cuda:3", "cuda:x", "cuda-emu", "tpu"] {
        match Device::parse(spec) {
            Ok(d) => println!("{spec} -> {}", d.describe()),
            Err(e) => {
                let msg = e.to_string();
                assert!(!msg.is_empty());
                println!("{spec} -> error: {msg}");
            }
        }
    }
    assert!(Device::parse("cuda:x").unwrap_err().to_string().contains("cuda:x"));
    assert!(Device::parse("tpu").is_err());
    // auto always yields a usable device.
    let d = Device::auto();
    let t = Tensor::ones(&[3], DType::F32).to_device(&d).unwrap();
    assert_eq!(t.to_vec_f32().unwrap(), vec![1.0; 3]);
}

#[test]
fn gradcheck_on_the_cpu_via_the_binary() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_deephide"))
        .args(["gradcheck", "--op", "conv2d"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("conv2d") && text.contains(" 0 failed"), "{text}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_deephide")).args(["gradcheck", "--device", "tpu"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown device `tpu`"));
}
