//! Gradient checks: every op's analytic gradient against central finite differences in f64.
//!
//! A case is an op applied to small random inputs. The scalar checked is `sum(op(inputs) * r)` for a fixed
//! random `r`, so every output element contributes with its own weight. Inputs are drawn away from kinks
//! (relu at 0, clamp bounds, ties of max) where a finite difference is not a derivative.
//!
//! On a GPU device the analytic gradient is computed there in f32 and compared with the f64 numeric
//! gradient computed on the CPU, with the looser f32 tolerance [`F32_TOL`].

use crate::autograd::no_grad;
use crate::device::Device;
use crate::dtype::DType;
use crate::hiding::{HidingConfig, InvertibleHiding};
use crate::nn::functional as F;
use crate::rng::Rng;
use crate::shape::fmt_shape;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// |numeric - analytic| <= atol + rtol * |numeric|
#[derive(Clone, Copy, Debug)]
pub struct Tolerance {
    pub atol: f64,
    pub rtol: f64,
}

/// Analytic f64 on the CPU against f64 central differences.
pub const F64_TOL: Tolerance = Tolerance { atol: 1e-7, rtol: 1e-5 };
/// Analytic f32 on a device against f64 central differences on the CPU.
pub const F32_TOL: Tolerance = Tolerance { atol: 2e-3, rtol: 2e-2 };

const EPS: f64 = 1e-6;

type OpFn = Box<dyn Fn(&[Tensor]) -> Result<Tensor>>;

pub struct GradCase {
    pub op: &'static str,
    pub desc: String,
    /// f64 CPU inputs.
    pub inputs: Vec<Tensor>,
    pub f: OpFn,
}

#[derive(Clone, Debug)]
pub struct GradResult {
    pub op: &'static str,
    pub desc: String,
    pub checked: usize,
    pub max_abs: f64,
    pub max_rel: f64,
    pub ok: bool,
    /// Why the case could not run (e.g. an op with no kernel on the device).
    pub error: Option<String>,
}

/// Values of standard normals pushed at least `gap` away from each point in `avoid`.
fn away_from(shape: &[usize], avoid: &[f64], gap: f64, rng: &mut Rng) -> Tensor {
    let v: Vec<f64> = (0..shape.iter().product::<usize>())
        .map(|_| loop {
            let x = rng.normal();
            if avoid.iter().all(|a| (x - a).abs() > gap) {
                break x;
            }
        })
        .collect();
    Tensor::from_vec(v, shape).expect("length matches shape")
}

fn randn(shape: &[usize], rng: &mut Rng) -> Tensor {
    Tensor::randn(shape, 1.0, DType::F64, rng)
}

fn positive(shape: &[usize], rng: &mut Rng) -> Tensor {
    Tensor::rand_uniform(shape, 0.5, 2.0, DType::F64, rng)
}

/// Distinct values (a shuffled ramp plus jitter), so max and max-pool have no ties.
fn distinct(shape: &[usize], rng: &mut Rng) -> Tensor {
    let n: usize = shape.iter().product();
    let mut v: Vec<f64> = (0..n).map(|i| i as f64 * 0.1 + rng.uniform() * 0.01).collect();
    rng.shuffle(&mut v);
    Tensor::from_vec(v, shape).expect("length matches shape")
}

fn case(op: &'static str, desc: impl Into<String>, inputs: Vec<Tensor>, f: impl Fn(&[Tensor]) -> Result<Tensor> + 'static) -> GradCase {
    GradCase { op, desc: desc.into(), inputs, f: Box::new(f) }
}

fn shapes_desc(ts: &[Tensor]) -> String {
    ts.iter().map(|t| fmt_shape(t.shape())).collect::<Vec<_>>().join(" ")
}

