//! Every engine op on the wgpu back end against the CPU back end, forward and backward, on random shapes
//! (odd sizes, batch 1, broadcasting). Runs for real on Mesa's lavapipe where there is no GPU; without an
//! adapter each test prints `skipped: <reason>` and passes.
//!
//! Each case computes `y = f(inputs)` on both devices, compares `y`, then backpropagates
//! `sum(y * r)` for one fixed random `r` and compares every input gradient. The tolerance is
//! `|ref - out| <= atol + rtol * |ref|`, stated per op: f32 element-wise ops differ from the CPU by a few
//! ulps (different exp/log/pow implementations); reductions and products add rounding that grows with
//! the reduced length, so their atol is scaled by it.

#![cfg(feature = "wgpu")]

use deephide::nn::functional as F;
use deephide::optim::{Adam, AdamW, Optimizer, Sgd};
use deephide::{DType, Device, Rng, Tensor};

/// The wgpu device, or `None` after printing why the test is skipped.
fn dev() -> Option<Device> {
    match Device::wgpu() {
        Ok(d) => Some(d),
        Err(e) => {
            println!("skipped: {e}");
            None
        }
    }
}

macro_rules! dev_or_skip {
    () => {
        match dev() {
            Some(d) => d,
            None => return,
        }
    };
}

#[derive(Clone, Copy, Debug)]
struct Tol {
    atol: f64,
    rtol: f64,
}

const fn tol(atol: f64, rtol: f64) -> Tol {
    Tol { atol, rtol }
}

/// Element-wise ops: a few ulps.
const ELEM: Tol = tol(1e-6, 1e-5);
/// Transcendental functions (exp, log, pow, tanh, sigmoid): the device's own implementations.
const TRANS: Tol = tol(1e-5, 1e-4);
/// Pure data movement: exact.
const EXACT: Tol = tol(0.0, 0.0);

fn assert_close(what: &str, got: &[f64], want: &[f64], t: Tol) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let mut bad = 0usize;
    let mut first = None;
    let mut worst = 0f64;
    for (i, (&g, &r)) in got.iter().zip(want).enumerate() {
        let err = (g - r).abs();
        // Written so that a NaN on either side counts as a mismatch (unless both are NaN).
        let ok = err <= t.atol + t.rtol * r.abs() || (g.is_nan() && r.is_nan());
        if !ok {
            bad += 1;
            first.get_or_insert((i, g, r));
        }
        if err.is_finite() {
            worst = worst.max(err);
        }
    }
    if let Some((i, g, r)) = first {
        panic!(
            "{what}: {bad} of {} values outside |ref - out| <= {:e} + {:e} |ref|; first at {i}: wgpu {g}, cpu {r} (max abs err {worst:e})",
            want.len(),
            t.atol,
            t.rtol
        );
    }
}

fn randn(shape: &[usize], rng: &mut Rng) -> Tensor {
    Tensor::randn(shape, 1.0, DType::F32, rng)
}

fn uniform(shape: &[usize], lo: f64, hi: f64, rng: &mut Rng) -> Tensor {
    Tensor::rand_uniform(shape, lo, hi, DType::F32, rng)
}

/// Distinct values (shuffled ramp plus jitter): max and max-pool have no ties.
fn distinct(shape: &[usize], rng: &mut Rng) -> Tensor {
    let n: usize = shape.iter().product();
    let mut v: Vec<f32> = (0..n).map(|i| i as f32 * 0.1 + rng.uniform() as f32 * 0.01).collect();
    rng.shuffle(&mut v);
    Tensor::from_vec(v, shape).unwrap()
}

