//! Modules, optimizers, schedules and clipping, checked against hand computations.
//!
//! Every test takes one lock: `live_tensor_count` is process-wide, so the leak test must not see tensors
//! made by tests running in other threads.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use deephide::nn::layers::{BatchNorm2d, Conv2d, Flatten, LeakyReLU, Linear, ReLU, Sequential};
use deephide::nn::module::{load_module, prefixed, save_module, Module};
use deephide::optim::{clip_grad_norm, Adam, AdamW, CosineLr, LrSchedule, Optimizer, Sgd, StepLr};
use deephide::safetensors_io::SaveDType;
use deephide::{live_tensor_count, no_grad, DType, Rng, Tensor};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn close(a: &[f64], b: &[f64], tol: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{what}[{i}]: {x} vs {y}");
    }
}

// ------------------------------------------------------------------------------------------------ optimizers

/// The quadratic `sum(c * (p - t)^2)`: gradient `2 c (p - t)`.
const C: [f64; 3] = [1.0, 3.0, 0.5];
const T: [f64; 3] = [0.5, -1.0, 2.0];
const P0: [f64; 3] = [2.0, 1.0, -1.5];

fn loss_of(p: &Tensor) -> Tensor {
    let c = Tensor::from_vec(C.to_vec(), &[3]).unwrap();
    let t = Tensor::from_vec(T.to_vec(), &[3]).unwrap();
    p.sub(&t).unwrap().square().unwrap().mul(&c).unwrap().sum_all().unwrap()
}

fn grad_ref(p: &[f64]) -> Vec<f64> {
    (0..3).map(|i| 2.0 * C[i] * (p[i] - T[i])).collect()
}

/// Run `steps` engine steps (f64 parameters) next to a hand-written reference update; compare after each.
fn check_against_reference(
    make: impl FnOnce(Vec<Tensor>) -> Box<dyn Optimizer>,
    mut reference: impl FnMut(&mut Vec<f64>, &[f64]),
    steps: usize,
    what: &str,
) {
    let p = Tensor::from_vec(P0.to_vec(), &[3]).unwrap().requires_grad_(true);
    // A second parameter that never gets a gradient must be left alone.
    let idle = Tensor::from_vec(vec![7.0f64, 8.0], &[2]).unwrap().requires_grad_(true);
    let mut opt = make(vec![p.clone(), idle.clone()]);
    let mut r = P0.to_vec();
    for s in 0..steps {
        opt.zero_grad();
        loss_of(&p).backward().unwrap();
        let g = p.grad().unwrap().to_vec::<f64>().unwrap();
        close(&g, &grad_ref(&r), 1e-12, &format!("{what} step {s} gradient"));
        opt.step().unwrap();
        reference(&mut r, &g);
        close(&p.to_vec::<f64>().unwrap(), &r, 1e-12, &format!("{what} step {s} params"));
    }
    assert_eq!(idle.to_vec::<f64>().unwrap(), vec![7.0, 8.0], "{what}: parameter without grad changed");
    assert!(idle.grad().is_none());
}

/// torch.optim.SGD, written out.
fn sgd_reference(lr: f64, momentum: f64, dampening: f64, wd: f64, nesterov: bool) -> impl FnMut(&mut Vec<f64>, &[f64]) {
    let mut buf: Option<Vec<f64>> = None;
    move |p, g| {
        let d: Vec<f64> = (0..p.len()).map(|i| g[i] + wd * p[i]).collect();
        let step: Vec<f64> = if momentum != 0.0 {
            let b: Vec<f64> = match &buf {
                None => d.clone(),
                Some(b) => (0..p.len()).map(|i| momentum * b[i] + (1.0 - dampening) * d[i]).collect(),
            };
            let s = if nesterov { (0..p.len()).map(|i| d[i] + momentum * b[i]).collect() } else { b.clone() };
            buf = Some(b);
            s
        } else {
            d
        };
        for i in 0..p.len() {
            p[i] -= lr * step[i];
        }
    }
}