/// Every registered case. Each op has several shapes (odd sizes, batch 1, broadcasting, ...).
pub fn all_cases(seed: u64) -> Vec<GradCase> {
    let mut rng = Rng::new(seed);
    let r = &mut rng;
    let mut cs: Vec<GradCase> = Vec::new();

    // Broadcasting binary ops.
    for (sa, sb) in [(vec![2, 3, 5], vec![2, 3, 5]), (vec![2, 3, 4, 5], vec![1, 3, 1, 1]), (vec![3, 1], vec![1, 4]), (vec![5], vec![])] {
        let (a, b) = (randn(&sa, r), randn(&sb, r));
        let d = shapes_desc(&[a.clone(), b.clone()]);
        cs.push(case("add", d.clone(), vec![a.clone(), b.clone()], |x| x[0].add(&x[1])));
        cs.push(case("sub", d.clone(), vec![a.clone(), b.clone()], |x| x[0].sub(&x[1])));
        cs.push(case("mul", d.clone(), vec![a.clone(), b.clone()], |x| x[0].mul(&x[1])));
        cs.push(case("div", d.clone(), vec![a.clone(), positive(&sb, r)], |x| x[0].div(&x[1])));
        cs.push(case("maximum", d, vec![distinct(&sa, r), distinct(&sb, r).mul_scalar(1.37).unwrap()], |x| x[0].maximum(&x[1])));
    }

    // Unary ops.
    let s = [3, 7];
    let d = fmt_shape(&s);
    cs.push(case("neg", d.clone(), vec![randn(&s, r)], |x| x[0].neg()));
    cs.push(case("exp", d.clone(), vec![randn(&s, r)], |x| x[0].exp()));
    cs.push(case("log", d.clone(), vec![positive(&s, r)], |x| x[0].log()));
    cs.push(case("sqrt", d.clone(), vec![positive(&s, r)], |x| x[0].sqrt()));
    cs.push(case("pow", format!("{d} ^2.5"), vec![positive(&s, r)], |x| x[0].powf(2.5)));
    cs.push(case("pow", format!("{d} ^-1.5"), vec![positive(&s, r)], |x| x[0].powf(-1.5)));
    cs.push(case("sigmoid", d.clone(), vec![randn(&s, r).mul_scalar(3.0).unwrap()], |x| x[0].sigmoid()));
    cs.push(case("tanh", d.clone(), vec![randn(&s, r)], |x| x[0].tanh()));
    cs.push(case("relu", d.clone(), vec![away_from(&s, &[0.0], 1e-3, r)], |x| x[0].relu()));
    cs.push(case("leaky_relu", format!("{d} slope 0.01"), vec![away_from(&s, &[0.0], 1e-3, r)], |x| x[0].leaky_relu(0.01)));
    cs.push(case("clamp", format!("{d} [-0.5, 0.7]"), vec![away_from(&s, &[-0.5, 0.7], 1e-3, r)], |x| x[0].clamp(-0.5, 0.7)));
    cs.push(case("abs", d.clone(), vec![away_from(&s, &[0.0], 1e-3, r)], |x| x[0].abs()));
    cs.push(case("add_scalar", d.clone(), vec![randn(&s, r)], |x| x[0].add_scalar(1.5)));
    cs.push(case("mul_scalar", d.clone(), vec![randn(&s, r)], |x| x[0].mul_scalar(-2.5)));
    cs.push(case("square", d.clone(), vec![randn(&s, r)], |x| x[0].square()));
    cs.push(case("recip", d, vec![positive(&s, r)], |x| x[0].recip()));

    // Reductions.
    let s = [2, 3, 4, 5];
    let d = fmt_shape(&s);
    cs.push(case("sum", format!("{d} all"), vec![randn(&s, r)], |x| x[0].sum_all()));
    cs.push(case("sum", format!("{d} axes (0,2,3)"), vec![randn(&s, r)], |x| x[0].sum_axes(&[0, 2, 3], false)));
    cs.push(case("sum", format!("{d} axis -1 keepdim"), vec![randn(&s, r)], |x| x[0].sum_axes(&[-1], true)));
    cs.push(case("sum", format!("{d} axes (1,2)"), vec![randn(&s, r)], |x| x[0].sum_axes(&[1, 2], false)));
    cs.push(case("sum", format!("{d} axes (0,2) keepdim"), vec![randn(&s, r)], |x| x[0].sum_axes(&[0, 2], true)));
    cs.push(case("sum", "() scalar", vec![randn(&[], r)], |x| x[0].sum_all()));
    cs.push(case("mean", format!("{d} all"), vec![randn(&s, r)], |x| x[0].mean_all()));
    cs.push(case("mean", format!("{d} axes (0,3)"), vec![randn(&s, r)], |x| x[0].mean_axes(&[0, 3], true)));
    cs.push(case("max", format!("{d} axis 1"), vec![distinct(&s, r)], |x| x[0].max_axis(1, false)));
    cs.push(case("max", format!("{d} axis -1 keepdim"), vec![distinct(&s, r)], |x| x[0].max_axis(-1, true)));

    // Layout.
    cs.push(case("reshape", "(2, 3, 4) -> (4, 6)", vec![randn(&[2, 3, 4], r)], |x| x[0].reshape(&[4, 6])));
    cs.push(case("permute", "(2, 3, 4, 5) (0,2,3,1)", vec![randn(&s, r)], |x| x[0].permute(&[0, 2, 3, 1])));
    cs.push(case("transpose", "(3, 5) (0,1)", vec![randn(&[3, 5], r)], |x| x[0].transpose(0, 1)));
    cs.push(case("broadcast_to", "(3, 1) -> (2, 3, 4)", vec![randn(&[3, 1], r)], |x| x[0].broadcast_to(&[2, 3, 4])));
    cs.push(case("concat", "(2,3,4)+(2,1,4)+(2,5,4) axis 1", vec![randn(&[2, 3, 4], r), randn(&[2, 1, 4], r), randn(&[2, 5, 4], r)], |x| {
        Tensor::concat(&[&x[0], &x[1], &x[2]], 1)
    }));
    cs.push(case("concat", "(1,3)+(2,3) axis 0", vec![randn(&[1, 3], r), randn(&[2, 3], r)], |x| Tensor::concat(&[&x[0], &x[1]], 0)));
    cs.push(case("narrow", "(2, 7, 3) axis 1 [2..5)", vec![randn(&[2, 7, 3], r)], |x| x[0].narrow(1, 2, 3)));
    cs.push(case("split", "(2, 7, 3) axis 1 [3, 4] (weighted sum of both)", vec![randn(&[2, 7, 3], r)], |x| {
        let p = x[0].split(1, &[3, 4])?;
        p[0].sum_axes(&[1], false)?.sub(&p[1].sum_axes(&[1], false)?.mul_scalar(0.5)?)
    }));
    cs.push(case("index_select", "(5, 2, 3) rows [4, 0, 4, 2]", vec![randn(&[5, 2, 3], r)], |x| x[0].index_select(&[4, 0, 4, 2])));

    // Matmul.
    cs.push(case("matmul", "(3, 4) x (4, 5)", vec![randn(&[3, 4], r), randn(&[4, 5], r)], |x| x[0].matmul(&x[1])));
    cs.push(case("matmul", "(2, 3, 4) x (2, 4, 5)", vec![randn(&[2, 3, 4], r), randn(&[2, 4, 5], r)], |x| x[0].matmul(&x[1])));
    cs.push(case("matmul", "(2, 3, 4) x (4, 1) shared", vec![randn(&[2, 3, 4], r), randn(&[4, 1], r)], |x| x[0].matmul(&x[1])));

    // Haar.
    cs.push(case("haar_dwt", "(2, 3, 4, 6)", vec![randn(&[2, 3, 4, 6], r)], |x| x[0].haar_dwt()));
    cs.push(case("haar_dwt", "(1, 1, 2, 2)", vec![randn(&[1, 1, 2, 2], r)], |x| x[0].haar_dwt()));
    cs.push(case("haar_iwt", "(2, 8, 3, 2)", vec![randn(&[2, 8, 3, 2], r)], |x| x[0].haar_iwt()));

    // Composites.
    cs.push(case("log_softmax", "(4, 7) axis 1", vec![randn(&[4, 7], r)], |x| F::log_softmax(&x[0], 1)));
    cs.push(case("log_softmax", "(2, 3, 5) axis 0", vec![randn(&[2, 3, 5], r)], |x| F::log_softmax(&x[0], 0)));
    cs.push(case("cross_entropy", "(5, 4) labels", vec![randn(&[5, 4], r)], |x| F::cross_entropy(&x[0], &[0, 3, 1, 1, 2], 0.0)));
    cs.push(case("cross_entropy", "(5, 4) smoothing 0.1", vec![randn(&[5, 4], r)], |x| F::cross_entropy(&x[0], &[0, 3, 1, 1, 2], 0.1)));
    cs.push(case("cross_entropy", "(1, 10) batch 1", vec![randn(&[1, 10], r)], |x| F::cross_entropy(&x[0], &[7], 0.0)));
    cs.push(case("mse", "(2, 3, 4) sum", vec![randn(&[2, 3, 4], r), randn(&[2, 3, 4], r)], |x| F::mse(&x[0], &x[1], F::Reduction::Sum)));
    cs.push(case("mse", "(2, 3, 4) mean", vec![randn(&[2, 3, 4], r), randn(&[2, 3, 4], r)], |x| F::mse(&x[0], &x[1], F::Reduction::Mean)));
    cs.push(case("cosine_similarity", "(4, 6) axis 1", vec![randn(&[4, 6], r), randn(&[4, 6], r)], |x| F::cosine_similarity(&x[0], &x[1], 1, 1e-8)));
    cs.push(case("cosine_similarity", "(3, 5, 2) axis 1", vec![randn(&[3, 5, 2], r), randn(&[3, 5, 2], r)], |x| F::cosine_similarity(&x[0], &x[1], 1, 1e-8)));
    cs.push(case("batch_norm", "(4, 3, 3, 5) train", vec![randn(&[4, 3, 3, 5], r), positive(&[3], r), randn(&[3], r)], |x| {
        let (rm, rv) = (stat_like(&x[0], 3, 0.0)?, stat_like(&x[0], 3, 1.0)?);
        F::batch_norm(&x[0], &rm, &rv, Some(&x[1]), Some(&x[2]), true, 0.1, 1e-5)
    }));
    cs.push(case("batch_norm", "(1, 2, 3, 3) train batch 1", vec![randn(&[1, 2, 3, 3], r)], |x| {
        let (rm, rv) = (stat_like(&x[0], 2, 0.0)?, stat_like(&x[0], 2, 1.0)?);
        F::batch_norm(&x[0], &rm, &rv, None, None, true, 0.1, 1e-5)
    }));
    let (rm, rv) = (randn(&[3], r), positive(&[3], r));
    cs.push(case("batch_norm", "(2, 3, 2, 2) eval", vec![randn(&[2, 3, 2, 2], r), positive(&[3], r), randn(&[3], r)], move |x| {
        let (rm, rv) = (on_device_of(&rm, &x[0])?, on_device_of(&rv, &x[0])?);
        F::batch_norm(&x[0], &rm, &rv, Some(&x[1]), Some(&x[2]), false, 0.1, 1e-5)
    }));
    cs.push(case("batch_norm", "(6, 4) train", vec![randn(&[6, 4], r), positive(&[4], r), randn(&[4], r)], |x| {
        let (rm, rv) = (stat_like(&x[0], 4, 0.0)?, stat_like(&x[0], 4, 1.0)?);
        F::batch_norm(&x[0], &rm, &rv, Some(&x[1]), Some(&x[2]), true, 0.1, 1e-5)
    }));
    cs.push(case("dropout", "(4, 6) p 0.3", vec![randn(&[4, 6], r)], |x| F::dropout(&x[0], 0.3, true, &mut Rng::new(7))));

    extra_cases(&mut cs, r);
    cs
}

