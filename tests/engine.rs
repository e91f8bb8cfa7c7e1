//! Engine core: autodiff mechanics, op forward values checked by other means, error messages.

use approx::assert_relative_eq;
use deephide::nn::functional as F;
use deephide::{gradcheck, no_grad, DType, Device, Rng, Tensor};

fn t64(v: &[f64], s: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), s).unwrap()
}

#[test]
fn every_gradcheck_case_passes_in_f64() {
    let results = gradcheck::run(None, &Device::Cpu, 0).unwrap();
    assert!(results.len() >= 70, "only {} cases", results.len());
    let failed: Vec<_> = results.iter().filter(|r| !r.ok).collect();
    assert!(failed.is_empty(), "failed:\n{}", gradcheck::format_table(&results, gradcheck::F64_TOL));
    // Another seed draws other values.
    assert!(gradcheck::run(None, &Device::Cpu, 12345).unwrap().iter().all(|r| r.ok));
}

#[test]
fn gradcheck_catches_a_wrong_gradient() {
    // x * detach(x) has true gradient 2x but backpropagates only x: the check must fail.
    let mut rng = Rng::new(1);
    let case = gradcheck::GradCase {
        op: "broken",
        desc: "x * detach(x)".into(),
        inputs: vec![Tensor::randn(&[3, 4], 1.0, DType::F64, &mut rng)],
        f: Box::new(|x| x[0].mul(&x[0].detach())),
    };
    let r = gradcheck::check(&case, &Device::Cpu, 0).unwrap();
    assert!(!r.ok, "a wrong gradient passed: max abs err {}", r.max_abs);
}

#[test]
fn unknown_gradcheck_op_lists_known_ones() {
    let e = gradcheck::run(Some("nope"), &Device::Cpu, 0).unwrap_err().to_string();
    assert!(e.contains("nope") && e.contains("haar_dwt"), "{e}");
}

#[test]
fn gradients_accumulate_until_zeroed() {
    let x = t64(&[1.0, 2.0, 3.0], &[3]).requires_grad_(true);
    x.square().unwrap().sum_all().unwrap().backward().unwrap();
    x.square().unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(x.grad().unwrap().to_vec::<f64>().unwrap(), vec![4.0, 8.0, 12.0]);
    x.zero_grad();
    assert!(x.grad().is_none());
    x.mul_scalar(3.0).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(x.grad().unwrap().to_vec::<f64>().unwrap(), vec![3.0, 3.0, 3.0]);
}

#[test]
fn shared_subexpressions_sum_their_gradients() {
    // y = x*x + 2x uses x three times; dy/dx = 2x + 2.
    let x = t64(&[0.5, -1.0], &[2]).requires_grad_(true);
    let y = x.mul(&x).unwrap().add(&x.mul_scalar(2.0).unwrap()).unwrap();
    y.sum_all().unwrap().backward().unwrap();
    assert_eq!(x.grad().unwrap().to_vec::<f64>().unwrap(), vec![3.0, 0.0]);
}

#[test]
fn no_grad_records_nothing() {
    let x = t64(&[1.0, 2.0], &[2]).requires_grad_(true);
    let y = no_grad(|| x.exp().unwrap());
    assert!(!y.tracks_grad());
    assert!(y.op_name().is_none());
    let z = x.exp().unwrap();
    assert_eq!(z.op_name(), Some("exp"));
    assert!(y.sum_all().unwrap().backward().is_err());
}

#[test]
fn backward_needs_a_scalar_and_says_so() {
    let x = t64(&[1.0, 2.0], &[2]).requires_grad_(true);
    let e = x.exp().unwrap().backward().unwrap_err().to_string();
    assert!(e.contains("(2,)"), "{e}");
}

