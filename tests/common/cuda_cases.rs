//! Every engine op on a CUDA device (a GPU, or the CPU emulation `cuda-emu`) against the CPU back end:
//! forward values and the gradients of every input, on random data and awkward shapes (odd sizes, sizes
//! that are not multiples of the tile or block sizes, broadcasts, strides and paddings).
//!
//! Shared by tests/cuda_ops.rs (a real GPU) and tests/cuda_emulation.rs (the emulation).
#![allow(dead_code)]

use deephide::nn::functional as F;
use deephide::optim::{Adam, AdamW, Optimizer, Sgd};
use deephide::rng::Rng;
use deephide::{DType, Device, Tensor};

/// `|ref - out| <= atol + rtol * |ref|` element-wise.
#[derive(Clone, Copy, Debug)]
pub struct Tol {
    pub atol: f64,
    pub rtol: f64,
}

/// Element-wise ops: f32 on both sides, the only difference is the order of a few operations.
pub const TIGHT: Tol = Tol { atol: 1e-5, rtol: 1e-5 };
/// Reductions and products: the GPU sums in a different order (tiles, trees, split-K).
pub const SUMS: Tol = Tol { atol: 1e-4, rtol: 1e-4 };

pub fn close(what: &str, reference: &[f32], out: &[f32], tol: Tol) -> Result<(), String> {
    if reference.len() != out.len() {
        return Err(format!("{what}: {} values, expected {}", out.len(), reference.len()));
    }
    let mut worst: Option<(usize, f64)> = None;
    for (i, (&r, &o)) in reference.iter().zip(out).enumerate() {
        let (r, o) = (r as f64, o as f64);
        let err = (r - o).abs();
        let bound = tol.atol + tol.rtol * r.abs();
        // NaN never passes (the emulation fills unwritten memory with NaN).
        if !(err <= bound) {
            let excess = if err.is_nan() { f64::INFINITY } else { err / bound };
            if worst.is_none_or(|(_, e)| excess > e) {
                worst = Some((i, excess));
            }
        }
    }
    match worst {
        None => Ok(()),
        Some((i, _)) => Err(format!(
            "{what}: element {i}: device {} vs cpu {} (|diff| {:e} > atol {:e} + rtol {:e} * |ref|)",
            out[i],
            reference[i],
            (reference[i] as f64 - out[i] as f64).abs(),
            tol.atol,
            tol.rtol
        )),
    }
}

pub fn randn(shape: &[usize], rng: &mut Rng) -> Tensor {
    Tensor::randn(shape, 1.0, DType::F32, rng)
}

pub fn uniform(shape: &[usize], lo: f64, hi: f64, rng: &mut Rng) -> Tensor {
    Tensor::rand_uniform(shape, lo, hi, DType::F32, rng)
}