/// torch.optim.Adam / AdamW, written out.
fn adam_reference(lr: f64, b1: f64, b2: f64, eps: f64, wd: f64, decoupled: bool) -> impl FnMut(&mut Vec<f64>, &[f64]) {
    let (mut m, mut v, mut t) = (vec![0.0; 3], vec![0.0; 3], 0);
    move |p, g| {
        t += 1;
        for i in 0..p.len() {
            let mut gi = g[i];
            if decoupled {
                p[i] *= 1.0 - lr * wd;
            } else {
                gi += wd * p[i];
            }
            m[i] = b1 * m[i] + (1.0 - b1) * gi;
            v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
            let mhat = m[i] / (1.0 - b1.powi(t));
            let vhat = v[i] / (1.0 - b2.powi(t));
            p[i] -= lr * mhat / (vhat.sqrt() + eps);
        }
    }
}

#[test]
fn sgd_plain_with_weight_decay() {
    let _s = serial();
    check_against_reference(
        |ps| Box::new(Sgd::new(ps, 0.05).weight_decay(0.1)),
        sgd_reference(0.05, 0.0, 0.0, 0.1, false),
        4,
        "sgd",
    );
}

#[test]
fn sgd_momentum_with_weight_decay() {
    let _s = serial();
    check_against_reference(
        |ps| Box::new(Sgd::new(ps, 0.05).momentum(0.9).weight_decay(0.01)),
        sgd_reference(0.05, 0.9, 0.0, 0.01, false),
        5,
        "sgd momentum",
    );
}

#[test]
fn sgd_nesterov_with_weight_decay() {
    let _s = serial();
    check_against_reference(
        |ps| Box::new(Sgd::new(ps, 0.03).momentum(0.8).nesterov(true).weight_decay(0.05)),
        sgd_reference(0.03, 0.8, 0.0, 0.05, true),
        5,
        "sgd nesterov",
    );
}

#[test]
fn sgd_momentum_with_dampening() {
    let _s = serial();
    check_against_reference(
        |ps| Box::new(Sgd::new(ps, 0.05).momentum(0.9).dampening(0.5)),
        sgd_reference(0.05, 0.9, 0.5, 0.0, false),
        4,
        "sgd dampening",
    );
}

#[test]
fn sgd_rejects_bad_settings() {
    let _s = serial();
    let p = Tensor::zeros(&[2], DType::F32).requires_grad_(true);
    loss_like(&p).backward().unwrap();
    assert!(Sgd::new(vec![p.clone()], 0.1).nesterov(true).step().is_err(), "nesterov without momentum");
    assert!(Sgd::new(vec![p.clone()], 0.1).momentum(0.9).dampening(0.1).nesterov(true).step().is_err());
    assert!(Sgd::new(vec![p.clone()], -0.1).step().is_err());
    assert!(Adam::new(vec![p.clone()], 0.1).betas(1.0, 0.999).step().is_err());
    assert_eq!(p.to_vec::<f32>().unwrap(), vec![0.0, 0.0], "a rejected step changes nothing");
}

fn loss_like(p: &Tensor) -> Tensor {
    p.add_scalar(1.0).unwrap().square().unwrap().sum_all().unwrap()
}

#[test]
fn adam_with_l2_weight_decay() {
    let _s = serial();
    check_against_reference(
        |ps| Box::new(Adam::new(ps, 0.1).weight_decay(0.1)),
        adam_reference(0.1, 0.9, 0.999, 1e-8, 0.1, false),
        5,
        "adam",
    );
}

#[test]
fn adam_custom_betas_and_eps() {
    let _s = serial();
    check_against_reference(
        |ps| Box::new(Adam::new(ps, 0.02).betas(0.8, 0.99).eps(1e-3)),
        adam_reference(0.02, 0.8, 0.99, 1e-3, 0.0, false),
        4,
        "adam betas",
    );
}

#[test]
fn adamw_decoupled_weight_decay() {
    let _s = serial();
    check_against_reference(
        |ps| Box::new(AdamW::new(ps, 0.1).weight_decay(0.2)),
        adam_reference(0.1, 0.9, 0.999, 1e-8, 0.2, true),
        5,
        "adamw",
    );
    // PyTorch's default weight decay for AdamW is 0.01.
    check_against_reference(
        |ps| Box::new(AdamW::new(ps, 0.05)),
        adam_reference(0.05, 0.9, 0.999, 1e-8, 0.01, true),
        3,
        "adamw default",
    );
}

