//! conv2d, its gradient primitives, and pooling: forward against direct loops, adjoint identities, and
//! finite-difference gradient checks, all in f64; plus error cases.

use approx::{assert_abs_diff_eq, assert_relative_eq};
use deephide::{DType, Rng, Tensor};

type Res<T> = deephide::Result<T>;

// ------------------------------------------------------------------------------------------------ helpers

#[derive(Clone, Copy, Debug)]
struct Cfg {
    n: usize,
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    kh: usize,
    kw: usize,
    stride: (usize, usize),
    pad: (usize, usize),
    bias: bool,
}

impl Cfg {
    const fn new(
        (n, cin, h, w): (usize, usize, usize, usize),
        (cout, kh, kw): (usize, usize, usize),
        stride: (usize, usize),
        pad: (usize, usize),
        bias: bool,
    ) -> Cfg {
        Cfg { n, cin, h, w, cout, kh, kw, stride, pad, bias }
    }
    fn x_shape(&self) -> Vec<usize> {
        vec![self.n, self.cin, self.h, self.w]
    }
    fn w_shape(&self) -> Vec<usize> {
        vec![self.cout, self.cin, self.kh, self.kw]
    }
    fn out_hw(&self) -> (usize, usize) {
        ((self.h + 2 * self.pad.0 - self.kh) / self.stride.0 + 1, (self.w + 2 * self.pad.1 - self.kw) / self.stride.1 + 1)
    }
    fn y_shape(&self) -> Vec<usize> {
        let (ho, wo) = self.out_hw();
        vec![self.n, self.cout, ho, wo]
    }
}

/// Small configurations (also used for finite differences): odd sizes, batch 1, stride 2, padding 0 and 1,
/// non-square kernels and strides, 1x1 kernels, kernel = whole input, with and without bias.
const CFGS: &[Cfg] = &[
    Cfg::new((2, 3, 7, 5), (4, 3, 3), (1, 1), (1, 1), true),
    Cfg::new((1, 2, 9, 7), (3, 3, 2), (2, 2), (0, 0), false),
    Cfg::new((3, 4, 5, 6), (5, 1, 1), (1, 1), (0, 0), true),
    Cfg::new((2, 3, 8, 9), (2, 3, 2), (2, 1), (1, 0), true),
    Cfg::new((1, 1, 5, 5), (2, 5, 5), (1, 1), (0, 0), false),
    Cfg::new((2, 2, 6, 7), (3, 4, 3), (3, 2), (1, 1), true),
    Cfg::new((1, 3, 7, 7), (2, 3, 3), (2, 2), (1, 1), true),
    Cfg::new((2, 2, 4, 5), (3, 1, 1), (2, 2), (1, 0), false),
    // Stride 1 with rows sharing their zero padding (pw < kw) and without (pw >= kw).
    Cfg::new((2, 3, 6, 5), (3, 2, 2), (1, 1), (1, 1), true),
    Cfg::new((1, 2, 5, 4), (2, 1, 1), (1, 1), (1, 1), false),
    Cfg::new((2, 2, 7, 6), (3, 5, 5), (1, 1), (2, 2), true),
    Cfg::new((1, 3, 5, 6), (2, 3, 3), (1, 1), (2, 1), true),
];

/// Larger configurations: several im2col tiles, one output row per tile (K*Wo above the tile budget),
/// batch above the thread count and above the weight-gradient group count.
const BIG: &[Cfg] = &[
    Cfg::new((2, 16, 40, 40), (8, 3, 3), (1, 1), (1, 1), true),
    Cfg::new((1, 64, 6, 256), (2, 3, 3), (1, 1), (1, 1), true),
    Cfg::new((11, 3, 12, 10), (4, 3, 3), (2, 1), (1, 1), false),
    Cfg::new((17, 2, 9, 9), (3, 2, 3), (1, 2), (0, 1), true),
];

fn numel(s: &[usize]) -> usize {
    s.iter().product()
}