/// Runs `f` on CPU copies and device copies of `inputs` and compares the outputs, then the gradients of
/// every input under the loss `sum(out * P)` with a fixed random P (so every output element matters
/// with a distinct weight).
pub fn check(
    dev: &Device,
    what: &str,
    inputs: &[Tensor],
    tol: Tol,
    f: impl Fn(&[Tensor]) -> deephide::Result<Tensor>,
) -> Result<(), String> {
    let err = |e: deephide::Error| format!("{what}: {e}");
    let cpu_in: Vec<Tensor> = inputs.iter().map(|t| t.detach().requires_grad_(true)).collect();
    let dev_in: Vec<Tensor> = inputs
        .iter()
        .map(|t| Ok(t.to_device(dev)?.detach().requires_grad_(true)))
        .collect::<deephide::Result<_>>()
        .map_err(err)?;
    let out_cpu = f(&cpu_in).map_err(err)?;
    let out_dev = f(&dev_in).map_err(err)?;
    if out_dev.device() != *dev {
        return Err(format!("{what}: result is on {}, expected {}", out_dev.device().name(), dev.name()));
    }
    if out_cpu.shape() != out_dev.shape() {
        return Err(format!("{what}: shape {:?} vs cpu {:?}", out_dev.shape(), out_cpu.shape()));
    }
    close(&format!("{what} (forward)"), &out_cpu.to_vec_f32().map_err(err)?, &out_dev.to_vec_f32().map_err(err)?, tol)?;

    if !out_cpu.tracks_grad() {
        return Ok(());
    }
    let mut rng = Rng::new(99);
    let proj = randn(out_cpu.shape(), &mut rng);
    out_cpu.mul(&proj).and_then(|t| t.sum_all()).and_then(|l| l.backward()).map_err(err)?;
    let proj_dev = proj.to_device(dev).map_err(err)?;
    out_dev.mul(&proj_dev).and_then(|t| t.sum_all()).and_then(|l| l.backward()).map_err(err)?;
    for (i, (c, d)) in cpu_in.iter().zip(&dev_in).enumerate() {
        match (c.grad(), d.grad()) {
            (None, None) => {}
            (Some(gc), Some(gd)) => {
                if gd.device() != *dev {
                    return Err(format!("{what}: gradient {i} is on {}", gd.device().name()));
                }
                close(&format!("{what} (gradient of input {i})"), &gc.to_vec_f32().map_err(err)?, &gd.to_vec_f32().map_err(err)?, tol)?;
            }
            (c, d) => return Err(format!("{what}: gradient {i} present on cpu: {}, on device: {}", c.is_some(), d.is_some())),
        }
    }
    Ok(())
}

/// Runs every case, returning the failures (an empty list is a pass).
pub fn run_all(dev: &Device, cases: &[(&str, fn(&Device) -> Result<(), String>)]) -> Vec<String> {
    let mut failures = Vec::new();
    for (name, case) in cases {
        let t = std::time::Instant::now();
        match case(dev) {
            Ok(()) => println!("ok   {name} ({:.1} s)", t.elapsed().as_secs_f64()),
            Err(e) => {
                println!("FAIL {name}: {e}");
                failures.push(format!("{name}: {e}"));
            }
        }
    }
    failures
}

// ------------------------------------------------------------------ the cases

pub fn unary(dev: &Device) -> Result<(), String> {
    use deephide::ops::UnaryOp as U;
    let mut rng = Rng::new(1);
    let any = randn(&[3, 37], &mut rng);
    let pos = uniform(&[3, 37], 0.1, 3.0, &mut rng);
    let ops: &[(U, bool)] = &[
        (U::Neg, false),
        (U::Exp, false),
        (U::Log, true),
        (U::Sqrt, true),
        (U::Sigmoid, false),
        (U::Tanh, false),
        (U::Relu, false),
        (U::Abs, false),
        (U::LeakyRelu(0.2), false),
        (U::Powf(1.7), true),
        (U::AddScalar(0.75), false),
        (U::MulScalar(-1.5), false),
        (U::Clamp(-0.5, 0.8), false),
        (U::Step, false),
        (U::LeakyStep(0.1), false),
        (U::InRange(-0.3, 0.6), false),
        (U::Sign, false),
        (U::Square, false),
        (U::Recip, true),
    ];
    for &(op, positive) in ops {
        let x = if positive { &pos } else { &any };
        check(dev, op.name(), std::slice::from_ref(x), Tol { atol: 1e-5, rtol: 1e-5 }, |t| t[0].unary(op))?;
    }
    // Large enough for the grid-stride loop to wrap (more elements than threads in the capped grid).
    let big = randn(&[70_001], &mut rng);
    check(dev, "tanh 70001", &[big], TIGHT, |t| t[0].tanh())
}