/// Run `f` on the CPU and on `dev`, compare outputs, then (if `grad`) the gradients of `sum(f * r)`.
fn check(dev: &Device, name: &str, t: Tol, inputs: &[Tensor], grad: bool, f: impl Fn(&[Tensor]) -> deephide::Result<Tensor>) {
    let cpu_in: Vec<Tensor> = inputs.iter().map(|x| x.copy().unwrap().requires_grad_(grad)).collect();
    let dev_in: Vec<Tensor> =
        inputs.iter().map(|x| x.to_device(dev).unwrap().detach().requires_grad_(grad)).collect();
    let want = f(&cpu_in).unwrap_or_else(|e| panic!("{name} on cpu: {e}"));
    let got = f(&dev_in).unwrap_or_else(|e| panic!("{name} on wgpu: {e}"));
    assert_eq!(got.shape(), want.shape(), "{name}: shapes");
    assert_eq!(got.device(), *dev, "{name}: the result must stay on the device");
    assert_close(&format!("{name} forward"), &got.to_vec_f64().unwrap(), &want.to_vec_f64().unwrap(), t);
    if !grad {
        return;
    }
    let r = Tensor::randn(want.shape(), 1.0, DType::F32, &mut Rng::new(99));
    want.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
    got.mul(&r.to_device(dev).unwrap()).unwrap().sum_all().unwrap().backward().unwrap();
    for (i, (c, d)) in cpu_in.iter().zip(&dev_in).enumerate() {
        match (c.grad(), d.grad()) {
            (None, None) => {}
            (Some(gc), Some(gd)) => {
                assert_eq!(gd.device(), *dev, "{name}: gradient {i} must be on the device");
                assert_close(&format!("{name} grad of input {i}"), &gd.to_vec_f64().unwrap(), &gc.to_vec_f64().unwrap(), t)
            }
            (a, b) => panic!("{name}: gradient {i} present on cpu: {}, on wgpu: {}", a.is_some(), b.is_some()),
        }
    }
}

#[test]
fn unary_ops() {
    let dev = dev_or_skip!();
    let mut rng = Rng::new(1);
    for shape in [vec![3, 37, 5], vec![1], vec![], vec![4097]] {
        let x = randn(&shape, &mut rng);
        let pos = uniform(&shape, 0.3, 3.0, &mut rng);
        let wide = randn(&shape, &mut rng).mul_scalar(6.0).unwrap();
        let s = format!("{shape:?}");
        check(&dev, &format!("neg {s}"), EXACT, &[x.clone()], true, |v| v[0].neg());
        check(&dev, &format!("exp {s}"), TRANS, &[x.clone()], true, |v| v[0].exp());
        check(&dev, &format!("log {s}"), TRANS, &[pos.clone()], true, |v| v[0].log());
        check(&dev, &format!("sqrt {s}"), TRANS, &[pos.clone()], true, |v| v[0].sqrt());
        check(&dev, &format!("sigmoid {s}"), TRANS, &[wide.clone()], true, |v| v[0].sigmoid());
        check(&dev, &format!("tanh {s}"), TRANS, &[wide.clone()], true, |v| v[0].tanh());
        check(&dev, &format!("relu {s}"), EXACT, &[x.clone()], true, |v| v[0].relu());
        check(&dev, &format!("abs {s}"), EXACT, &[x.clone()], true, |v| v[0].abs());
        check(&dev, &format!("leaky_relu {s}"), ELEM, &[x.clone()], true, |v| v[0].leaky_relu(0.01));
        check(&dev, &format!("pow 2.5 {s}"), TRANS, &[pos.clone()], true, |v| v[0].powf(2.5));
        check(&dev, &format!("pow -1.5 {s}"), TRANS, &[pos.clone()], true, |v| v[0].powf(-1.5));
        // Integer exponents of negative bases are defined (Rust's powf), unlike WGSL's pow.
        check(&dev, &format!("pow 3 of negatives {s}"), TRANS, &[x.clone()], true, |v| v[0].powf(3.0));
        check(&dev, &format!("add_scalar {s}"), ELEM, &[x.clone()], true, |v| v[0].add_scalar(1.5));
        check(&dev, &format!("mul_scalar {s}"), ELEM, &[x.clone()], true, |v| v[0].mul_scalar(-2.5));
        check(&dev, &format!("clamp {s}"), EXACT, &[x.clone()], true, |v| v[0].clamp(-0.5, 0.7));
        check(&dev, &format!("square {s}"), ELEM, &[x.clone()], true, |v| v[0].square());
        check(&dev, &format!("recip {s}"), ELEM, &[pos.clone()], true, |v| v[0].recip());
        use deephide::ops::UnaryOp;
        for op in [UnaryOp::Step, UnaryOp::LeakyStep(0.2), UnaryOp::InRange(-0.3, 0.4), UnaryOp::Sign] {
            check(&dev, &format!("{} {s}", op.name()), EXACT, &[x.clone()], false, move |v| v[0].unary(op));
        }
    }
}