fn randn(shape: &[usize], rng: &mut Rng) -> Tensor {
    Tensor::randn(shape, 1.0, DType::F64, rng)
}

fn vals(t: &Tensor) -> Vec<f64> {
    t.to_vec::<f64>().unwrap()
}

fn f64s(v: Vec<f64>, shape: &[usize]) -> Tensor {
    Tensor::from_vec(v, shape).unwrap()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Direct convolution, seven nested loops, in f64.
fn conv_ref(x: &[f64], w: &[f64], b: Option<&[f64]>, c: &Cfg) -> Vec<f64> {
    let (ho, wo) = c.out_hw();
    let mut out = vec![0.0; c.n * c.cout * ho * wo];
    for n in 0..c.n {
        for co in 0..c.cout {
            for oh in 0..ho {
                for ow in 0..wo {
                    let mut s = b.map_or(0.0, |b| b[co]);
                    for ci in 0..c.cin {
                        for i in 0..c.kh {
                            for j in 0..c.kw {
                                let ih = (oh * c.stride.0 + i) as isize - c.pad.0 as isize;
                                let iw = (ow * c.stride.1 + j) as isize - c.pad.1 as isize;
                                if ih < 0 || iw < 0 || ih >= c.h as isize || iw >= c.w as isize {
                                    continue;
                                }
                                let xv = x[((n * c.cin + ci) * c.h + ih as usize) * c.w + iw as usize];
                                s += xv * w[((co * c.cin + ci) * c.kh + i) * c.kw + j];
                            }
                        }
                    }
                    out[((n * c.cout + co) * ho + oh) * wo + ow] = s;
                }
            }
        }
    }
    out
}

/// Central finite differences (eps 1e-6) of `sum(f(inputs) * r)` for a random `r`, against the gradients
/// that `backward` puts on each input: |numeric - analytic| <= 1e-7 + 1e-5 |numeric| for every element.
fn grad_check(name: &str, inputs: &[Tensor], f: impl Fn(&[Tensor]) -> Res<Tensor>, rng: &mut Rng) {
    let leaves: Vec<Tensor> = inputs.iter().map(|t| t.copy().unwrap().requires_grad_(true)).collect();
    let out = f(&leaves).unwrap();
    let r = randn(out.shape(), rng);
    let rv = vals(&r);
    out.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();

    let base: Vec<Vec<f64>> = inputs.iter().map(vals).collect();
    let loss = |vs: &[Vec<f64>]| -> f64 {
        let ts: Vec<Tensor> = vs.iter().zip(inputs).map(|(v, t)| f64s(v.clone(), t.shape())).collect();
        dot(&vals(&f(&ts).unwrap()), &rv)
    };
    let eps = 1e-6;
    for (k, leaf) in leaves.iter().enumerate() {
        let analytic = vals(&leaf.grad().unwrap_or_else(|| panic!("{name}: input {k} got no gradient")));
        assert_eq!(analytic.len(), base[k].len(), "{name}: gradient size of input {k}");
        for e in 0..base[k].len() {
            let mut vs = base.clone();
            vs[k][e] = base[k][e] + eps;
            let lp = loss(&vs);
            vs[k][e] = base[k][e] - eps;
            let lm = loss(&vs);
            let numeric = (lp - lm) / (2.0 * eps);
            let err = (numeric - analytic[e]).abs();
            assert!(
                err <= 1e-7 + 1e-5 * numeric.abs(),
                "{name}: input {k} element {e}: numeric {numeric} vs analytic {}",
                analytic[e]
            );
        }
    }
}

/// Distinct values (a shuffled grid 0.1 apart, centred), so max pooling has no ties even under +-eps.
fn distinct(shape: &[usize], rng: &mut Rng) -> Tensor {
    let n = numel(shape);
    let mut v: Vec<f64> = (0..n).map(|i| (i as f64 - n as f64 / 2.0) * 0.1).collect();
    rng.shuffle(&mut v);
    f64s(v, shape)
}

// ------------------------------------------------------------------------------------------------ conv2d forward

#[test]
fn conv2d_by_hand() {
    // x = [[1,2,3],[4,5,6],[7,8,9]], w = [[1,0],[0,-1]]: every output is x[i][j] - x[i+1][j+1] = -4.
    let x = f64s((1..=9).map(f64::from).collect(), &[1, 1, 3, 3]);
    let w = f64s(vec![1.0, 0.0, 0.0, -1.0], &[1, 1, 2, 2]);
    let y = x.conv2d(&w, None, (1, 1), (0, 0)).unwrap();
    assert_eq!(y.shape(), &[1, 1, 2, 2]);
    assert_eq!(vals(&y), vec![-4.0; 4]);
    let b = f64s(vec![0.5], &[1]);
    assert_eq!(vals(&x.conv2d(&w, Some(&b), (1, 1), (0, 0)).unwrap()), vec![-3.5; 4]);

    // All-ones 2x2 kernel, padding 1, stride 2 on the 5x5 padded input: windows hold {1}, {2,3}, {4,7},
    // {5,6,8,9}.
    let ones = f64s(vec![1.0; 4], &[1, 1, 2, 2]);
    let y = x.conv2d(&ones, None, (2, 2), (1, 1)).unwrap();
    assert_eq!(y.shape(), &[1, 1, 2, 2]);
    assert_eq!(vals(&y), vec![1.0, 5.0, 11.0, 28.0]);

    // Two input channels, two output channels, 1x1 kernel: a per-pixel matrix product plus bias.
    let x = f64s(vec![1.0, 2.0, 3.0, 4.0], &[1, 2, 1, 2]); // ch0 = [1, 2], ch1 = [3, 4]
    let w = f64s(vec![1.0, 10.0, -1.0, 0.5], &[2, 2, 1, 1]);
    let b = f64s(vec![100.0, 0.0], &[2]);
    let y = x.conv2d(&w, Some(&b), (1, 1), (0, 0)).unwrap();
    assert_eq!(vals(&y), vec![131.0, 142.0, 0.5, 0.0]);
}

fn check_forward(c: &Cfg, rng: &mut Rng) {
    let x = randn(&c.x_shape(), rng);
    let w = randn(&c.w_shape(), rng);
    let b = c.bias.then(|| randn(&[c.cout], rng));
    let y = x.conv2d(&w, b.as_ref(), c.stride, c.pad).unwrap();
    assert_eq!(y.shape(), c.y_shape().as_slice(), "{c:?}");
    let expect = conv_ref(&vals(&x), &vals(&w), b.as_ref().map(vals).as_deref(), c);
    for (&got, &want) in vals(&y).iter().zip(&expect) {
        assert_abs_diff_eq!(got, want, epsilon = 1e-12 * (1.0 + want.abs()));
    }
}

#[test]
fn conv2d_forward_matches_direct_loops() {
    let mut rng = Rng::new(1);
    for c in CFGS.iter().chain(BIG) {
        check_forward(c, &mut rng);
    }
}

#[test]
fn conv2d_f32_matches_f64_reference() {
    let mut rng = Rng::new(2);
    for c in CFGS.iter().chain(&BIG[..1]) {
        let x = randn(&c.x_shape(), &mut rng);
        let w = randn(&c.w_shape(), &mut rng);
        let b = randn(&[c.cout], &mut rng);
        let y = x
            .to_dtype(DType::F32)
            .unwrap()
            .conv2d(&w.to_dtype(DType::F32).unwrap(), Some(&b.to_dtype(DType::F32).unwrap()), c.stride, c.pad)
            .unwrap();
        assert_eq!(y.dtype(), DType::F32);
        let expect = conv_ref(&vals(&x), &vals(&w), Some(&vals(&b)), c);
        for (&got, &want) in y.to_vec::<f32>().unwrap().iter().zip(&expect) {
            assert_abs_diff_eq!(got as f64, want, epsilon = 1e-4 * (1.0 + want.abs()));
        }
    }
}

#[test]
fn conv2d_results_do_not_depend_on_thread_count() {
    let mut rng = Rng::new(3);
    for c in [&BIG[0], &BIG[2], &BIG[3], &CFGS[1]] {
        let x = randn(&c.x_shape(), &mut rng);
        let w = randn(&c.w_shape(), &mut rng);
        let y = randn(&c.y_shape(), &mut rng);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                (
                    vals(&x.conv2d(&w, None, c.stride, c.pad).unwrap()),
                    vals(&Tensor::conv2d_input_grad(&y, &w, (c.h, c.w), c.stride, c.pad).unwrap()),
                    vals(&Tensor::conv2d_weight_grad(&x, &y, (c.kh, c.kw), c.stride, c.pad).unwrap()),
                )
            })
        };
        // 1 thread: batch-parallel path; 32 threads: parallel inside each sample.
        assert_eq!(run(1), run(32), "{c:?}");
    }
}