/// Convolution and pooling: every stride/padding/kernel-shape combination the network and victims use,
/// plus odd sizes, non-square kernels and batch 1.
fn extra_cases(cs: &mut Vec<GradCase>, r: &mut Rng) {
    let convs: [(&[usize], &[usize], (usize, usize), (usize, usize), bool); 7] = [
        (&[2, 3, 5, 5], &[4, 3, 3, 3], (1, 1), (1, 1), true),
        (&[1, 2, 7, 6], &[3, 2, 3, 3], (2, 2), (1, 1), true),
        (&[2, 2, 5, 7], &[2, 2, 3, 2], (1, 2), (0, 1), false),
        (&[1, 3, 4, 4], &[5, 3, 1, 1], (1, 1), (0, 0), true),
        (&[3, 1, 6, 5], &[2, 1, 2, 3], (2, 1), (1, 0), true),
        (&[1, 4, 3, 3], &[2, 4, 3, 3], (1, 1), (0, 0), false),
        (&[2, 2, 8, 8], &[3, 2, 3, 3], (2, 2), (0, 0), true),
    ];
    for (xs, ws, stride, pad, bias) in convs {
        let desc = format!("x{} w{} s{:?} p{:?}{}", fmt_shape(xs), fmt_shape(ws), stride, pad, if bias { " +bias" } else { "" });
        let mut inputs = vec![randn(xs, r), randn(ws, r)];
        if bias {
            inputs.push(randn(&[ws[0]], r));
        }
        cs.push(case("conv2d", desc, inputs, move |x| x[0].conv2d(&x[1], x.get(2), stride, pad)));
    }
    // The fused dense-block convolution: parts read in place, LeakyReLU epilogue, and its weight gradient
    // over parts (differentiated through conv2d_concat's backward). Non-zero slope so both sides of the
    // activation carry gradient.
    cs.push(case(
        "conv2d_concat",
        "parts (2,3,5,6)+(2,2,5,6) w(4,5,3,3) +bias leaky 0.2",
        vec![randn(&[2, 3, 5, 6], r), randn(&[2, 2, 5, 6], r), randn(&[4, 5, 3, 3], r), randn(&[4], r)],
        |x| Tensor::conv2d_concat(&[&x[0], &x[1]], &x[2], Some(&x[3]), (1, 1), (1, 1), Some(0.2)),
    ));
    cs.push(case(
        "conv2d_concat",
        "parts (1,1,4,4)+(1,2,4,4)+(1,1,4,4) w(3,4,3,3) no bias, linear",
        vec![randn(&[1, 1, 4, 4], r), randn(&[1, 2, 4, 4], r), randn(&[1, 1, 4, 4], r), randn(&[3, 4, 3, 3], r)],
        |x| Tensor::conv2d_concat(&[&x[0], &x[1], &x[2]], &x[3], None, (1, 1), (1, 1), None),
    ));
    cs.push(case(
        "conv2d_leaky_relu",
        "x(2,3,6,5) w(4,3,3,3) +bias s(2,2) slope 0.1 (composed path)",
        vec![randn(&[2, 3, 6, 5], r), randn(&[4, 3, 3, 3], r), randn(&[4], r)],
        |x| x[0].conv2d_leaky_relu(&x[1], Some(&x[2]), (2, 2), (1, 1), 0.1),
    ));
    cs.push(case(
        "conv2d_weight_grad_concat",
        "parts (2,2,5,5)+(2,1,5,5) dy(2,3,5,5)",
        vec![randn(&[2, 2, 5, 5], r), randn(&[2, 1, 5, 5], r), randn(&[2, 3, 5, 5], r)],
        |x| Tensor::conv2d_weight_grad_concat(&[&x[0], &x[1]], &x[2], (3, 3), (1, 1), (1, 1)),
    ));
    for (xs, k, s, p) in [([2, 3, 6, 6], (2, 2), (2, 2), (0, 0)), ([1, 2, 5, 7], (3, 3), (2, 2), (1, 1)), ([2, 1, 5, 4], (3, 2), (1, 1), (1, 0))] {
        let desc = format!("{} k{:?} s{:?} p{:?}", fmt_shape(&xs), k, s, p);
        cs.push(case("avg_pool2d", desc.clone(), vec![randn(&xs, r)], move |x| x[0].avg_pool2d(k, s, p)));
        cs.push(case("max_pool2d", desc, vec![distinct(&xs, r)], move |x| x[0].max_pool2d(k, s, p)));
    }
    cs.push(case("global_avg_pool", "(2, 3, 4, 5)", vec![randn(&[2, 3, 4, 5], r)], |x| x[0].global_avg_pool()));
    cs.push(case("global_avg_pool", "(1, 2, 1, 3)", vec![randn(&[1, 2, 1, 3], r)], |x| x[0].global_avg_pool()));

    // The hiding network's building blocks, with random (non-identity) weights.
    let cfg = HidingConfig { channels: 1, blocks: 2, growth: 3, clamp: 2.0, slope: 0.01 };
    let net = InvertibleHiding::new_with_dtype(cfg, r.next_u64(), DType::F64).expect("valid config");
    for p in net.parameters() {
        p.assign(&Tensor::randn(p.shape(), 0.1, DType::F64, r)).expect("same shape");
    }
    let (n1, n2) = (net.clone(), net.clone());
    cs.push(case("affine_coupling", "forward (2, 4, 3, 3) x2", vec![randn(&[2, 4, 3, 3], r), randn(&[2, 4, 3, 3], r)], move |x| {
        let (a, b) = net_like(&n1, &x[0])?.blocks[0].forward(&x[0], &x[1])?;
        Tensor::concat(&[&a, &b], 1)
    }));
    cs.push(case("affine_coupling", "reverse (1, 4, 2, 3) x2", vec![randn(&[1, 4, 2, 3], r), randn(&[1, 4, 2, 3], r)], move |x| {
        let (a, b) = net_like(&n2, &x[0])?.blocks[0].reverse(&x[0], &x[1])?;
        Tensor::concat(&[&a, &b], 1)
    }));
    let net2 = net.clone();
    cs.push(case("invertible_hiding", "hide 2 blocks (2, 1, 4, 4) x2", vec![randn(&[2, 1, 4, 4], r), randn(&[2, 1, 4, 4], r)], move |x| {
        let h = net_like(&net, &x[0])?.hide(&x[0], &x[1])?;
        Tensor::concat(&[&h.stego.reshape(&[2, 16])?, &h.lost.reshape(&[2, 16])?], 1)
    }));
    cs.push(case("invertible_hiding", "reveal 2 blocks (1, 1, 4, 4) + z", vec![randn(&[1, 1, 4, 4], r), randn(&[1, 4, 2, 2], r)], move |x| {
        let (c, s) = net_like(&net2, &x[0])?.reveal(&x[0], &x[1])?;
        Tensor::concat(&[&c, &s], 1)
    }));
}