#[test]
fn adam_counts_steps_per_parameter_and_f32_works() {
    let _s = serial();
    let a = Tensor::from_vec(vec![1.0f32, -2.0], &[2]).unwrap().requires_grad_(true);
    let b = Tensor::from_vec(vec![3.0f32], &[1]).unwrap().requires_grad_(true);
    let mut opt = Adam::new(vec![a.clone(), b.clone()], 0.1);
    let mut reference = adam_reference(0.1, 0.9, 0.999, 1e-8, 0.0, false);
    let mut r = vec![1.0, -2.0];
    for _ in 0..3 {
        opt.zero_grad();
        loss_like(&a).backward().unwrap();
        opt.step().unwrap();
        let g: Vec<f64> = r.iter().map(|x| 2.0 * (x + 1.0)).collect();
        reference(&mut r, &g);
        close(&a.to_vec_f64().unwrap(), &r, 1e-5, "f32 adam");
    }
    assert_eq!((opt.step_count(0), opt.step_count(1)), (3, 0));
    assert_eq!(b.to_vec::<f32>().unwrap(), vec![3.0]);
    assert!(b.grad().is_none());
    assert_eq!(opt.lr(), 0.1);
    opt.set_lr(0.01);
    assert_eq!(opt.lr(), 0.01);
}

// ------------------------------------------------------------------------------------------------ schedules

#[test]
fn step_lr_values() {
    let s = StepLr { step_size: 3, gamma: 0.1 };
    let want = [(0, 1.0), (1, 1.0), (2, 1.0), (3, 0.1), (5, 0.1), (6, 0.01), (10, 0.001)];
    for (t, lr) in want {
        assert!((s.lr(1.0, t) - lr).abs() < 1e-15, "t={t}: {}", s.lr(1.0, t));
    }
    assert!((StepLr { step_size: 30, gamma: 0.5 }.lr(0.2, 65) - 0.05).abs() < 1e-15);
}

#[test]
fn cosine_lr_values() {
    let (base, min) = (0.1, 0.001);
    let s = CosineLr { total: 10, min_lr: min };
    assert!((s.lr(base, 0) - base).abs() < 1e-15);
    assert!((s.lr(base, 5) - (base + min) / 2.0).abs() < 1e-15);
    assert!((s.lr(base, 10) - min).abs() < 1e-15);
    assert!((s.lr(base, 25) - min).abs() < 1e-15, "stays at min_lr after the end");
    let t3 = min + (base - min) * (1.0 + (0.3 * std::f64::consts::PI).cos()) / 2.0;
    assert!((s.lr(base, 3) - t3).abs() < 1e-15);
    // Agrees with PyTorch's recursive form of CosineAnnealingLR within the period.
    let mut eta = base;
    for t in 1..10 {
        let pi = std::f64::consts::PI;
        eta = min + (eta - min) * (1.0 + (pi * t as f64 / 10.0).cos()) / (1.0 + (pi * (t - 1) as f64 / 10.0).cos());
        assert!((s.lr(base, t) - eta).abs() < 1e-12, "t={t}");
    }
    // Driving an optimizer.
    let _s = serial();
    let p = Tensor::zeros(&[1], DType::F32).requires_grad_(true);
    let mut opt = Sgd::new(vec![p], base);
    opt.set_lr(s.lr(base, 5));
    assert!((opt.lr() - (base + min) / 2.0).abs() < 1e-15);
}

// ------------------------------------------------------------------------------------------------ clipping