// ------------------------------------------------------------------------------------------------ adjoints

#[test]
fn conv2d_primitives_are_adjoints() {
    let mut rng = Rng::new(4);
    for c in CFGS.iter().chain(BIG) {
        let x = randn(&c.x_shape(), &mut rng);
        let w = randn(&c.w_shape(), &mut rng);
        let y = randn(&c.y_shape(), &mut rng);
        let lhs = dot(&vals(&x.conv2d(&w, None, c.stride, c.pad).unwrap()), &vals(&y));
        let gx = Tensor::conv2d_input_grad(&y, &w, (c.h, c.w), c.stride, c.pad).unwrap();
        assert_eq!(gx.shape(), x.shape());
        let gw = Tensor::conv2d_weight_grad(&x, &y, (c.kh, c.kw), c.stride, c.pad).unwrap();
        assert_eq!(gw.shape(), w.shape());
        assert_relative_eq!(lhs, dot(&vals(&x), &vals(&gx)), max_relative = 1e-10);
        assert_relative_eq!(lhs, dot(&vals(&w), &vals(&gw)), max_relative = 1e-10);
    }
}

// ------------------------------------------------------------------------------------------------ gradients

#[test]
fn conv2d_gradients_match_finite_differences() {
    let mut rng = Rng::new(5);
    for c in CFGS {
        let mut inputs = vec![randn(&c.x_shape(), &mut rng), randn(&c.w_shape(), &mut rng)];
        if c.bias {
            inputs.push(randn(&[c.cout], &mut rng));
        }
        let (stride, pad) = (c.stride, c.pad);
        grad_check(&format!("conv2d {c:?}"), &inputs, |t| t[0].conv2d(&t[1], t.get(2), stride, pad), &mut rng);
    }
}