/// Running statistics of `c` channels filled with `v`, on `x`'s device and dtype (the analytic run of a
/// GPU check has f32 device inputs; the numeric run f64 CPU ones).
fn stat_like(x: &Tensor, c: usize, v: f64) -> Result<Tensor> {
    Tensor::full(&[c], v, x.dtype()).to_device(&x.device())
}

/// `t` converted to `x`'s dtype and moved to its device.
fn on_device_of(t: &Tensor, x: &Tensor) -> Result<Tensor> {
    t.to_dtype(x.dtype())?.to_device(&x.device())
}

/// The network with its weights in `x`'s dtype on `x`'s device: the cases hold f64 CPU weights, which
/// serve the numeric run as they are; the analytic run on a GPU gets an f32 copy there.
fn net_like(net: &InvertibleHiding, x: &Tensor) -> Result<InvertibleHiding> {
    if x.device().is_cpu() && x.dtype() == DType::F64 {
        return Ok(net.clone());
    }
    let copy = InvertibleHiding::new_with_dtype(net.cfg.clone(), 0, x.dtype())?;
    for (dst, src) in copy.parameters().iter().zip(net.parameters()) {
        dst.assign(&src.to_dtype(x.dtype())?.detach())?;
    }
    copy.to_device(&x.device())?;
    Ok(copy)
}