#[test]
fn shape_errors_name_the_shapes() {
    let a = Tensor::zeros(&[2, 3], DType::F32);
    let b = Tensor::zeros(&[4, 3], DType::F32);
    let e = a.add(&b).unwrap_err().to_string();
    assert!(e.contains("(2, 3)") && e.contains("(4, 3)"), "{e}");
    let e = a.matmul(&b).unwrap_err().to_string();
    assert!(e.contains("matmul") && e.contains("(4, 3)"), "{e}");
    let e = a.reshape(&[5]).unwrap_err().to_string();
    assert!(e.contains("(2, 3)") && e.contains("(5,)"), "{e}");
    let e = Tensor::zeros(&[1, 1, 3, 4], DType::F32).haar_dwt().unwrap_err().to_string();
    assert!(e.contains("even") && e.contains("(1, 1, 3, 4)"), "{e}");
    let e = Tensor::concat(&[&a, &b], 1).unwrap_err().to_string();
    assert!(e.contains("(2, 3)") && e.contains("(4, 3)"), "{e}");
    let a64 = Tensor::zeros(&[2, 3], DType::F64);
    let e = a.add(&a64).unwrap_err().to_string();
    assert!(e.contains("f32") && e.contains("f64"), "{e}");
}

#[test]
fn haar_reconstructs_perfectly_and_preserves_the_norm() {
    let mut rng = Rng::new(3);
    let x = Tensor::randn(&[3, 5, 6, 10], 1.0, DType::F64, &mut rng);
    let y = x.haar_dwt().unwrap();
    assert_eq!(y.shape(), &[3, 20, 3, 5]);
    let back = y.haar_iwt().unwrap().to_vec::<f64>().unwrap();
    for (a, b) in back.iter().zip(x.to_vec::<f64>().unwrap()) {
        assert!((a - b).abs() < 1e-12);
    }
    let n2 = |t: &Tensor| t.square().unwrap().sum_all().unwrap().item().unwrap();
    assert_relative_eq!(n2(&x), n2(&y), max_relative = 1e-12);
    // f32 round trip
    let x32 = x.to_dtype(DType::F32).unwrap();
    let back32 = x32.haar_dwt().unwrap().haar_iwt().unwrap().to_vec::<f32>().unwrap();
    for (a, b) in back32.iter().zip(x32.to_vec::<f32>().unwrap()) {
        assert!((a - b).abs() < 1e-5);
    }
}

#[test]
fn haar_matches_the_hinet_definition_by_hand() {
    // One 2x2 block: a=(0,0)=1, c=(0,1)=2, b=(1,0)=3, d=(1,1)=4.
    let x = t64(&[1.0, 2.0, 3.0, 4.0], &[1, 1, 2, 2]);
    let y = x.haar_dwt().unwrap().to_vec::<f64>().unwrap();
    let (a, b, c, d) = (1.0, 3.0, 2.0, 4.0);
    assert_eq!(y, vec![(a + b + c + d) / 2.0, (-a - b + c + d) / 2.0, (-a + b - c + d) / 2.0, (a - b - c + d) / 2.0]);
}

#[test]
fn haar_adjoint_identity() {
    // <DWT x, y> = <x, DWT^T y>, and DWT^T = IWT since the transform is orthonormal.
    let mut rng = Rng::new(4);
    let x = Tensor::randn(&[2, 3, 4, 6], 1.0, DType::F64, &mut rng);
    let y = Tensor::randn(&[2, 12, 2, 3], 1.0, DType::F64, &mut rng);
    let lhs = x.haar_dwt().unwrap().mul(&y).unwrap().sum_all().unwrap().item().unwrap();
    let rhs = x.mul(&y.haar_iwt().unwrap()).unwrap().sum_all().unwrap().item().unwrap();
    assert_relative_eq!(lhs, rhs, max_relative = 1e-12);
}

#[test]
fn cross_entropy_matches_a_hand_computation() {
    let logits = t64(&[1.0, 2.0, 0.5, -1.0, 0.0, 3.0], &[2, 3]);
    let labels = [1usize, 2];
    let mut expect = 0.0;
    for (row, &l) in labels.iter().enumerate() {
        let z = &logits.to_vec::<f64>().unwrap()[row * 3..row * 3 + 3];
        let lse = z.iter().map(|v| v.exp()).sum::<f64>().ln();
        expect += lse - z[l];
    }
    expect /= 2.0;
    let got = F::cross_entropy(&logits, &labels, 0.0).unwrap().item().unwrap();
    assert_relative_eq!(got, expect, max_relative = 1e-12);
    // Label smoothing s: (1-s) * CE + s * mean over classes of -log p.
    let s = 0.2;
    let mut smooth = 0.0;
    for row in 0..2 {
        let z = &logits.to_vec::<f64>().unwrap()[row * 3..row * 3 + 3];
        let lse = z.iter().map(|v| v.exp()).sum::<f64>().ln();
        let nll: Vec<f64> = z.iter().map(|v| lse - v).collect();
        smooth += (1.0 - s) * nll[labels[row]] + s * nll.iter().sum::<f64>() / 3.0;
    }
    let got = F::cross_entropy(&logits, &labels, s).unwrap().item().unwrap();
    assert_relative_eq!(got, smooth / 2.0, max_relative = 1e-12);
    assert!(F::cross_entropy(&logits, &[1, 3], 0.0).unwrap_err().to_string().contains("label 3"));
}