#[test]
fn conv2d_gradient_through_a_graph() {
    // Only the weight and bias track gradients; the conv output feeds further ops (relu, pooling).
    let mut rng = Rng::new(6);
    let c = &CFGS[0];
    let x = randn(&c.x_shape(), &mut rng);
    let inputs = [randn(&c.w_shape(), &mut rng), randn(&[c.cout], &mut rng)];
    grad_check(
        "conv2d graph",
        &inputs,
        |t| x.conv2d(&t[0], Some(&t[1]), c.stride, c.pad)?.tanh()?.avg_pool2d((2, 2), (1, 1), (0, 0)),
        &mut rng,
    );
}

#[test]
fn conv2d_primitive_gradients_match_finite_differences() {
    let mut rng = Rng::new(7);
    for c in &CFGS[..6] {
        let (stride, pad, hw, khw) = (c.stride, c.pad, (c.h, c.w), (c.kh, c.kw));
        let inputs = [randn(&c.y_shape(), &mut rng), randn(&c.w_shape(), &mut rng)];
        grad_check(
            &format!("conv2d_input_grad {c:?}"),
            &inputs,
            |t| Tensor::conv2d_input_grad(&t[0], &t[1], hw, stride, pad),
            &mut rng,
        );
        let inputs = [randn(&c.x_shape(), &mut rng), randn(&c.y_shape(), &mut rng)];
        grad_check(
            &format!("conv2d_weight_grad {c:?}"),
            &inputs,
            |t| Tensor::conv2d_weight_grad(&t[0], &t[1], khw, stride, pad),
            &mut rng,
        );
    }
}