/// The scalar whose gradient is checked: sum(f(inputs) * proj).
fn project(case: &GradCase, inputs: &[Tensor], proj: &Tensor) -> Result<Tensor> {
    let y = (case.f)(inputs)?;
    let p = proj.to_dtype(y.dtype())?.to_device(&y.device())?;
    y.mul(&p)?.sum_all()
}

/// Run one case: analytic gradient on `device` (f64 on the CPU, f32 elsewhere), numeric in f64 on the CPU.
pub fn check(case: &GradCase, device: &Device, seed: u64) -> Result<GradResult> {
    let mut rng = Rng::new(seed ^ 0x5EED);
    let out_shape = no_grad(|| (case.f)(&case.inputs))?.shape().to_vec();
    let proj = Tensor::randn(&out_shape, 1.0, DType::F64, &mut rng);

    // Analytic.
    let (dev_inputs, tol) = if device.is_cpu() {
        (case.inputs.iter().map(|t| t.copy().map(|c| c.requires_grad_(true))).collect::<Result<Vec<_>>>()?, F64_TOL)
    } else {
        let v = case
            .inputs
            .iter()
            .map(|t| Ok(t.to_dtype(DType::F32)?.to_device(device)?.detach().requires_grad_(true)))
            .collect::<Result<Vec<_>>>()?;
        (v, F32_TOL)
    };
    project(case, &dev_inputs, &proj)?.backward()?;

    let (mut max_abs, mut max_rel, mut ok, mut checked) = (0.0f64, 0.0f64, true, 0);
    for (i, inp) in case.inputs.iter().enumerate() {
        let analytic = match dev_inputs[i].grad() {
            Some(g) => g.to_vec_f64()?,
            None => vec![0.0; inp.numel()],
        };
        let base = inp.to_vec::<f64>()?;
        for k in 0..base.len() {
            let eval = |delta: f64| -> Result<f64> {
                let mut v = base.clone();
                v[k] += delta;
                let mut ins = case.inputs.clone();
                ins[i] = Tensor::from_vec(v, inp.shape())?;
                no_grad(|| project(case, &ins, &proj))?.item()
            };
            let numeric = (eval(EPS)? - eval(-EPS)?) / (2.0 * EPS);
            let err = (numeric - analytic[k]).abs();
            max_abs = max_abs.max(err);
            max_rel = max_rel.max(err / numeric.abs().max(1e-12));
            if !(err <= tol.atol + tol.rtol * numeric.abs()) {
                ok = false;
            }
            checked += 1;
        }
    }
    Ok(GradResult { op: case.op, desc: case.desc.clone(), checked, max_abs, max_rel, ok, error: None })
}