#[test]
fn clip_grad_norm_scales_in_place() {
    let _s = serial();
    let a = Tensor::from_vec(vec![3.0f32, 4.0], &[2]).unwrap().requires_grad_(true);
    let b = Tensor::from_vec(vec![12.0f32], &[1]).unwrap().requires_grad_(true);
    let c = Tensor::zeros(&[5], DType::F32).requires_grad_(true); // no grad: skipped
    let backward = || {
        a.zero_grad();
        b.zero_grad();
        // d/da sum(a^2)/2 = a, likewise b: gradients (3, 4) and (12): global norm 13.
        a.square().unwrap().sum_all().unwrap().add(&b.square().unwrap().sum_all().unwrap()).unwrap().mul_scalar(0.5).unwrap().backward().unwrap();
    };
    let ps = vec![a.clone(), b.clone(), c.clone()];

    backward();
    let n = clip_grad_norm(&ps, 100.0).unwrap();
    assert!((n - 13.0).abs() < 1e-6);
    assert_eq!(a.grad().unwrap().to_vec::<f32>().unwrap(), vec![3.0, 4.0], "below the limit: unchanged");

    let n = clip_grad_norm(&ps, 6.5).unwrap();
    assert!((n - 13.0).abs() < 1e-6);
    let coef = 6.5 / (13.0 + 1e-6);
    close(&a.grad().unwrap().to_vec_f64().unwrap(), &[3.0 * coef, 4.0 * coef], 1e-6, "a.grad");
    close(&b.grad().unwrap().to_vec_f64().unwrap(), &[12.0 * coef], 1e-6, "b.grad");
    assert!(c.grad().is_none());
    // The clipped gradients are what the next call (and an optimizer) sees.
    let n2 = clip_grad_norm(&ps, 100.0).unwrap();
    assert!((n2 - 6.5).abs() < 1e-5, "{n2}");
    let mut opt = Sgd::new(ps.clone(), 1.0);
    opt.step().unwrap();
    close(&a.to_vec_f64().unwrap(), &[3.0 - 3.0 * coef, 4.0 - 4.0 * coef], 1e-6, "a after step");

    assert!(clip_grad_norm(&ps, -1.0).is_err());
    assert_eq!(clip_grad_norm(&[c], 1.0).unwrap(), 0.0);
}

// ------------------------------------------------------------------------------------------------ modules

#[test]
fn linear_forward_and_backward_by_hand() {
    let _s = serial();
    let w = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
    let b = Tensor::from_vec(vec![0.5f32, -1.0], &[2]).unwrap();
    let lin = Linear::from_tensors(w, Some(b)).unwrap();
    let x = Tensor::from_vec(vec![1.0f32, 0.0, -1.0, 2.0, 1.0, 0.0], &[2, 3]).unwrap().requires_grad_(true);
    let y = lin.forward(&x).unwrap();
    assert_eq!(y.shape(), &[2, 2]);
    // Row 0: (1 - 3 + 0.5, 4 - 6 - 1); row 1: (2 + 2 + 0.5, 8 + 5 - 1).
    assert_eq!(y.to_vec::<f32>().unwrap(), vec![-1.5, -3.0, 4.5, 12.0]);
    y.sum_all().unwrap().backward().unwrap();
    assert_eq!(lin.weight.grad().unwrap().to_vec::<f32>().unwrap(), vec![3.0, 1.0, -1.0, 3.0, 1.0, -1.0]);
    assert_eq!(lin.bias.as_ref().unwrap().grad().unwrap().to_vec::<f32>().unwrap(), vec![2.0, 2.0]);
    assert_eq!(x.grad().unwrap().to_vec::<f32>().unwrap(), vec![5.0, 7.0, 9.0, 5.0, 7.0, 9.0]);
    let names: Vec<String> = lin.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec!["weight", "bias"]);
    lin.zero_grad();
    assert!(lin.weight.grad().is_none());
    // A wrong input width is a shape error naming both sizes.
    let e = lin.forward(&Tensor::zeros(&[2, 4], DType::F32)).unwrap_err().to_string();
    assert!(e.contains("Linear") && e.contains("(2, 4)"), "{e}");
}

#[test]
fn linear_default_init_matches_pytorch_bounds() {
    let _s = serial();
    let mut rng = Rng::new(3);
    let lin = Linear::new(16, 8, true, &mut rng);
    assert_eq!(lin.weight.shape(), &[8, 16]);
    let bound = 1.0 / 16f32.sqrt();
    for t in [&lin.weight, lin.bias.as_ref().unwrap()] {
        assert!(t.requires_grad());
        let v = t.to_vec::<f32>().unwrap();
        assert!(v.iter().all(|x| x.abs() <= bound));
        let spread = v.iter().cloned().fold(f32::MIN, f32::max) - v.iter().cloned().fold(f32::MAX, f32::min);
        assert!(spread > bound, "values are spread over the range");
    }
    assert!(Linear::new(4, 2, false, &mut rng).bias.is_none());
    assert_eq!(lin.num_parameters(), 8 * 16 + 8);
}