#[test]
fn binary_ops_broadcast() {
    let dev = dev_or_skip!();
    let mut rng = Rng::new(2);
    let pairs: [(&[usize], &[usize]); 7] = [
        (&[2, 3, 5], &[2, 3, 5]),
        (&[2, 3, 4, 5], &[1, 3, 1, 1]),
        (&[3, 1], &[1, 4]),
        (&[5], &[]),
        (&[], &[7, 3]),
        (&[1, 33, 1, 7], &[9, 1, 13, 1]),
        (&[4, 1, 6], &[6]),
    ];
    // Forward: one rounding. Gradients of broadcast inputs sum up to 117 products (sum_to), in a
    // different order on each device.
    const ELEM: Tol = tol(2e-5, 1e-4);
    for (sa, sb) in pairs {
        let (a, b) = (randn(sa, &mut rng), randn(sb, &mut rng));
        let pb = uniform(sb, 0.5, 2.0, &mut rng);
        let s = format!("{sa:?} {sb:?}");
        check(&dev, &format!("add {s}"), ELEM, &[a.clone(), b.clone()], true, |v| v[0].add(&v[1]));
        check(&dev, &format!("sub {s}"), ELEM, &[a.clone(), b.clone()], true, |v| v[0].sub(&v[1]));
        check(&dev, &format!("mul {s}"), ELEM, &[a.clone(), b.clone()], true, |v| v[0].mul(&v[1]));
        check(&dev, &format!("div {s}"), ELEM, &[a.clone(), pb.clone()], true, |v| v[0].div(&v[1]));
        let (da, db) = (distinct(sa, &mut rng), distinct(sb, &mut rng).mul_scalar(1.37).unwrap());
        check(&dev, &format!("maximum {s}"), ELEM, &[da.clone(), db.clone()], true, |v| v[0].maximum(&v[1]));
        check(&dev, &format!("ge {s}"), EXACT, &[da, db], false, |v| v[0].binary(deephide::ops::BinaryOp::Ge, &v[1]));
    }
}

#[test]
fn reductions() {
    let dev = dev_or_skip!();
    let mut rng = Rng::new(3);
    let x = randn(&[3, 5, 7, 9], &mut rng);
    // Sums of up to 945 values: rounding grows with the length.
    let t = tol(1e-4, 1e-4);
    for axes in [vec![0, 1, 2, 3], vec![0, 2, 3], vec![3], vec![1, 2], vec![0, 2], vec![0], vec![1, 3]] {
        let a: Vec<isize> = axes.clone();
        check(&dev, &format!("sum {axes:?}"), t, &[x.clone()], true, move |v| v[0].sum_axes(&a, false));
        let a: Vec<isize> = axes.clone();
        check(&dev, &format!("mean {axes:?} keepdim"), t, &[x.clone()], true, move |v| v[0].mean_axes(&a, true));
    }
    // A long sum (workgroup reduction path) and a wide one (thread-per-output path).
    let long = randn(&[3, 20_000], &mut rng);
    check(&dev, "sum of 20000 per row", tol(2e-3, 1e-4), &[long.clone()], true, |v| v[0].sum_axes(&[1], false));
    check(&dev, "sum_all of 60000", tol(5e-3, 1e-4), &[long], true, |v| v[0].sum_all());
    let wide = randn(&[7, 5000], &mut rng);
    check(&dev, "sum over 7 rows of 5000", t, &[wide], true, |v| v[0].sum_axes(&[0], false));
    check(&dev, "sum_to (1, 5, 1, 9)", t, &[x.clone()], true, |v| v[0].sum_to(&[1, 5, 1, 9]));
    check(&dev, "sum_to (7, 1)", t, &[x.clone()], true, |v| v[0].sum_to(&[7, 1]));
    check(&dev, "sum scalar", EXACT, &[randn(&[], &mut rng)], true, |v| v[0].sum_all());
    let d = distinct(&[3, 5, 7, 9], &mut rng);
    for ax in [0isize, 1, 2, -1] {
        check(&dev, &format!("max axis {ax}"), EXACT, &[d.clone()], true, move |v| v[0].max_axis(ax, false));
        check(&dev, &format!("max axis {ax} keepdim"), EXACT, &[d.clone()], true, move |v| v[0].max_axis(ax, true));
    }
    // argmax reads the indices back (the caller asked for values).
    let dd = d.to_device(&dev).unwrap();
    assert_eq!(dd.argmax(1).unwrap(), d.argmax(1).unwrap());
}