/// Names of the ops that have cases, in registration order, without repeats.
pub fn op_names(cases: &[GradCase]) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for c in cases {
        if !names.contains(&c.op) {
            names.push(c.op);
        }
    }
    names
}

/// Run every case (or those of one op) and return the results; an unknown op name is an error that lists
/// the known ones.
pub fn run(op: Option<&str>, device: &Device, seed: u64) -> Result<Vec<GradResult>> {
    let cases = all_cases(seed);
    let selected: Vec<&GradCase> = cases.iter().filter(|c| op.is_none_or(|o| c.op == o)).collect();
    if selected.is_empty() {
        return Err(Error::msg(format!(
            "gradcheck: no op named `{}`; known ops: {}",
            op.unwrap_or(""),
            op_names(&cases).join(", ")
        )));
    }
    // A case that cannot run is a failed row with its reason, not an abort of the whole table.
    Ok(selected
        .iter()
        .map(|c| {
            check(c, device, seed).unwrap_or_else(|e| GradResult {
                op: c.op,
                desc: c.desc.clone(),
                checked: 0,
                max_abs: f64::NAN,
                max_rel: f64::NAN,
                ok: false,
                error: Some(e.to_string()),
            })
        })
        .collect())
}

/// The result table as text.
pub fn format_table(results: &[GradResult], tol: Tolerance) -> String {
    let mut s = format!(
        "{:<18} {:<44} {:>7} {:>12} {:>12}  ok   (|num - ana| <= {:e} + {:e} * |num|)\n",
        "op", "shapes", "checked", "max abs err", "max rel err", tol.atol, tol.rtol
    );
    for r in results {
        match &r.error {
            None => s.push_str(&format!(
                "{:<18} {:<44} {:>7} {:>12.3e} {:>12.3e}  {}\n",
                r.op, r.desc, r.checked, r.max_abs, r.max_rel, if r.ok { "yes" } else { "NO" }
            )),
            Some(e) => s.push_str(&format!("{:<18} {:<44} NO: {e}\n", r.op, r.desc)),
        }
    }
    s
}