// ------------------------------------------------------------------------------------------------ pooling

/// (input shape, kernel, stride, padding)
type PoolCfg = ([usize; 4], (usize, usize), (usize, usize), (usize, usize));
const POOLS: &[PoolCfg] = &[
    ([2, 3, 7, 6], (3, 3), (2, 2), (1, 1)),
    ([1, 2, 8, 8], (2, 2), (2, 2), (0, 0)),
    ([2, 3, 7, 9], (2, 2), (2, 2), (0, 0)),
    ([2, 1, 5, 7], (3, 2), (1, 2), (1, 0)),
    ([1, 2, 6, 5], (2, 3), (1, 1), (0, 1)),
    ([3, 2, 5, 5], (5, 5), (1, 1), (2, 2)),
    ([1, 1, 1, 1], (1, 1), (1, 1), (0, 0)),
];

/// Direct pooling in f64: average (padding counted as zeros, divisor kh*kw) or max (padding ignored).
fn pool_ref(x: &[f64], &(s, (kh, kw), (sh, sw), (ph, pw)): &PoolCfg, max: bool) -> (Vec<usize>, Vec<f64>) {
    let [n, c, h, w] = s;
    let (ho, wo) = ((h + 2 * ph - kh) / sh + 1, (w + 2 * pw - kw) / sw + 1);
    let mut out = Vec::new();
    for p in 0..n * c {
        for oh in 0..ho {
            for ow in 0..wo {
                let mut acc = if max { f64::NEG_INFINITY } else { 0.0 };
                for i in 0..kh {
                    for j in 0..kw {
                        let ih = (oh * sh + i) as isize - ph as isize;
                        let iw = (ow * sw + j) as isize - pw as isize;
                        if ih < 0 || iw < 0 || ih >= h as isize || iw >= w as isize {
                            continue;
                        }
                        let v = x[p * h * w + ih as usize * w + iw as usize];
                        acc = if max { acc.max(v) } else { acc + v };
                    }
                }
                out.push(if max { acc } else { acc / (kh * kw) as f64 });
            }
        }
    }
    (vec![n, c, ho, wo], out)
}

#[test]
fn pooling_forward_matches_direct_loops() {
    let mut rng = Rng::new(8);
    for cfg in POOLS {
        let (shape, k, s, p) = *cfg;
        let x = randn(&shape, &mut rng);
        let xv = vals(&x);
        let (oshape, want) = pool_ref(&xv, cfg, false);
        let y = x.avg_pool2d(k, s, p).unwrap();
        assert_eq!(y.shape(), oshape.as_slice(), "avg {cfg:?}");
        for (&a, &b) in vals(&y).iter().zip(&want) {
            assert_abs_diff_eq!(a, b, epsilon = 1e-13);
        }
        let (oshape, want) = pool_ref(&xv, cfg, true);
        let y = x.max_pool2d(k, s, p).unwrap();
        assert_eq!(y.shape(), oshape.as_slice(), "max {cfg:?}");
        assert_eq!(vals(&y), want, "max {cfg:?}");
    }
}