pub fn binary(dev: &Device) -> Result<(), String> {
    use deephide::ops::BinaryOp as B;
    let mut rng = Rng::new(2);
    let shapes: &[(&[usize], &[usize])] = &[
        (&[5, 33], &[5, 33]),
        (&[4, 1, 7], &[3, 1]),
        (&[2, 3, 4, 5], &[1, 3, 1, 1]),
        (&[1], &[6, 5]),
        (&[2, 1, 3, 1, 2, 3], &[1, 4, 1, 5, 2, 1]),
    ];
    for op in [B::Add, B::Sub, B::Mul, B::Div, B::Maximum, B::Ge] {
        for (sa, sb) in shapes {
            let a = randn(sa, &mut rng);
            // Divisors away from zero; for Ge/Maximum some exact ties.
            let b = if op == B::Div { uniform(sb, 0.5, 2.0, &mut rng) } else { randn(sb, &mut rng) };
            check(dev, &format!("{} {sa:?} {sb:?}", op.name()), &[a, b], TIGHT, |t| t[0].binary(op, &t[1]))?;
        }
    }
    let a = randn(&[4, 4], &mut rng);
    check(dev, "maximum with ties", &[a.clone(), a], TIGHT, |t| t[0].maximum(&t[1]))
}

pub fn reduce(dev: &Device) -> Result<(), String> {
    let mut rng = Rng::new(3);
    let x = randn(&[3, 5, 7, 2], &mut rng);
    let axes: &[&[isize]] = &[&[0], &[1], &[2], &[3], &[0, 2], &[1, 3], &[0, 1, 2, 3], &[-1, 0]];
    for ax in axes {
        check(dev, &format!("sum {ax:?}"), std::slice::from_ref(&x), SUMS, |t| t[0].sum_axes(ax, false))?;
        check(dev, &format!("mean keepdim {ax:?}"), std::slice::from_ref(&x), SUMS, |t| t[0].mean_axes(ax, true))?;
    }
    // Many short reductions (one thread per output) and a few long ones (a block per output).
    check(dev, "sum of 3000 pairs", &[randn(&[3000, 2], &mut rng)], SUMS, |t| t[0].sum_axes(&[1], false))?;
    check(dev, "sum of 70 columns of 65", &[randn(&[65, 70], &mut rng)], SUMS, |t| t[0].sum_axes(&[0], false))?;
    let long = randn(&[5000, 3], &mut rng);
    check(dev, "sum over 5000 rows", &[long.clone()], SUMS, |t| t[0].sum_axes(&[0], false))?;
    check(dev, "sum_all of 15000", &[long], Tol { atol: 1e-3, rtol: 1e-4 }, |t| t[0].sum_all())?;
    check(dev, "sum_to", &[randn(&[4, 3, 5], &mut rng)], SUMS, |t| t[0].sum_to(&[3, 1]))?;
    for ax in [0isize, 1, 2] {
        let x = randn(&[4, 9, 3], &mut rng);
        check(dev, &format!("max axis {ax}"), std::slice::from_ref(&x), TIGHT, |t| t[0].max_axis(ax, false))?;
        let cpu = x.argmax(ax).map_err(|e| e.to_string())?;
        let on = x.to_device(dev).and_then(|t| t.argmax(ax)).map_err(|e| e.to_string())?;
        if cpu != on {
            return Err(format!("argmax axis {ax}: {on:?} vs cpu {cpu:?}"));
        }
    }
    // Ties: the first maximum wins, as on the CPU.
    let tied = Tensor::from_vec(vec![1.0f32, 3.0, 3.0, 0.0, 2.0, 2.0], &[2, 3]).unwrap();
    check(dev, "max with ties", &[tied], TIGHT, |t| t[0].max_axis(1, true))
}

pub fn layout(dev: &Device) -> Result<(), String> {
    let mut rng = Rng::new(4);
    let x = randn(&[2, 3, 5, 7], &mut rng);
    for perm in [[0, 1, 3, 2], [3, 2, 1, 0], [1, 0, 2, 3], [0, 2, 3, 1]] {
        check(dev, &format!("permute {perm:?}"), std::slice::from_ref(&x), TIGHT, |t| t[0].permute(&perm))?;
    }
    // Transposes larger than one 32x32 tile, with ragged edges.
    check(dev, "transpose 45x70", &[randn(&[3, 45, 70], &mut rng)], TIGHT, |t| t[0].transpose(-1, -2))?;
    check(dev, "broadcast_to", &[randn(&[3, 1, 5], &mut rng)], TIGHT, |t| t[0].broadcast_to(&[2, 3, 4, 5]))?;
    check(dev, "reshape", &[randn(&[6, 5], &mut rng)], TIGHT, |t| t[0].reshape(&[3, 10])?.mul_scalar(2.0))
}