#[test]
fn layout_concat_narrow_index() {
    let dev = dev_or_skip!();
    let mut rng = Rng::new(4);
    let x = randn(&[2, 3, 4, 5], &mut rng);
    check(&dev, "reshape", EXACT, &[x.clone()], true, |v| v[0].reshape(&[6, 20]));
    check(&dev, "permute (0,2,3,1)", EXACT, &[x.clone()], true, |v| v[0].permute(&[0, 2, 3, 1]));
    check(&dev, "permute (3,1,0,2)", EXACT, &[x.clone()], true, |v| v[0].permute(&[3, 1, 0, 2]));
    check(&dev, "transpose (-1,-2)", EXACT, &[x.clone()], true, |v| v[0].transpose(-1, -2));
    // Exact forward; the backward sums (ELEM).
    check(&dev, "broadcast_to", ELEM, &[randn(&[3, 1], &mut rng)], true, |v| v[0].broadcast_to(&[2, 3, 4]));
    check(&dev, "broadcast_to from scalar", ELEM, &[randn(&[], &mut rng)], true, |v| v[0].broadcast_to(&[5, 2]));
    let parts = [randn(&[2, 3, 4], &mut rng), randn(&[2, 1, 4], &mut rng), randn(&[2, 5, 4], &mut rng)];
    check(&dev, "concat axis 1", EXACT, &parts, true, |v| Tensor::concat(&[&v[0], &v[1], &v[2]], 1));
    check(&dev, "concat axis 0", EXACT, &[randn(&[1, 3], &mut rng), randn(&[2, 3], &mut rng)], true, |v| {
        Tensor::concat(&[&v[0], &v[1]], 0)
    });
    check(&dev, "concat axis -1", EXACT, &[randn(&[3, 2, 5], &mut rng), randn(&[3, 2, 7], &mut rng)], true, |v| {
        Tensor::concat(&[&v[0], &v[1]], -1)
    });
    let y = randn(&[2, 7, 3], &mut rng);
    check(&dev, "narrow axis 1 [2..5)", EXACT, &[y.clone()], true, |v| v[0].narrow(1, 2, 3));
    check(&dev, "narrow axis 2 [1..2)", EXACT, &[y.clone()], true, |v| v[0].narrow(2, 1, 1));
    // Split: both pieces used, so narrow's backward accumulates two padded gradients.
    check(&dev, "split axis 1 [3, 4]", ELEM, &[y.clone()], true, |v| {
        let p = v[0].split(1, &[3, 4])?;
        p[0].sum_axes(&[1], false)?.sub(&p[1].sum_axes(&[1], false)?.mul_scalar(0.5)?)
    });
    let z = randn(&[5, 2, 3], &mut rng);
    check(&dev, "index_select with repeats", EXACT, &[z.clone()], true, |v| v[0].index_select(&[4, 0, 4, 2, 4]));
    check(&dev, "index_select one row", EXACT, &[z], true, |v| v[0].index_select(&[3]));
}

#[test]
fn matmul_shapes() {
    let dev = dev_or_skip!();
    let mut rng = Rng::new(5);
    for (sa, sb) in [
        (vec![1, 1], vec![1, 1]),
        (vec![3, 4], vec![4, 5]),
        (vec![67, 33], vec![33, 70]),
        (vec![3, 17, 9], vec![3, 9, 13]),
        (vec![2, 5, 7], vec![7, 3]),
        (vec![130, 129], vec![129, 65]),
    ] {
        let k = sa[sa.len() - 1] as f64;
        let t = tol(2e-6 * k, 1e-4);
        check(&dev, &format!("matmul {sa:?} x {sb:?}"), t, &[randn(&sa, &mut rng), randn(&sb, &mut rng)], true, |v| v[0].matmul(&v[1]));
    }
}