#[test]
fn batch_norm_matches_a_hand_computation_and_updates_running_stats() {
    // Channel 0 values 1..4, channel 1 values 10,20,30,40 over (N=2, H=1, W=2).
    let x = t64(&[1.0, 2.0, 10.0, 20.0, 3.0, 4.0, 30.0, 40.0], &[2, 2, 1, 2]);
    let (rm, rv) = (Tensor::zeros(&[2], DType::F64), Tensor::ones(&[2], DType::F64));
    let w = t64(&[2.0, 1.0], &[2]);
    let b = t64(&[0.5, -1.0], &[2]);
    let y = F::batch_norm(&x, &rm, &rv, Some(&w), Some(&b), true, 0.1, 0.0).unwrap().to_vec::<f64>().unwrap();
    let (m0, v0) = (2.5f64, 1.25f64); // population variance of 1,2,3,4
    let (m1, v1) = (25.0f64, 125.0f64);
    let expect = [
        2.0 * (1.0 - m0) / v0.sqrt() + 0.5, 2.0 * (2.0 - m0) / v0.sqrt() + 0.5,
        (10.0 - m1) / v1.sqrt() - 1.0, (20.0 - m1) / v1.sqrt() - 1.0,
        2.0 * (3.0 - m0) / v0.sqrt() + 0.5, 2.0 * (4.0 - m0) / v0.sqrt() + 0.5,
        (30.0 - m1) / v1.sqrt() - 1.0, (40.0 - m1) / v1.sqrt() - 1.0,
    ];
    for (a, e) in y.iter().zip(expect) {
        assert_relative_eq!(*a, e, max_relative = 1e-12);
    }
    // Running stats use the unbiased variance (n/(n-1) = 4/3).
    assert_eq!(rm.to_vec::<f64>().unwrap(), vec![0.25, 2.5]);
    let rvv = rv.to_vec::<f64>().unwrap();
    assert_relative_eq!(rvv[0], 0.9 + 0.1 * v0 * 4.0 / 3.0, max_relative = 1e-12);
    assert_relative_eq!(rvv[1], 0.9 + 0.1 * v1 * 4.0 / 3.0, max_relative = 1e-12);
    // Eval uses the running stats.
    let ye = F::batch_norm(&x, &rm, &rv, None, None, false, 0.1, 0.0).unwrap().to_vec::<f64>().unwrap();
    assert_relative_eq!(ye[0], (1.0 - 0.25) / rvv[0].sqrt(), max_relative = 1e-12);
}