pub fn concat_narrow(dev: &Device) -> Result<(), String> {
    let mut rng = Rng::new(5);
    for ax in 0..3isize {
        let mut shapes = [[2usize, 3, 4]; 3];
        shapes[1][ax as usize] = 5;
        shapes[2][ax as usize] = 1;
        let ins: Vec<Tensor> = shapes.iter().map(|s| randn(s, &mut rng)).collect();
        check(dev, &format!("concat axis {ax}"), &ins, TIGHT, |t| Tensor::concat(&[&t[0], &t[1], &t[2]], ax))?;
    }
    let x = randn(&[4, 9, 5], &mut rng);
    check(dev, "narrow", std::slice::from_ref(&x), TIGHT, |t| t[0].narrow(1, 2, 5))?;
    check(dev, "narrow axis 0", std::slice::from_ref(&x), TIGHT, |t| t[0].narrow(0, 1, 2))?;
    check(dev, "split", std::slice::from_ref(&x), TIGHT, |t| {
        let p = t[0].split(2, &[2, 3])?;
        p[1].mul_scalar(3.0)?.sum_axes(&[2], true)?.add(&p[0].narrow(2, 0, 1)?)
    })
}

pub fn index_select(dev: &Device) -> Result<(), String> {
    let mut rng = Rng::new(6);
    let x = randn(&[7, 3, 5], &mut rng);
    check(dev, "index_select with repeats", &[x], TIGHT, |t| t[0].index_select(&[6, 0, 3, 3, 1, 6, 6]))
}

pub fn matmul(dev: &Device) -> Result<(), String> {
    let mut rng = Rng::new(7);
    let cases: &[(&[usize], &[usize])] = &[
        (&[37, 19], &[19, 45]),
        (&[1, 1], &[1, 1]),
        (&[64, 64], &[64, 64]),
        (&[3, 5, 7], &[3, 7, 9]),
        (&[2, 3, 5, 7], &[7, 4]),
        (&[130, 70], &[70, 3]),
    ];
    for (sa, sb) in cases {
        let (a, b) = (randn(sa, &mut rng), randn(sb, &mut rng));
        check(dev, &format!("matmul {sa:?} x {sb:?}"), &[a, b], SUMS, |t| t[0].matmul(&t[1]))?;
    }
    Ok(())
}

/// (N, Cin, H, W, Cout, kh, kw, stride, padding)
type ConvCase = (usize, usize, usize, usize, usize, usize, usize, (usize, usize), (usize, usize));
pub const CONV_CASES: &[ConvCase] = &[
    (2, 3, 9, 11, 5, 3, 3, (1, 1), (1, 1)),
    (1, 4, 8, 8, 6, 3, 3, (2, 2), (1, 1)),
    (3, 2, 7, 6, 3, 1, 1, (1, 1), (0, 0)),
    (2, 5, 10, 9, 7, 5, 3, (1, 2), (2, 1)),
    (1, 1, 5, 5, 1, 5, 5, (1, 1), (0, 0)),
    (2, 17, 6, 7, 33, 3, 3, (1, 1), (1, 1)),
];