#[test]
fn conv2d_forward_and_gradients() {
    let dev = dev_or_skip!();
    let mut rng = Rng::new(6);
    let convs: [(&[usize], &[usize], (usize, usize), (usize, usize), bool); 9] = [
        (&[2, 3, 5, 5], &[4, 3, 3, 3], (1, 1), (1, 1), true),
        (&[1, 2, 7, 6], &[3, 2, 3, 3], (2, 2), (1, 1), true),
        (&[2, 2, 5, 7], &[2, 2, 3, 2], (1, 2), (0, 1), false),
        (&[1, 3, 4, 4], &[5, 3, 1, 1], (1, 1), (0, 0), true),
        (&[3, 1, 6, 5], &[2, 1, 2, 3], (2, 1), (1, 0), true),
        (&[2, 2, 8, 8], &[3, 2, 3, 3], (2, 2), (0, 0), true),
        // The hiding network's dense-block shape (gray images) and a ResNet downsampling conv.
        (&[4, 36, 16, 16], &[32, 36, 3, 3], (1, 1), (1, 1), true),
        (&[2, 16, 9, 9], &[32, 16, 1, 1], (2, 2), (0, 0), false),
        (&[3, 70, 5, 5], &[67, 70, 3, 3], (1, 1), (1, 1), true),
    ];
    for (xs, ws, stride, pad, bias) in convs {
        let mut inputs = vec![randn(xs, &mut rng), randn(ws, &mut rng).mul_scalar(0.2).unwrap()];
        if bias {
            inputs.push(randn(&[ws[0]], &mut rng));
        }
        // Dot products of Cin*kh*kw (forward), Cout*kh*kw (input grad) or N*Ho*Wo (weight grad) terms.
        let depth = (ws[1] * ws[2] * ws[3]).max(ws[0] * ws[2] * ws[3]).max(xs[0] * xs[2] * xs[3]) as f64;
        let t = tol(2e-6 * depth, 1e-4);
        check(&dev, &format!("conv2d x{xs:?} w{ws:?} s{stride:?} p{pad:?} bias {bias}"), t, &inputs, true, move |v| {
            v[0].conv2d(&v[1], v.get(2), stride, pad)
        });
    }
    // The fused dense-block op (conv of concatenated parts + bias + LeakyReLU in one kernel on wgpu).
    let parts = vec![
        randn(&[2, 4, 6, 7], &mut rng),
        randn(&[2, 3, 6, 7], &mut rng),
        randn(&[5, 7, 3, 3], &mut rng).mul_scalar(0.2).unwrap(),
        randn(&[5], &mut rng),
    ];
    let t = tol(1e-4, 1e-4);
    check(&dev, "conv2d_concat + bias + leaky", t, &parts, true, |v| {
        Tensor::conv2d_concat(&[&v[0], &v[1]], &v[2], Some(&v[3]), (1, 1), (1, 1), Some(0.2))
    });
    check(&dev, "conv2d_leaky_relu stride 2", t, &[parts[0].clone(), randn(&[3, 4, 3, 3], &mut rng), randn(&[3], &mut rng)], true, |v| {
        v[0].conv2d_leaky_relu(&v[1], Some(&v[2]), (2, 2), (1, 1), 0.01)
    });
    // The two gradient primitives on their own, differentiated once more (their backward rules use conv2d
    // and each other).
    let (x, w) = (randn(&[2, 3, 7, 6], &mut rng), randn(&[4, 3, 3, 3], &mut rng));
    let dy = randn(&[2, 4, 4, 3], &mut rng);
    let t = tol(1e-4, 1e-4);
    check(&dev, "conv2d_input_grad", t, &[dy.clone(), w.clone()], true, |v| {
        Tensor::conv2d_input_grad(&v[0], &v[1], (7, 6), (2, 2), (1, 1))
    });
    check(&dev, "conv2d_weight_grad", t, &[x, dy], true, |v| Tensor::conv2d_weight_grad(&v[0], &v[1], (3, 3), (2, 2), (1, 1)));
}

#[test]
fn pooling() {
    let dev = dev_or_skip!();
    let mut rng = Rng::new(7);
    for (xs, k, s, p) in [
        ([2, 3, 6, 6], (2, 2), (2, 2), (0, 0)),
        ([1, 2, 5, 7], (3, 3), (2, 2), (1, 1)),
        ([2, 1, 5, 4], (3, 2), (1, 1), (1, 0)),
        ([1, 4, 9, 9], (3, 3), (1, 1), (1, 1)),
    ] {
        let d = format!("{xs:?} k{k:?} s{s:?} p{p:?}");
        check(&dev, &format!("avg_pool2d {d}"), ELEM, &[randn(&xs, &mut rng)], true, move |v| v[0].avg_pool2d(k, s, p));
        check(&dev, &format!("max_pool2d {d}"), EXACT, &[distinct(&xs, &mut rng)], true, move |v| v[0].max_pool2d(k, s, p));
    }
    check(&dev, "global_avg_pool", ELEM, &[randn(&[2, 3, 4, 5], &mut rng)], true, |v| v[0].global_avg_pool());
}

#[test]
fn haar_transforms() {
    let dev = dev_or_skip!();
    let mut rng = Rng::new(8);
    check(&dev, "haar_dwt", ELEM, &[randn(&[2, 3, 4, 6], &mut rng)], true, |v| v[0].haar_dwt());
    check(&dev, "haar_iwt", ELEM, &[randn(&[2, 8, 3, 2], &mut rng)], true, |v| v[0].haar_iwt());
    check(&dev, "haar round trip", ELEM, &[randn(&[1, 1, 8, 10], &mut rng)], true, |v| v[0].haar_dwt()?.haar_iwt());
}