#[test]
fn pooling_by_hand() {
    // Ones, 2x2 kernel, stride 1, padding 1: count_include_pad divides by 4 everywhere.
    let x = f64s(vec![1.0; 4], &[1, 1, 2, 2]);
    let y = x.avg_pool2d((2, 2), (1, 1), (1, 1)).unwrap();
    assert_eq!(y.shape(), &[1, 1, 3, 3]);
    assert_eq!(vals(&y), vec![0.25, 0.5, 0.25, 0.5, 1.0, 0.5, 0.25, 0.5, 0.25]);

    // Negative values with padding: the padding never wins the max.
    let x = f64s(vec![-1.0, -2.0, -3.0, -4.0], &[1, 1, 2, 2]);
    let y = x.max_pool2d((2, 2), (1, 1), (1, 1)).unwrap();
    assert_eq!(vals(&y), vec![-1.0, -1.0, -2.0, -1.0, -1.0, -2.0, -3.0, -3.0, -4.0]);

    // Ties: the gradient goes to the first maximum in row-major window order only.
    let x = f64s(vec![5.0, 5.0, 5.0, 5.0], &[1, 1, 2, 2]).requires_grad_(true);
    x.max_pool2d((2, 2), (2, 2), (0, 0)).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(vals(&x.grad().unwrap()), vec![1.0, 0.0, 0.0, 0.0]);

    // A NaN in a window is its maximum (it propagates), on the 2x2 stride-2 fast path and the general one.
    let x = f64s(vec![1.0, f64::NAN, 7.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[1, 1, 2, 4]);
    let y = vals(&x.max_pool2d((2, 2), (2, 2), (0, 0)).unwrap());
    assert!(y[0].is_nan() && y[1] == 7.0, "{y:?}");
    let y = vals(&x.max_pool2d((2, 2), (1, 2), (0, 0)).unwrap());
    assert!(y[0].is_nan() && y[1] == 7.0, "{y:?}");

    // Overlapping windows sharing a maximum add up their gradients.
    let x = f64s(vec![0.0, 9.0, 0.0, 0.0, 0.0, 0.0], &[1, 1, 2, 3]).requires_grad_(true);
    x.max_pool2d((2, 2), (1, 1), (0, 0)).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(vals(&x.grad().unwrap()), vec![0.0, 2.0, 0.0, 0.0, 0.0, 0.0]);

    // Global average pooling.
    let x = f64s((0..8).map(f64::from).collect(), &[1, 2, 2, 2]);
    let y = x.global_avg_pool().unwrap();
    assert_eq!(y.shape(), &[1, 2, 1, 1]);
    assert_eq!(vals(&y), vec![1.5, 5.5]);
}

#[test]
fn pooling_gradients_match_finite_differences() {
    let mut rng = Rng::new(9);
    for cfg in POOLS {
        let (shape, k, s, p) = *cfg;
        let x = randn(&shape, &mut rng);
        grad_check(&format!("avg_pool2d {cfg:?}"), &[x], |t| t[0].avg_pool2d(k, s, p), &mut rng);
        let x = distinct(&shape, &mut rng);
        grad_check(&format!("max_pool2d {cfg:?}"), &[x], |t| t[0].max_pool2d(k, s, p), &mut rng);
        let x = randn(&shape, &mut rng);
        grad_check(&format!("global_avg_pool {cfg:?}"), &[x], |t| t[0].global_avg_pool(), &mut rng);
    }
}

#[test]
fn pooling_large_inputs_run_in_parallel_and_agree() {
    // Above the parallel threshold: compare with the reference and check the gradients' totals.
    let mut rng = Rng::new(10);
    let cfg: PoolCfg = ([4, 8, 32, 32], (3, 3), (2, 2), (1, 1));
    let (shape, k, s, p) = cfg;
    let x = distinct(&shape, &mut rng).requires_grad_(true);
    let xv = vals(&x);
    let y = x.max_pool2d(k, s, p).unwrap();
    assert_eq!(vals(&y), pool_ref(&xv, &cfg, true).1);
    y.sum_all().unwrap().backward().unwrap();
    assert_abs_diff_eq!(vals(&x.grad().unwrap()).iter().sum::<f64>(), y.numel() as f64, epsilon = 1e-9);
    x.zero_grad();
    let y = x.avg_pool2d(k, s, p).unwrap();
    for (&a, &b) in vals(&y).iter().zip(&pool_ref(&xv, &cfg, false).1) {
        assert_abs_diff_eq!(a, b, epsilon = 1e-12);
    }
    y.sum_all().unwrap().backward().unwrap();
    // Each output sends 1/9 to each of its in-bounds inputs: the total is the in-bounds fraction.
    let inside: f64 = {
        let (_, ones) = pool_ref(&vec![1.0; xv.len()], &cfg, false);
        ones.iter().sum()
    };
    assert_relative_eq!(vals(&x.grad().unwrap()).iter().sum::<f64>(), inside, max_relative = 1e-12);
}

// ------------------------------------------------------------------------------------------------ errors

fn err_text(r: Res<Tensor>) -> String {
    match r {
        Ok(t) => panic!("expected an error, got a tensor of shape {:?}", t.shape()),
        Err(e) => e.to_string(),
    }
}

fn assert_mentions(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "error message `{msg}` does not mention `{p}`");
    }
}