pub fn conv2d(dev: &Device) -> Result<(), String> {
    let mut rng = Rng::new(8);
    for &(n, cin, h, w, cout, kh, kw, s, p) in CONV_CASES {
        let x = randn(&[n, cin, h, w], &mut rng);
        let wt = randn(&[cout, cin, kh, kw], &mut rng).mul_scalar(0.3).unwrap();
        let b = randn(&[cout], &mut rng);
        let what = format!("conv2d x{:?} w{:?} stride {s:?} pad {p:?}", x.shape(), wt.shape());
        check(dev, &what, &[x.clone(), wt.clone(), b], SUMS, |t| t[0].conv2d(&t[1], Some(&t[2]), s, p))?;
        check(dev, &format!("{what} no bias"), &[x.clone(), wt.clone()], SUMS, |t| t[0].conv2d(&t[1], None, s, p))?;
        check(dev, &format!("{what} + leaky_relu"), &[x, wt], SUMS, |t| t[0].conv2d_leaky_relu(&t[1], None, s, p, 0.2))?;
    }
    // The dense-block form: a convolution of the concatenation of feature maps, bias and LeakyReLU fused.
    let parts = [randn(&[2, 3, 8, 7], &mut rng), randn(&[2, 5, 8, 7], &mut rng)];
    let wt = randn(&[4, 8, 3, 3], &mut rng).mul_scalar(0.3).unwrap();
    let b = randn(&[4], &mut rng);
    check(dev, "conv2d_concat + leaky_relu", &[parts[0].clone(), parts[1].clone(), wt, b], SUMS, |t| {
        Tensor::conv2d_concat(&[&t[0], &t[1]], &t[2], Some(&t[3]), (1, 1), (1, 1), Some(0.2))
    })
}

pub fn haar(dev: &Device) -> Result<(), String> {
    let mut rng = Rng::new(9);
    check(dev, "haar_dwt", &[randn(&[2, 3, 6, 10], &mut rng)], TIGHT, |t| t[0].haar_dwt())?;
    check(dev, "haar_iwt", &[randn(&[2, 8, 3, 5], &mut rng)], TIGHT, |t| t[0].haar_iwt())?;
    check(dev, "haar round trip", &[randn(&[1, 2, 4, 4], &mut rng)], TIGHT, |t| t[0].haar_dwt()?.haar_iwt())
}

pub fn pool(dev: &Device) -> Result<(), String> {
    let mut rng = Rng::new(10);
    let geoms = [((2, 2), (2, 2), (0, 0)), ((3, 3), (2, 2), (1, 1)), ((3, 2), (1, 2), (1, 0)), ((2, 3), (3, 1), (0, 1))];
    for (k, s, p) in geoms {
        let x = randn(&[2, 3, 9, 8], &mut rng);
        check(dev, &format!("avg_pool2d k{k:?} s{s:?} p{p:?}"), std::slice::from_ref(&x), TIGHT, |t| t[0].avg_pool2d(k, s, p))?;
        check(dev, &format!("max_pool2d k{k:?} s{s:?} p{p:?}"), std::slice::from_ref(&x), TIGHT, |t| t[0].max_pool2d(k, s, p))?;
    }
    check(dev, "global_avg_pool", &[randn(&[2, 5, 7, 3], &mut rng)], SUMS, |t| t[0].global_avg_pool())
}

pub fn batch_norm(dev: &Device) -> Result<(), String> {
    let mut rng = Rng::new(11);
    for shape in [vec![4usize, 3, 5, 7], vec![9, 6]] {
        let c = shape[1];
        let x = randn(&shape, &mut rng).mul_scalar(2.0).unwrap().add_scalar(0.5).unwrap();
        let w = uniform(&[c], 0.5, 1.5, &mut rng);
        let b = randn(&[c], &mut rng);
        for training in [true, false] {
            let what = format!("batch_norm {shape:?} training {training}");
            let rm = randn(&[c], &mut rng).mul_scalar(0.1).unwrap();
            let rv = uniform(&[c], 0.5, 1.5, &mut rng);
            let (rm_cpu, rv_cpu) = (rm.copy().unwrap(), rv.copy().unwrap());
            let (rm_dev, rv_dev) = (rm.to_device(dev).unwrap(), rv.to_device(dev).unwrap());
            check(dev, &what, &[x.clone(), w.clone(), b.clone()], SUMS, |t| {
                let (rm, rv) = if t[0].device().is_cpu() { (&rm_cpu, &rv_cpu) } else { (&rm_dev, &rv_dev) };
                F::batch_norm(&t[0], rm, rv, Some(&t[1]), Some(&t[2]), training, 0.1, 1e-5)
            })?;
            close(&format!("{what} running mean"), &rm_cpu.to_vec_f32().unwrap(), &rm_dev.to_vec_f32().unwrap(), SUMS)?;
            close(&format!("{what} running var"), &rv_cpu.to_vec_f32().unwrap(), &rv_dev.to_vec_f32().unwrap(), SUMS)?;
        }
    }
    Ok(())
}