#[test]
fn composites() {
    let dev = dev_or_skip!();
    let mut rng = Rng::new(9);
    let t = tol(1e-5, 1e-4);
    check(&dev, "log_softmax axis 1", t, &[randn(&[4, 7], &mut rng)], true, |v| F::log_softmax(&v[0], 1));
    check(&dev, "log_softmax axis 0", t, &[randn(&[2, 3, 5], &mut rng)], true, |v| F::log_softmax(&v[0], 0));
    check(&dev, "softmax", t, &[randn(&[3, 11], &mut rng)], true, |v| F::softmax(&v[0], 1));
    check(&dev, "cross_entropy", t, &[randn(&[5, 4], &mut rng)], true, |v| F::cross_entropy(&v[0], &[0, 3, 1, 1, 2], 0.0));
    check(&dev, "cross_entropy smoothing", t, &[randn(&[5, 4], &mut rng)], true, |v| F::cross_entropy(&v[0], &[0, 3, 1, 1, 2], 0.1));
    check(&dev, "mse mean", t, &[randn(&[2, 3, 4], &mut rng), randn(&[2, 3, 4], &mut rng)], true, |v| {
        F::mse(&v[0], &v[1], F::Reduction::Mean)
    });
    check(&dev, "cosine_similarity", t, &[randn(&[4, 6], &mut rng), randn(&[4, 6], &mut rng)], true, |v| {
        F::cosine_similarity(&v[0], &v[1], 1, 1e-8)
    });
    check(&dev, "cosine_similarity axis 1 of 3", t, &[randn(&[3, 5, 2], &mut rng), randn(&[3, 5, 2], &mut rng)], true, |v| {
        F::cosine_similarity(&v[0], &v[1], 1, 1e-8)
    });
    // Batch norm: the CPU runs its fused kernel, wgpu the composite of primitives; both must agree, and
    // so must the running statistics each updates.
    let x = randn(&[4, 3, 3, 5], &mut rng);
    let (w, b) = (uniform(&[3], 0.5, 2.0, &mut rng), randn(&[3], &mut rng));
    let t_bn = tol(1e-4, 1e-3);
    check(&dev, "batch_norm train", t_bn, &[x.clone(), w.clone(), b.clone()], true, |v| {
        let d = v[0].device();
        let rm = Tensor::zeros(&[3], DType::F32).to_device(&d)?;
        let rv = Tensor::ones(&[3], DType::F32).to_device(&d)?;
        let y = F::batch_norm(&v[0], &rm, &rv, Some(&v[1]), Some(&v[2]), true, 0.1, 1e-5)?;
        // Fold the running statistics into the result so that they are compared too.
        Tensor::concat(&[&y.reshape(&[180])?, &rm.detach(), &rv.detach()], 0)
    });
    let (rm, rv) = (randn(&[3], &mut rng), uniform(&[3], 0.5, 2.0, &mut rng));
    check(&dev, "batch_norm eval", t_bn, &[x.clone(), w, b], true, move |v| {
        let d = v[0].device();
        F::batch_norm(&v[0], &rm.to_device(&d)?, &rv.to_device(&d)?, Some(&v[1]), Some(&v[2]), false, 0.1, 1e-5)
    });
    check(&dev, "batch_norm (N, C) train", t_bn, &[randn(&[6, 4], &mut rng)], true, |v| {
        let d = v[0].device();
        let rm = Tensor::zeros(&[4], DType::F32).to_device(&d)?;
        let rv = Tensor::ones(&[4], DType::F32).to_device(&d)?;
        F::batch_norm(&v[0], &rm, &rv, None, None, true, 0.1, 1e-5)
    });
    check(&dev, "dropout (mask from the same seed)", ELEM, &[randn(&[4, 6], &mut rng)], true, |v| {
        F::dropout(&v[0], 0.3, true, &mut Rng::new(7))
    });
}

