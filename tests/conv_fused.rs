//! The fused convolutions of the dense subnets (`conv2d_concat`, `conv2d_leaky_relu`) against the ops they
//! replace (concat, conv2d, leaky_relu): forward values and every gradient, in f32 at the hiding network's
//! shapes (every SIMD path the CPU has) and in f64 at odd sizes.

use deephide::cpu::SimdLevel;
use deephide::{DType, Rng, Tensor};

fn randn(shape: &[usize], dtype: DType, rng: &mut Rng) -> Tensor {
    Tensor::randn(shape, 1.0, dtype, rng).requires_grad_(true)
}

/// `|ref - out| <= atol + rtol * |ref|` elementwise, with the worst violation named.
fn assert_close(what: &str, reference: &Tensor, out: &Tensor, atol: f64, rtol: f64) {
    assert_eq!(reference.shape(), out.shape(), "{what}: shapes differ");
    let (r, o) = (reference.to_vec_f64().unwrap(), out.to_vec_f64().unwrap());
    for (i, (&a, &b)) in r.iter().zip(&o).enumerate() {
        assert!((a - b).abs() <= atol + rtol * a.abs(), "{what}[{i}]: reference {a}, fused {b} (atol {atol}, rtol {rtol})");
    }
}

/// Runs the fused op and the composition on the same inputs, with a random upstream gradient, and
/// compares the output and the gradients of every input, weight and bias.
fn compare(parts_shapes: &[[usize; 4]], cout: usize, slope: Option<f64>, bias: bool, dtype: DType, tol: (f64, f64), seed: u64) {
    let mut rng = Rng::new(seed);
    let cin: usize = parts_shapes.iter().map(|s| s[1]).sum();
    let parts: Vec<Tensor> = parts_shapes.iter().map(|s| randn(s, dtype, &mut rng)).collect();
    let w = Tensor::randn(&[cout, cin, 3, 3], 0.2, dtype, &mut rng).requires_grad_(true);
    let b = bias.then(|| randn(&[cout], dtype, &mut rng));
    let refs: Vec<&Tensor> = parts.iter().collect();

    let fused = Tensor::conv2d_concat(&refs, &w, b.as_ref(), (1, 1), (1, 1), slope).unwrap();
    let cat = Tensor::concat(&refs, 1).unwrap();
    let mut composed = cat.conv2d(&w, b.as_ref(), (1, 1), (1, 1)).unwrap();
    if let Some(a) = slope {
        composed = composed.leaky_relu(a).unwrap();
    }
    let (atol, rtol) = tol;
    assert_close("output", &composed, &fused, atol, rtol);

    let up = Tensor::randn(fused.shape(), 1.0, dtype, &mut rng);
    let grads = |y: &Tensor| -> Vec<Tensor> {
        for t in parts.iter().chain([&w]).chain(b.iter()) {
            t.zero_grad();
        }
        y.mul(&up).unwrap().sum_all().unwrap().backward().unwrap();
        parts.iter().chain([&w]).chain(b.iter()).map(|t| t.grad().expect("gradient").detach()).collect()
    };
    let g_ref = grads(&composed);
    let g_fused = grads(&fused);
    for (i, (r, f)) in g_ref.iter().zip(&g_fused).enumerate() {
        // Weight gradients sum over N*H*W products: scale the tolerance with that depth.
        assert_close(&format!("gradient of operand {i}"), r, f, atol * 8.0, rtol * 4.0);
    }
}

#[test]
fn dense_block_shapes_match_the_composition_on_every_simd_path() {
    for level in SimdLevel::available() {
        SimdLevel::set_override(Some(level)).unwrap();
        // The third conv of an RGB dense subnet: input 12 channels + two 32-channel features.
        compare(&[[4, 12, 16, 16], [4, 32, 16, 16], [4, 32, 16, 16]], 32, Some(0.01), true, DType::F32, (1e-4, 1e-4), 1);
        // The last (linear) conv back to 12 channels.
        compare(&[[2, 12, 16, 16], [2, 32, 16, 16], [2, 32, 16, 16], [2, 32, 16, 16], [2, 32, 16, 16]], 12, None, true, DType::F32, (1e-4, 1e-4), 2);
    }
    SimdLevel::set_override(None).unwrap();
}

#[test]
fn odd_sizes_match_the_composition_in_f64() {
    compare(&[[3, 1, 5, 7], [3, 2, 5, 7]], 5, Some(0.3), true, DType::F64, (1e-12, 1e-12), 3);
    compare(&[[1, 3, 2, 9]], 1, Some(0.0), false, DType::F64, (1e-12, 1e-12), 4);
    compare(&[[2, 4, 9, 3], [2, 1, 9, 3], [2, 2, 9, 3]], 7, None, false, DType::F64, (1e-12, 1e-12), 5);
}

#[test]
fn leaky_relu_fusion_matches_at_batch_one() {
    // Batch 1 splits the columns across threads instead of the samples.
    compare(&[[1, 12, 16, 16]], 32, Some(0.01), true, DType::F32, (1e-4, 1e-4), 6);
}