pub fn losses(dev: &Device) -> Result<(), String> {
    let mut rng = Rng::new(12);
    let logits = randn(&[7, 10], &mut rng).mul_scalar(3.0).unwrap();
    check(dev, "log_softmax", std::slice::from_ref(&logits), SUMS, |t| F::log_softmax(&t[0], 1))?;
    check(dev, "log_softmax axis 0", std::slice::from_ref(&logits), SUMS, |t| F::log_softmax(&t[0], 0))?;
    let labels = [3usize, 0, 9, 9, 1, 5, 2];
    check(dev, "cross_entropy", std::slice::from_ref(&logits), SUMS, |t| F::cross_entropy(&t[0], &labels, 0.0))?;
    check(dev, "cross_entropy smoothed", &[logits], SUMS, |t| F::cross_entropy(&t[0], &labels, 0.1))?;
    let (a, b) = (randn(&[5, 16], &mut rng), randn(&[5, 16], &mut rng));
    check(dev, "cosine_similarity", &[a.clone(), b.clone()], SUMS, |t| F::cosine_similarity(&t[0], &t[1], 1, 1e-8))?;
    check(dev, "mse", &[a, b], SUMS, |t| F::mse(&t[0], &t[1], F::Reduction::Mean))
}

/// A few optimizer steps on the same parameters and gradients on both devices.
pub fn optim(dev: &Device) -> Result<(), String> {
    type Make = fn(Vec<Tensor>) -> Box<dyn Optimizer>;
    let makers: &[(&str, Make)] = &[
        ("sgd", |p| Box::new(Sgd::new(p, 0.1))),
        ("sgd momentum+wd", |p| Box::new(Sgd::new(p, 0.05).momentum(0.9).weight_decay(1e-2))),
        ("sgd nesterov", |p| Box::new(Sgd::new(p, 0.05).momentum(0.9).nesterov(true))),
        ("adam", |p| Box::new(Adam::new(p, 1e-2))),
        ("adam wd", |p| Box::new(Adam::new(p, 1e-2).weight_decay(1e-2))),
        ("adamw", |p| Box::new(AdamW::new(p, 1e-2))),
    ];
    let mut rng = Rng::new(13);
    let init = randn(&[37, 5], &mut rng);
    let target = randn(&[37, 5], &mut rng);
    for (name, make) in makers {
        let mut results = Vec::new();
        for d in [Device::Cpu, dev.clone()] {
            // A copy: on the CPU `to_device` shares storage, and the optimizer updates parameters in place.
            let p = init.copy().unwrap().to_device(&d).unwrap().detach().requires_grad_(true);
            let tgt = target.to_device(&d).unwrap();
            let mut opt = make(vec![p.clone()]);
            for _ in 0..4 {
                opt.zero_grad();
                let loss = p.sub(&tgt).and_then(|t| t.square()).and_then(|t| t.sum_all()).map_err(|e| e.to_string())?;
                loss.backward().map_err(|e| e.to_string())?;
                opt.step().map_err(|e| format!("{name} on {}: {e}", d.name()))?;
            }
            if p.device() != d {
                return Err(format!("{name}: the parameter moved to {}", p.device().name()));
            }
            results.push(p.to_vec_f32().unwrap());
        }
        close(&format!("{name} after 4 steps"), &results[0], &results[1], SUMS)?;
    }
    Ok(())
}

/// Every case, in the order a failure is easiest to read (primitives first).
pub const CASES: &[(&str, fn(&Device) -> Result<(), String>)] = &[
    ("unary", unary),
    ("binary", binary),
    ("reduce", reduce),
    ("layout", layout),
    ("concat_narrow", concat_narrow),
    ("index_select", index_select),
    ("matmul", matmul),
    ("conv2d", conv2d),
    ("haar", haar),
    ("pool", pool),
    ("batch_norm", batch_norm),
    ("losses", losses),
    ("optim", optim),
];