/// Several optimizer steps on the same parameters and gradients on both devices: the fused wgpu updates
/// must follow the CPU's composite ones.
#[test]
fn optimizers_fused_updates() {
    let dev = dev_or_skip!();
    type MakeOpt = fn(Vec<Tensor>) -> Box<dyn Optimizer>;
    let makers: [(&str, MakeOpt); 6] = [
        ("sgd", |p| Box::new(Sgd::new(p, 0.1))),
        ("sgd momentum wd", |p| Box::new(Sgd::new(p, 0.05).momentum(0.9).weight_decay(5e-4))),
        ("sgd nesterov dampening 0", |p| Box::new(Sgd::new(p, 0.05).momentum(0.9).nesterov(true))),
        ("sgd dampening", |p| Box::new(Sgd::new(p, 0.05).momentum(0.8).dampening(0.3))),
        ("adam wd", |p| Box::new(Adam::new(p, 1e-2).weight_decay(1e-3))),
        ("adamw", |p| Box::new(AdamW::new(p, 1e-2))),
    ];
    for (name, make) in makers {
        let mut rng = Rng::new(10);
        let init = [randn(&[3, 5], &mut rng), randn(&[7], &mut rng)];
        let grads: Vec<Vec<Tensor>> = (0..4).map(|_| vec![randn(&[3, 5], &mut rng), randn(&[7], &mut rng)]).collect();
        let mut finals = Vec::new();
        for d in [Device::Cpu, dev.clone()] {
            // A copy: on the CPU, to_device would share `init`'s storage and the first run would move it.
            let params: Vec<Tensor> =
                init.iter().map(|t| t.copy().unwrap().to_device(&d).unwrap().detach().requires_grad_(true)).collect();
            let mut opt = make(params.clone());
            for step in &grads {
                // The loss sum(p * g) has gradient g.
                let loss = params[0].mul(&step[0].to_device(&d).unwrap()).unwrap().sum_all().unwrap()
                    .add(&params[1].mul(&step[1].to_device(&d).unwrap()).unwrap().sum_all().unwrap())
                    .unwrap();
                opt.zero_grad();
                loss.backward().unwrap();
                opt.step().unwrap();
            }
            for p in &params {
                assert_eq!(p.device(), d, "{name}: the parameter must stay on its device");
            }
            finals.push(params.iter().flat_map(|p| p.to_vec_f64().unwrap()).collect::<Vec<f64>>());
        }
        assert_close(&format!("{name}: parameters after 4 steps"), &finals[1], &finals[0], tol(1e-5, 1e-4));
    }
}

#[test]
fn moving_tensors_and_modules() {
    let dev = dev_or_skip!();
    let mut rng = Rng::new(11);
    let x = randn(&[3, 4], &mut rng).requires_grad_(true);
    // to_device is differentiable: the gradient comes back to the CPU leaf.
    let y = x.to_device(&dev).unwrap().square().unwrap().sum_all().unwrap();
    y.backward().unwrap();
    let g = x.grad().unwrap();
    assert!(g.device().is_cpu());
    let want: Vec<f64> = x.to_vec_f64().unwrap().iter().map(|v| 2.0 * v).collect();
    assert_close("gradient through to_device", &g.to_vec_f64().unwrap(), &want, ELEM);

    // Moving a model moves its parameters in place: the same tensors, now on the device.
    let cfg = deephide::hiding::HidingConfig { channels: 1, blocks: 1, growth: 4, clamp: 2.0, slope: 0.01 };
    let net = deephide::hiding::InvertibleHiding::new(cfg, 3).unwrap();
    let before: Vec<Tensor> = net.parameters();
    let values: Vec<Vec<f32>> = before.iter().map(|p| p.to_vec_f32().unwrap()).collect();
    net.to_device(&dev).unwrap();
    for ((p, q), v) in before.iter().zip(net.parameters()).zip(&values) {
        assert_eq!(p.id(), q.id());
        assert_eq!(p.device(), dev);
        assert_eq!(&p.to_vec_f32().unwrap(), v);
    }
    net.to_device(&Device::Cpu).unwrap();
    assert!(net.parameters().iter().all(|p| p.device().is_cpu()));
}

/// Buffers beyond the device's storage-binding limit are refused with a message naming the limit.
#[test]
fn oversized_tensor_is_refused() {
    let dev = dev_or_skip!();
    let Device::Wgpu(be) = &dev else { unreachable!("Device::wgpu returns a wgpu device") };
    let too_many = be.max_buffer_len() + 1;
    let e = be.alloc(too_many).unwrap_err().to_string();
    assert!(e.contains("max_storage_buffer_binding_size") || e.contains("max_buffer_size"), "{e}");
}