#[test]
fn conv2d_errors_name_the_shapes() {
    let t = |s: &[usize]| Tensor::zeros(s, DType::F64);
    let (x, w) = (t(&[2, 3, 5, 5]), t(&[4, 3, 3, 3]));

    let m = err_text(t(&[2, 3, 5]).conv2d(&w, None, (1, 1), (0, 0)));
    assert_mentions(&m, &["conv2d", "(2, 3, 5)", "rank-4"]);
    let m = err_text(x.conv2d(&t(&[4, 3, 3]), None, (1, 1), (0, 0)));
    assert_mentions(&m, &["(4, 3, 3)", "weight"]);
    let m = err_text(x.conv2d(&t(&[4, 2, 3, 3]), None, (1, 1), (0, 0)));
    assert_mentions(&m, &["(2, 3, 5, 5)", "(4, 2, 3, 3)", "channels"]);
    let m = err_text(t(&[1, 3, 3, 3]).conv2d(&t(&[4, 3, 6, 2]), None, (1, 1), (1, 1)));
    assert_mentions(&m, &["(1, 3, 3, 3)", "(4, 3, 6, 2)", "6x2", "5x5"]);
    let m = err_text(x.conv2d(&w, None, (0, 1), (0, 0)));
    assert_mentions(&m, &["stride", "(0, 1)"]);
    let m = err_text(x.conv2d(&w, Some(&t(&[3])), (1, 1), (0, 0)));
    assert_mentions(&m, &["bias", "(3,)", "(4,)"]);
    let m = err_text(x.conv2d(&w, Some(&t(&[4, 1])), (1, 1), (0, 0)));
    assert_mentions(&m, &["(4, 1)"]);
    let m = err_text(x.conv2d(&w.to_dtype(DType::F32).unwrap(), None, (1, 1), (0, 0)));
    assert_mentions(&m, &["f32", "f64"]);
    let m = err_text(x.conv2d(&t(&[4, 3, 0, 3]), None, (1, 1), (0, 0)));
    assert_mentions(&m, &["0x3"]);

    // The primitives check that their shapes describe one convolution.
    let y = t(&[2, 4, 3, 3]);
    assert!(Tensor::conv2d_input_grad(&y, &w, (5, 5), (1, 1), (0, 0)).is_ok());
    let m = err_text(Tensor::conv2d_input_grad(&y, &w, (6, 5), (1, 1), (0, 0)));
    assert_mentions(&m, &["(2, 4, 3, 3)", "(4, 3, 3, 3)", "6x5"]);
    let m = err_text(Tensor::conv2d_input_grad(&t(&[2, 5, 3, 3]), &w, (5, 5), (1, 1), (0, 0)));
    assert_mentions(&m, &["(2, 5, 3, 3)", "(4, 3, 3, 3)"]);
    let m = err_text(Tensor::conv2d_input_grad(&y, &w, (2, 2), (1, 1), (0, 0)));
    assert_mentions(&m, &["(2, 4, 3, 3)", "3x3"]);
    assert!(Tensor::conv2d_weight_grad(&x, &y, (3, 3), (1, 1), (0, 0)).is_ok());
    let m = err_text(Tensor::conv2d_weight_grad(&x, &t(&[1, 4, 3, 3]), (3, 3), (1, 1), (0, 0)));
    assert_mentions(&m, &["(2, 3, 5, 5)", "(1, 4, 3, 3)"]);
    let m = err_text(Tensor::conv2d_weight_grad(&x, &y, (2, 2), (1, 1), (0, 0)));
    assert_mentions(&m, &["(2, 3, 5, 5)", "(2, 4, 3, 3)", "2x2"]);
    let m = err_text(Tensor::conv2d_weight_grad(&x, &t(&[2, 4, 3]), (3, 3), (1, 1), (0, 0)));
    assert_mentions(&m, &["(2, 4, 3)"]);
}