#[test]
fn sequential_names_and_activations() {
    let _s = serial();
    let mut rng = Rng::new(5);
    let model = Sequential::new()
        .with(Linear::new(3, 4, true, &mut rng))
        .with(LeakyReLU(0.2))
        .with(Linear::new(4, 2, false, &mut rng))
        .with(ReLU)
        .with(BatchNorm2d::new(2))
        .with(Flatten);
    let names: Vec<String> = model.state_dict().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec!["0.weight", "0.bias", "2.weight", "4.weight", "4.bias", "4.running_mean", "4.running_var"]);
    assert_eq!(model.parameters().len(), 5);
    assert_eq!(prefixed("enc", model.named_buffers())[0].0, "enc.4.running_mean");

    let x = Tensor::from_vec(vec![-1.0f32, 0.0, 2.0], &[1, 3]).unwrap();
    assert_eq!(LeakyReLU(0.2).forward(&x).unwrap().to_vec::<f32>().unwrap(), vec![-0.2, 0.0, 2.0]);
    assert_eq!(ReLU.forward(&x).unwrap().to_vec::<f32>().unwrap(), vec![0.0, 0.0, 2.0]);
    let img = Tensor::zeros(&[2, 3, 4, 5], DType::F32);
    assert_eq!(Flatten.forward(&img).unwrap().shape(), &[2, 60]);
    // Sequential chains forward (first three layers).
    let head = Sequential::from(vec![
        Box::new(Linear::from_tensors(Tensor::from_vec(vec![1.0f32, 1.0, 1.0], &[1, 3]).unwrap(), None).unwrap())
            as Box<dyn Module>,
        Box::new(LeakyReLU(0.5)),
    ]);
    assert_eq!(head.forward(&x).unwrap().to_vec::<f32>().unwrap(), vec![1.0]);
    let neg = Tensor::from_vec(vec![-1.0f32, -1.0, 0.0], &[1, 3]).unwrap();
    assert_eq!(head.forward(&neg).unwrap().to_vec::<f32>().unwrap(), vec![-1.0]);
}

#[test]
fn module_state_round_trips_through_safetensors() {
    let _s = serial();
    let mut rng = Rng::new(11);
    let build = |rng: &mut Rng| {
        Sequential::new().with(Linear::new(3, 4, true, rng)).with(ReLU).with(Linear::new(4, 2, true, rng)).with(BatchNorm2d::new(2))
    };
    let a = build(&mut rng);
    let b = build(&mut rng);
    no_grad(|| a.named_buffers()[0].1.assign(&Tensor::from_vec(vec![0.25f32, -0.5], &[2]).unwrap())).unwrap();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("nn_optim_state");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    let meta = BTreeMap::from([("epoch".to_string(), "3".to_string())]);
    save_module(&a, &path, &meta, SaveDType::F32).unwrap();
    let rest = load_module(&b, &path, true).unwrap();
    assert_eq!(rest.metadata, meta);
    for ((na, ta), (nb, tb)) in a.state_dict().iter().zip(b.state_dict().iter()) {
        assert_eq!(na, nb);
        assert_eq!(ta.to_vec::<f32>().unwrap(), tb.to_vec::<f32>().unwrap(), "{na}");
    }
    // A model with a different layout is refused, naming the key.
    let c = Sequential::new().with(Linear::new(3, 5, true, &mut rng));
    let e = load_module(&c, &path, false).unwrap_err().to_string();
    assert!(e.contains("model.safetensors") && e.contains("`0.weight`") && e.contains("(4, 3)") && e.contains("(5, 3)"), "{e}");
}

// ------------------------------------------------------------------------------------------------ training

fn mse(pred: &Tensor, y: &Tensor) -> deephide::Result<Tensor> {
    pred.sub(y)?.square()?.mean_all()
}

#[test]
fn linear_regression_with_adam_reaches_low_loss() {
    let _s = serial();
    let mut rng = Rng::new(42);
    let x = Tensor::randn(&[64, 4], 1.0, DType::F32, &mut rng);
    let w_true = Tensor::from_vec(vec![1.5f32, -2.0, 0.5, 3.0], &[4, 1]).unwrap();
    let y = x.matmul(&w_true).unwrap().add_scalar(0.7).unwrap();
    let model = Linear::new(4, 1, true, &mut rng);
    let mut opt = Adam::new(model.parameters(), 0.05);
    let first = mse(&model.forward(&x).unwrap(), &y).unwrap().item().unwrap();
    let mut last = first;
    for _ in 0..400 {
        opt.zero_grad();
        let loss = mse(&model.forward(&x).unwrap(), &y).unwrap();
        last = loss.item().unwrap();
        loss.backward().unwrap();
        opt.step().unwrap();
    }
    assert!(last < 1e-4 && last < first * 1e-4, "loss {first} -> {last}");
    close(&model.weight.to_vec_f64().unwrap(), &[1.5, -2.0, 0.5, 3.0], 1e-2, "learned weight");
    close(&model.bias.as_ref().unwrap().to_vec_f64().unwrap(), &[0.7], 1e-2, "learned bias");
}