#[test]
fn bad_operands_are_clear_errors() {
    let mut rng = Rng::new(7);
    let a = randn(&[2, 3, 8, 8], DType::F32, &mut rng);
    let b = randn(&[2, 2, 8, 7], DType::F32, &mut rng);
    let w = randn(&[4, 5, 3, 3], DType::F32, &mut rng);
    let e = Tensor::conv2d_concat(&[&a, &b], &w, None, (1, 1), (1, 1), None).unwrap_err().to_string();
    assert!(e.contains("agree in N, H and W"), "{e}");
    let w4 = randn(&[4, 4, 3, 3], DType::F32, &mut rng);
    let c = randn(&[2, 2, 8, 8], DType::F32, &mut rng);
    let e = Tensor::conv2d_concat(&[&a, &c], &w4, None, (1, 1), (1, 1), None).unwrap_err().to_string();
    assert!(e.contains("5 channels") && e.contains("expects 4"), "{e}");
    let e = a.conv2d_leaky_relu(&randn(&[4, 3, 3, 3], DType::F32, &mut rng), None, (1, 1), (1, 1), -0.1).unwrap_err().to_string();
    assert!(e.contains("slope must be >= 0"), "{e}");
    let e = Tensor::conv2d_concat(&[], &w, None, (1, 1), (1, 1), None).unwrap_err().to_string();
    assert!(e.contains("at least one input"), "{e}");
}

/// A dense block (each conv sees the input and every earlier output, so gradients of the early maps are
/// accumulated over several convolutions, in place), plus one part given twice, against the composition.
#[test]
fn dense_chain_accumulates_gradients_like_the_composition() {
    for dtype in [DType::F64, DType::F32] {
        let mut rng = Rng::new(11);
        let x = randn(&[2, 3, 6, 5], dtype, &mut rng);
        let ws: Vec<Tensor> = (0..4).map(|i| Tensor::randn(&[4, 3 + 4 * i + if i == 3 { 3 } else { 0 }, 3, 3], 0.3, dtype, &mut rng).requires_grad_(true)).collect();
        let bs: Vec<Tensor> = (0..4).map(|_| randn(&[4], dtype, &mut rng)).collect();
        let run = |fused: bool| -> Vec<Vec<f64>> {
            for t in ws.iter().chain(&bs).chain([&x]) {
                t.zero_grad();
            }
            let mut feats = vec![x.clone()];
            for i in 0..4 {
                let mut parts: Vec<&Tensor> = feats.iter().collect();
                if i == 3 {
                    parts.push(&x); // x twice in the last conv
                }
                let slope = if i < 3 { Some(0.05) } else { None };
                let y = if fused {
                    Tensor::conv2d_concat(&parts, &ws[i], Some(&bs[i]), (1, 1), (1, 1), slope).unwrap()
                } else {
                    let y = Tensor::concat(&parts, 1).unwrap().conv2d(&ws[i], Some(&bs[i]), (1, 1), (1, 1)).unwrap();
                    if let Some(a) = slope { y.leaky_relu(a).unwrap() } else { y }
                };
                feats.push(y);
            }
            let last = feats.last().unwrap();
            last.mul(last).unwrap().sum_all().unwrap().backward().unwrap();
            ws.iter().chain(&bs).chain([&x]).map(|t| t.grad().unwrap().to_vec_f64().unwrap()).collect()
        };
        let (a, b) = (run(false), run(true));
        let tol = if dtype == DType::F64 { 1e-10 } else { 1e-3 };
        for (k, (ra, rb)) in a.iter().zip(&b).enumerate() {
            for (i, (&u, &v)) in ra.iter().zip(rb).enumerate() {
                assert!((u - v).abs() <= tol * (1.0 + u.abs()), "{dtype:?} tensor {k}[{i}]: composed {u}, fused {v}");
            }
        }
    }
}

/// Frozen weights: the bias gradient then comes from its own pass, and the input gradient still matches.
#[test]
fn frozen_weight_still_gives_input_and_bias_gradients() {
    let mut rng = Rng::new(21);
    let (a, b) = (randn(&[2, 3, 5, 5], DType::F64, &mut rng), randn(&[2, 2, 5, 5], DType::F64, &mut rng));
    let w = Tensor::randn(&[4, 5, 3, 3], 0.3, DType::F64, &mut rng); // no gradient
    let bias = randn(&[4], DType::F64, &mut rng);
    let grads = |fused: bool| -> Vec<Vec<f64>> {
        for t in [&a, &b, &bias] {
            t.zero_grad();
        }
        let y = if fused {
            Tensor::conv2d_concat(&[&a, &b], &w, Some(&bias), (1, 1), (1, 1), Some(0.1)).unwrap()
        } else {
            Tensor::concat(&[&a, &b], 1).unwrap().conv2d(&w, Some(&bias), (1, 1), (1, 1)).unwrap().leaky_relu(0.1).unwrap()
        };
        y.mul(&y).unwrap().sum_all().unwrap().backward().unwrap();
        [&a, &b, &bias].iter().map(|t| t.grad().unwrap().to_vec_f64().unwrap()).collect()
    };
    let (r, f) = (grads(false), grads(true));
    for (k, (rv, fv)) in r.iter().zip(&f).enumerate() {
        for (&u, &v) in rv.iter().zip(fv) {
            assert!((u - v).abs() <= 1e-10 * (1.0 + u.abs()), "operand {k}: composed {u}, fused {v}");
        }
    }
    assert!(w.grad().is_none(), "a weight without requires_grad got a gradient");
}