/// A training step's dispatches are recorded into batches, not submitted one by one, and nothing is
/// read back unless asked for.
#[test]
fn steps_are_batched_and_buffers_pooled() {
    // A device of its own: the other tests, running in parallel, would move the shared pool's counters.
    let be = match deephide::backend::wgpu::WgpuBackend::new() {
        Ok(be) => be,
        Err(e) => return println!("skipped: {e}"),
    };
    let dev = Device::Wgpu(be.clone());
    let mut rng = Rng::new(12);
    let w = randn(&[8, 4, 3, 3], &mut rng).to_device(&dev).unwrap().detach().requires_grad_(true);
    let x = randn(&[2, 4, 8, 8], &mut rng).to_device(&dev).unwrap();
    let mut opt = Sgd::new(vec![w.clone()], 0.01).momentum(0.9);
    let mut losses = Vec::new();
    let mut misses = Vec::new();
    for _ in 0..4 {
        let y = x.conv2d(&w, None, (1, 1), (1, 1)).unwrap().leaky_relu(0.01).unwrap();
        let loss = y.square().unwrap().mean_all().unwrap();
        opt.zero_grad();
        loss.backward().unwrap();
        opt.step().unwrap();
        losses.push(loss.item().unwrap());
        misses.push(be.pool_stats().misses);
    }
    // The loss goes down (plain descent on a quadratic of the weights) ...
    assert!(losses[3] < losses[0], "{losses:?}");
    // ... and once the first steps have filled the pool, later steps allocate no new buffers.
    assert_eq!(misses[3], misses[2], "pool misses per step: {misses:?}");
}

/// Every `.wgsl` file under `shaders/` is registered in SHADER_SOURCES (which the naga test validates),
/// so a new shader cannot be forgotten.
#[test]
fn every_shader_file_is_registered_and_valid() {
    use deephide::backend::wgpu::{SHADER_SOURCES, validate_wgsl};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wgsl"))
        .collect();
    files.sort();
    let mut known: Vec<String> = SHADER_SOURCES.iter().map(|(n, _)| n.to_string()).collect();
    known.sort();
    assert_eq!(files, known, "shaders/ and SHADER_SOURCES differ");
    for (name, src) in SHADER_SOURCES {
        validate_wgsl(name, src).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Environment of a child process in which the Vulkan loader finds no driver.
fn without_adapter(cmd: &mut std::process::Command) -> &mut std::process::Command {
    cmd.env("VK_ICD_FILENAMES", "/nonexistent")
        .env("WGPU_BACKEND", "vulkan")
        .env_remove("VK_DRIVER_FILES")
        .env_remove("VK_ADD_DRIVER_FILES")
        .env_remove("WGPU_ADAPTER_NAME")
}

/// With no adapter, `--device wgpu` on the CLI is a one-line error and a non-zero exit, not a panic.
#[test]
fn cli_device_wgpu_without_adapter_is_a_clear_error() {
    let out = without_adapter(&mut std::process::Command::new(env!("CARGO_BIN_EXE_deephide")))
        .args(["gradcheck", "--device", "wgpu", "--op", "add"])
        .output()
        .expect("run deephide");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, got {}: {stderr}", out.status);
    assert_eq!(out.status.code(), Some(2), "usage/device errors exit with 2: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty() && !l.contains("XDG_RUNTIME_DIR")).collect();
    assert_eq!(lines.len(), 1, "one line expected:\n{stderr}");
    assert!(lines[0].contains("wgpu") && lines[0].contains("adapter"), "{}", lines[0]);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Run only in the child of `tests_skip_without_adapter`.
#[test]
#[ignore = "run by tests_skip_without_adapter in a child process"]
fn skip_child() {
    if std::env::var_os("DEEPHIDE_WGPU_SKIP_CHILD").is_none() {
        return;
    }
    assert!(dev().is_none(), "expected no adapter in the child");
}

/// With no adapter the op tests print `skipped: <reason>` instead of failing.
#[test]
fn tests_skip_without_adapter() {
    let exe = std::env::current_exe().expect("test binary path");
    let out = without_adapter(&mut std::process::Command::new(exe))
        .args(["--exact", "skip_child", "--ignored", "--nocapture", "--test-threads=1"])
        .env("DEEPHIDE_WGPU_SKIP_CHILD", "1")
        .output()
        .expect("spawn the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let line = stdout.lines().find(|l| l.contains("skipped: ")).unwrap_or_else(|| panic!("no skip line:\n{stdout}"));
    assert!(line.contains("adapter"), "{line}");
}