#[test]
fn training_does_not_leak_tensors() {
    let _s = serial();
    let mut rng = Rng::new(9);
    let model = Sequential::new().with(Linear::new(8, 16, true, &mut rng)).with(ReLU).with(Linear::new(16, 1, true, &mut rng));
    let x = Tensor::randn(&[32, 8], 1.0, DType::F32, &mut rng);
    let y = Tensor::randn(&[32, 1], 1.0, DType::F32, &mut rng);
    let mut adam = AdamW::new(model.parameters(), 1e-2);
    let mut sgd = Sgd::new(model.parameters(), 1e-3).momentum(0.9).nesterov(true).weight_decay(1e-4);
    let sched = CosineLr { total: 220, min_lr: 1e-4 };
    let mut step = |i: usize| {
        model.zero_grad();
        let loss = model.forward(&x).unwrap().sub(&y).unwrap().square().unwrap().mean_all().unwrap();
        loss.backward().unwrap();
        clip_grad_norm(&model.parameters(), 1.0).unwrap();
        adam.set_lr(sched.lr(1e-2, i));
        adam.step().unwrap();
        sgd.step().unwrap();
        loss.item().unwrap()
    };
    for i in 0..20 {
        step(i);
    }
    let before = live_tensor_count();
    let mut last = 0.0;
    for i in 20..220 {
        last = step(i);
        let now = live_tensor_count();
        assert!(now.abs_diff(before) <= 4, "step {i}: {before} live tensors after warm-up, {now} now");
    }
    assert!(last.is_finite());
    let after = live_tensor_count();
    assert!(after.abs_diff(before) <= 4, "{before} -> {after}");
}

// ------------------------------------------------------------------------------------------------ conv / batch norm

/// Direct convolution in f64 (NCHW, OIHW, zero padding).
fn conv_ref(x: &[f64], xs: [usize; 4], w: &[f64], ws: [usize; 4], b: &[f64], stride: (usize, usize), pad: (usize, usize)) -> Vec<f64> {
    let [n, c, h, wd] = xs;
    let [o, _, kh, kw] = ws;
    let oh = (h + 2 * pad.0 - kh) / stride.0 + 1;
    let ow = (wd + 2 * pad.1 - kw) / stride.1 + 1;
    let mut out = vec![0.0; n * o * oh * ow];
    for ni in 0..n {
        for oi in 0..o {
            for y in 0..oh {
                for xx in 0..ow {
                    let mut s = b.get(oi).copied().unwrap_or(0.0);
                    for ci in 0..c {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (y * stride.0 + ky) as isize - pad.0 as isize;
                                let ix = (xx * stride.1 + kx) as isize - pad.1 as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                    continue;
                                }
                                s += x[((ni * c + ci) * h + iy as usize) * wd + ix as usize]
                                    * w[((oi * c + ci) * kh + ky) * kw + kx];
                            }
                        }
                    }
                    out[((ni * o + oi) * oh + y) * ow + xx] = s;
                }
            }
        }
    }
    out
}

#[test]
fn conv2d_init_and_names() {
    let _s = serial();
    let mut rng = Rng::new(2);
    let conv = Conv2d::new(3, 8, (3, 3), (1, 1), (1, 1), true, &mut rng);
    assert_eq!(conv.weight.shape(), &[8, 3, 3, 3]);
    assert_eq!((conv.in_channels(), conv.out_channels(), conv.kernel()), (3, 8, (3, 3)));
    let bound = 1.0 / 27f32.sqrt();
    assert!(conv.weight.to_vec::<f32>().unwrap().iter().all(|x| x.abs() <= bound));
    assert!(conv.bias.as_ref().unwrap().to_vec::<f32>().unwrap().iter().all(|x| x.abs() <= bound));
    let names: Vec<String> = conv.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec!["weight", "bias"]);
    assert!(Conv2d::new(3, 8, (3, 3), (1, 1), (0, 0), false, &mut rng).bias.is_none());
}