#[test]
fn pooling_errors_name_the_shapes() {
    let t = |s: &[usize]| Tensor::zeros(s, DType::F64);
    let x = t(&[2, 3, 5, 5]);
    for max in [false, true] {
        let pool = |x: &Tensor, k, s, p| if max { x.max_pool2d(k, s, p) } else { x.avg_pool2d(k, s, p) };
        let op = if max { "max_pool2d" } else { "avg_pool2d" };
        let m = err_text(pool(&t(&[3, 5, 5]), (2, 2), (2, 2), (0, 0)));
        assert_mentions(&m, &[op, "(3, 5, 5)"]);
        let m = err_text(pool(&x, (6, 2), (1, 1), (0, 0)));
        assert_mentions(&m, &[op, "(2, 3, 5, 5)", "6x2"]);
        let m = err_text(pool(&x, (3, 3), (1, 1), (2, 1)));
        assert_mentions(&m, &["padding", "(2, 1)", "(2, 3, 5, 5)"]);
        let m = err_text(pool(&x, (3, 3), (1, 0), (0, 0)));
        assert_mentions(&m, &["stride", "(1, 0)"]);
        let m = err_text(pool(&x, (0, 3), (1, 1), (0, 0)));
        assert_mentions(&m, &["kernel", "(0, 3)"]);
        // Kernel 7 fits 5 + 2*1 = 7 with padding 1 only if padding <= 7/2: fine, gives 1x1.
        assert_eq!(pool(&x, (7, 7), (1, 1), (1, 1)).unwrap().shape(), &[2, 3, 1, 1]);
    }
    let m = err_text(t(&[3, 5]).global_avg_pool());
    assert_mentions(&m, &["global_avg_pool", "(3, 5)"]);
}

#[test]
fn relu_commutes_with_max_pool() {
    // The small CNN computes conv-BN-ReLU-pool as conv-BN-pool-ReLU; both orders must give the same values
    // and the same input gradient (odd sizes, so the last row and column are dropped by the 2x2 pooling).
    let mut rng = Rng::new(21);
    let shape = [2, 3, 7, 9];
    let x = randn(&shape, &mut rng);
    let up = Tensor::from_vec(vals(&randn(&[2, 3, 3, 4], &mut rng)), &[2, 3, 3, 4]).unwrap();
    let run = |relu_first: bool| {
        let xi = Tensor::from_vec(vals(&x), &shape).unwrap().requires_grad_(true);
        let y = if relu_first {
            xi.relu().unwrap().max_pool2d((2, 2), (2, 2), (0, 0)).unwrap()
        } else {
            xi.max_pool2d((2, 2), (2, 2), (0, 0)).unwrap().relu().unwrap()
        };
        y.mul(&up).unwrap().sum_all().unwrap().backward().unwrap();
        (vals(&y), vals(&xi.grad().unwrap()))
    };
    let (a, b) = (run(true), run(false));
    assert_eq!(a.0, b.0);
    assert_eq!(a.1, b.1);
    assert!(a.1.iter().any(|&g| g != 0.0) && a.1.iter().any(|&g| g == 0.0));
}