#[test]
fn matmul_matches_a_hand_computation() {
    let a = t64(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    let b = t64(&[7.0, 8.0, 9.0, 10.0, 11.0, 12.0], &[3, 2]);
    assert_eq!(a.matmul(&b).unwrap().to_vec::<f64>().unwrap(), vec![58.0, 64.0, 139.0, 154.0]);
}

#[test]
fn cosine_similarity_matches_a_hand_computation() {
    let a = t64(&[1.0, 0.0, 1.0, 1.0], &[2, 2]);
    let b = t64(&[0.0, 1.0, 2.0, 2.0], &[2, 2]);
    let c = F::cosine_similarity(&a, &b, 1, 1e-8).unwrap().to_vec::<f64>().unwrap();
    assert_relative_eq!(c[0], 0.0);
    assert_relative_eq!(c[1], 1.0, max_relative = 1e-12);
}

#[test]
fn dropout_keeps_the_expectation_and_is_identity_in_eval() {
    let x = Tensor::ones(&[100_000], DType::F32);
    let y = F::dropout(&x, 0.25, true, &mut Rng::new(9)).unwrap().to_vec::<f32>().unwrap();
    let zeros = y.iter().filter(|&&v| v == 0.0).count() as f64 / y.len() as f64;
    assert!((zeros - 0.25).abs() < 0.01, "{zeros}");
    let mean = y.iter().map(|&v| v as f64).sum::<f64>() / y.len() as f64;
    assert!((mean - 1.0).abs() < 0.02, "{mean}");
    let e = F::dropout(&x, 0.25, false, &mut Rng::new(9)).unwrap();
    assert_eq!(e.to_vec::<f32>().unwrap(), x.to_vec::<f32>().unwrap());
}

#[test]
fn large_broadcasts_and_reductions_agree_with_loops() {
    // Exercise the threaded paths (above the parallel threshold).
    let mut rng = Rng::new(5);
    let x = Tensor::randn(&[8, 16, 32, 32], 1.0, DType::F64, &mut rng);
    let b = Tensor::randn(&[1, 16, 1, 1], 1.0, DType::F64, &mut rng);
    let y = x.add(&b).unwrap().to_vec::<f64>().unwrap();
    let (xv, bv) = (x.to_vec::<f64>().unwrap(), b.to_vec::<f64>().unwrap());
    for i in (0..y.len()).step_by(997) {
        let c = (i / 1024) % 16;
        assert_eq!(y[i], xv[i] + bv[c]);
    }
    let s = x.sum_axes(&[0, 2, 3], false).unwrap().to_vec::<f64>().unwrap();
    for c in 0..16 {
        let mut e = 0.0;
        for n in 0..8 {
            for k in 0..1024 {
                e += xv[(n * 16 + c) * 1024 + k];
            }
        }
        assert_relative_eq!(s[c], e, max_relative = 1e-10);
    }
}

#[test]
fn dtype_and_device_round_trips() {
    let x = t64(&[1.5, -2.0], &[2]).requires_grad_(true);
    let y = x.to_dtype(DType::F32).unwrap();
    assert_eq!(y.dtype(), DType::F32);
    y.mul_scalar(2.0).unwrap().sum_all().unwrap().backward().unwrap();
    let g = x.grad().unwrap();
    assert_eq!(g.dtype(), DType::F64);
    assert_eq!(g.to_vec::<f64>().unwrap(), vec![2.0, 2.0]);
    assert!(y.to_vec::<f64>().is_err());
}

#[test]
fn device_parsing() {
    assert!(Device::parse("cpu").unwrap().is_cpu());
    let e = Device::parse("tpu").unwrap_err().to_string();
    assert!(e.contains("tpu") && e.contains("cpu"), "{e}");
}

/// Gradients of a tensor used several times are summed in place when the buffer is the accumulator's
/// alone; a gradient shared between two inputs (add passes the same tensor to both) must not be
/// modified through one of them.
#[test]
fn gradient_accumulation_in_place_keeps_shared_gradients_intact() {
    let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3]).unwrap().requires_grad_(true);
    let y = Tensor::from_vec(vec![0.5f32, -1.0, 4.0], &[3]).unwrap().requires_grad_(true);
    let s = x.add(&y).unwrap(); // backward hands the same gradient tensor to x and y
    let f = s.mul_scalar(3.0).unwrap().add(&s).unwrap().add(&x).unwrap().add(&x.mul(&x).unwrap()).unwrap();
    f.sum_all().unwrap().backward().unwrap();
    // df/dx = 3 + 1 + 1 + 2x, df/dy = 3 + 1
    let gx = x.grad().unwrap().to_vec_f64().unwrap();
    let gy = y.grad().unwrap().to_vec_f64().unwrap();
    for (i, xv) in [1.0, 2.0, 3.0].iter().enumerate() {
        assert!((gx[i] - (5.0 + 2.0 * xv)).abs() < 1e-6, "dx[{i}] = {}", gx[i]);
        assert!((gy[i] - 4.0).abs() < 1e-6, "dy[{i}] = {}", gy[i]);
    }
}