#[test]
fn conv2d_forward_matches_direct_convolution() {
    let _s = serial();
    let mut rng = Rng::new(4);
    for (stride, pad, bias) in [((1, 1), (0, 0), true), ((2, 1), (1, 2), true), ((2, 2), (1, 1), false)] {
        let x = Tensor::randn(&[2, 3, 6, 5], 1.0, DType::F64, &mut rng);
        let w = Tensor::randn(&[4, 3, 3, 2], 1.0, DType::F64, &mut rng);
        let b = bias.then(|| Tensor::randn(&[4], 1.0, DType::F64, &mut rng));
        let conv = Conv2d::from_tensors(w.clone(), b.clone(), stride, pad).unwrap();
        let y = conv.forward(&x).unwrap();
        let bv = b.map(|b| b.to_vec::<f64>().unwrap()).unwrap_or_default();
        let want = conv_ref(&x.to_vec::<f64>().unwrap(), [2, 3, 6, 5], &w.to_vec::<f64>().unwrap(), [4, 3, 3, 2], &bv, stride, pad);
        let oh = (6 + 2 * pad.0 - 3) / stride.0 + 1;
        let ow = (5 + 2 * pad.1 - 2) / stride.1 + 1;
        assert_eq!(y.shape(), &[2, 4, oh, ow]);
        close(&y.to_vec::<f64>().unwrap(), &want, 1e-12, "conv2d");
    }
    // Small case by hand: 3x3 input 1..9, 2x2 kernel of ones, bias 0.5.
    let x = Tensor::from_vec((1..=9).map(|v| v as f32).collect(), &[1, 1, 3, 3]).unwrap();
    let conv = Conv2d::from_tensors(Tensor::ones(&[1, 1, 2, 2], DType::F32), Some(Tensor::full(&[1], 0.5, DType::F32)), (1, 1), (0, 0)).unwrap();
    assert_eq!(conv.forward(&x).unwrap().to_vec::<f32>().unwrap(), vec![12.5, 16.5, 24.5, 28.5]);
}

#[test]
fn batch_norm2d_training_and_eval() {
    let _s = serial();
    let mut rng = Rng::new(8);
    let (n, c, h, w) = (4, 3, 2, 5);
    let x = Tensor::randn(&[n, c, h, w], 2.0, DType::F32, &mut rng).add_scalar(1.0).unwrap();
    let bn = BatchNorm2d::new(c);
    assert!(bn.is_training());
    no_grad(|| {
        bn.weight.assign(&Tensor::from_vec(vec![1.0f32, 2.0, 0.5], &[3]).unwrap()).unwrap();
        bn.bias.assign(&Tensor::from_vec(vec![0.0f32, -1.0, 3.0], &[3]).unwrap()).unwrap();
    });
    let xv = x.to_vec_f64().unwrap();
    let per = |ci: usize| -> Vec<f64> {
        (0..n).flat_map(|ni| (0..h * w).map(move |k| (ni, k))).map(|(ni, k)| xv[(ni * c + ci) * h * w + k]).collect()
    };
    let (wt, bs) = ([1.0, 2.0, 0.5], [0.0, -1.0, 3.0]);
    let y = bn.forward(&x).unwrap().to_vec_f64().unwrap();
    let cnt = (n * h * w) as f64;
    let mut mean = vec![0.0; c];
    let mut var_b = vec![0.0; c];
    for ci in 0..c {
        let v = per(ci);
        mean[ci] = v.iter().sum::<f64>() / cnt;
        var_b[ci] = v.iter().map(|x| (x - mean[ci]).powi(2)).sum::<f64>() / cnt;
        for ni in 0..n {
            for k in 0..h * w {
                let i = (ni * c + ci) * h * w + k;
                let want = (xv[i] - mean[ci]) / (var_b[ci] + 1e-5).sqrt() * wt[ci] + bs[ci];
                assert!((y[i] - want).abs() < 1e-4, "train y[{i}]: {} vs {want}", y[i]);
            }
        }
    }
    // Running statistics: momentum 0.1, unbiased variance (PyTorch).
    let rm: Vec<f64> = mean.iter().map(|m| 0.1 * m).collect();
    let rv: Vec<f64> = var_b.iter().map(|v| 0.9 + 0.1 * v * cnt / (cnt - 1.0)).collect();
    close(&bn.running_mean.to_vec_f64().unwrap(), &rm, 1e-5, "running_mean");
    close(&bn.running_var.to_vec_f64().unwrap(), &rv, 1e-5, "running_var");
    // Evaluation (switched through a container) uses the running statistics and leaves them alone.
    let seq = Sequential::new().with(bn);
    seq.set_training(false);
    let y = seq.forward(&x).unwrap().to_vec_f64().unwrap();
    for ci in 0..c {
        for ni in 0..n {
            for k in 0..h * w {
                let i = (ni * c + ci) * h * w + k;
                let want = (xv[i] - rm[ci]) / (rv[ci] + 1e-5).sqrt() * wt[ci] + bs[ci];
                assert!((y[i] - want).abs() < 1e-4, "eval y[{i}]: {} vs {want}", y[i]);
            }
        }
    }
    let bufs = seq.named_buffers();
    close(&bufs[0].1.to_vec_f64().unwrap(), &rm, 1e-5, "running_mean after eval");
    close(&bufs[1].1.to_vec_f64().unwrap(), &rv, 1e-5, "running_var after eval");
}

#[test]
fn small_conv_net_trains_without_leaks() {
    let _s = serial();
    let mut rng = Rng::new(13);
    let model = Sequential::new()
        .with(Conv2d::new(2, 4, (3, 3), (1, 1), (1, 1), false, &mut rng))
        .with(BatchNorm2d::new(4))
        .with(LeakyReLU(0.1))
        .with(Conv2d::new(4, 2, (3, 3), (2, 2), (1, 1), true, &mut rng))
        .with(Flatten)
        .with(Linear::new(2 * 3 * 3, 1, true, &mut rng));
    let x = Tensor::randn(&[8, 2, 6, 6], 1.0, DType::F32, &mut rng);
    let y = Tensor::randn(&[8, 1], 1.0, DType::F32, &mut rng);
    let mut opt = Adam::new(model.parameters(), 1e-2);
    let mut step = || {
        opt.zero_grad();
        let loss = mse(&model.forward(&x).unwrap(), &y).unwrap();
        loss.backward().unwrap();
        opt.step().unwrap();
        loss.item().unwrap()
    };
    let first = step();
    for _ in 0..10 {
        step();
    }
    let before = live_tensor_count();
    let mut last = first;
    for _ in 0..50 {
        last = step();
    }
    assert!(live_tensor_count().abs_diff(before) <= 4);
    assert!(last < first, "loss {first} -> {last}");
}

/// The fused f32 CPU update (in place, chunked in parallel for large tensors) follows the op-by-op rule,
/// which f64 parameters still take, for Adam with L2 decay and for AdamW.
#[test]
fn fused_f32_adam_matches_the_op_by_op_rule() {
    let _s = serial();
    for decoupled in [false, true] {
        let n = 40_000; // above the parallel threshold
        let init: Vec<f64> = (0..n).map(|i| ((i * 7919) % 1000) as f64 / 500.0 - 1.0).collect();
        let p32 = Tensor::from_f64_vec(&init, &[n], DType::F32).unwrap().requires_grad_(true);
        let p64 = Tensor::from_f64_vec(&init, &[n], DType::F64).unwrap().requires_grad_(true);
        let mk = |p: &Tensor| -> Box<dyn Optimizer> {
            if decoupled {
                Box::new(AdamW::new(vec![p.clone()], 0.01).weight_decay(0.1))
            } else {
                Box::new(Adam::new(vec![p.clone()], 0.01).weight_decay(0.1))
            }
        };
        let (mut o32, mut o64) = (mk(&p32), mk(&p64));
        for _ in 0..4 {
            for (p, o) in [(&p32, &mut o32), (&p64, &mut o64)] {
                o.zero_grad();
                p.mul(p).unwrap().mul(p).unwrap().sum_all().unwrap().backward().unwrap();
                o.step().unwrap();
            }
        }
        let (a, b) = (p32.to_vec_f64().unwrap(), p64.to_vec_f64().unwrap());
        for i in 0..n {
            assert!((a[i] - b[i]).abs() <= 1e-5 * (1.0 + b[i].abs()), "decoupled {decoupled}: p[{i}] f32 {} vs f64 {}", a[i], b[i]);
        }
    }
}
