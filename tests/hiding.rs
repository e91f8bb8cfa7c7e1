//! The invertible hiding network: exact invertibility, identity at init, gradients in f64.

use deephide::hiding::{HidingConfig, InvertibleHiding};
use deephide::{no_grad, DType, Rng, Tensor};

fn small_cfg(channels: usize, blocks: usize) -> HidingConfig {
    HidingConfig { channels, blocks, growth: 4, clamp: 2.0, slope: 0.01 }
}

/// Replace every parameter with N(0, std) values so the network is far from the identity.
fn randomize(net: &InvertibleHiding, std: f64, seed: u64) {
    let mut rng = Rng::new(seed);
    for p in net.parameters() {
        p.assign(&Tensor::randn(p.shape(), std, p.dtype(), &mut rng)).unwrap();
    }
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    a.to_vec_f64().unwrap().iter().zip(b.to_vec_f64().unwrap()).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

#[test]
fn reverse_inverts_forward_in_f64_and_f32() {
    for (dtype, tol) in [(DType::F64, 1e-10), (DType::F32, 1e-4)] {
        for channels in [1, 3] {
            let net = InvertibleHiding::new_with_dtype(small_cfg(channels, 3), 1, dtype).unwrap();
            randomize(&net, 0.05, 2);
            let mut rng = Rng::new(3);
            let x1 = Tensor::randn(&[2, 4 * channels, 4, 6], 1.0, dtype, &mut rng);
            let x2 = Tensor::randn(&[2, 4 * channels, 4, 6], 1.0, dtype, &mut rng);
            let (y1, y2) = no_grad(|| net.forward_bands(&x1, &x2)).unwrap();
            assert!(max_abs_diff(&y1, &x1) > 1e-2, "random weights should move the data");
            let (b1, b2) = no_grad(|| net.reverse_bands(&y1, &y2)).unwrap();
            let err = max_abs_diff(&b1, &x1).max(max_abs_diff(&b2, &x2));
            assert!(err < tol, "{dtype:?} C={channels}: reconstruction error {err}");
        }
    }
}

#[test]
fn hide_then_reveal_with_the_true_lost_part_recovers_both_images() {
    let net = InvertibleHiding::new_with_dtype(small_cfg(3, 2), 4, DType::F64).unwrap();
    randomize(&net, 0.05, 5);
    let mut rng = Rng::new(6);
    let cover = Tensor::rand_uniform(&[2, 3, 8, 8], 0.0, 1.0, DType::F64, &mut rng);
    let secret = Tensor::rand_uniform(&[2, 3, 8, 8], 0.0, 1.0, DType::F64, &mut rng);
    let h = no_grad(|| net.hide(&cover, &secret)).unwrap();
    assert_eq!(h.stego.shape(), cover.shape());
    assert_eq!(h.lost.shape(), &[2, 12, 4, 4]);
    let (c, s) = no_grad(|| net.reveal(&h.stego, &h.lost)).unwrap();
    assert!(max_abs_diff(&c, &cover) < 1e-10);
    assert!(max_abs_diff(&s, &secret) < 1e-10);
}

#[test]
fn the_network_is_the_identity_at_init() {
    let net = InvertibleHiding::new(small_cfg(3, 4), 7).unwrap();
    let mut rng = Rng::new(8);
    let cover = Tensor::rand_uniform(&[2, 3, 8, 8], 0.0, 1.0, DType::F32, &mut rng);
    let secret = Tensor::rand_uniform(&[2, 3, 8, 8], 0.0, 1.0, DType::F32, &mut rng);
    let h = no_grad(|| net.hide(&cover, &secret)).unwrap();
    assert!(max_abs_diff(&h.stego, &cover) < 1e-6);
    assert!(max_abs_diff(&h.lost, &secret.haar_dwt().unwrap()) < 1e-6);
    // Init: last conv of every subnet is zero, the others are 0.01 * N(0, 1).
    for (name, p) in net.named_parameters() {
        let v = p.to_vec_f64().unwrap();
        if name.contains("conv5") {
            assert!(v.iter().all(|&x| x == 0.0), "{name} is not zero");
        } else {
            let std = (v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64).sqrt();
            assert!(std > 0.003 && std < 0.03, "{name}: std {std}");
        }
    }
}

#[test]
fn parameter_names_and_count_follow_hinet() {
    let net = InvertibleHiding::new(HidingConfig::default(), 0).unwrap();
    let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names.len(), 16 * 3 * 5 * 2);
    assert!(names.contains(&"inv1.f.conv1.weight".to_string()));
    assert!(names.contains(&"inv16.y.conv5.bias".to_string()));
    let p = net.named_parameters();
    let w1 = &p.iter().find(|(n, _)| n == "inv1.r.conv1.weight").unwrap().1;
    assert_eq!(w1.shape(), &[32, 12, 3, 3]);
    let w5 = &p.iter().find(|(n, _)| n == "inv3.f.conv5.weight").unwrap().1;
    assert_eq!(w5.shape(), &[12, 140, 3, 3]);
    // PAPER.md: about 4.05 M parameters for RGB.
    let n = net.num_parameters();
    assert!((4_000_000..4_100_000).contains(&n), "{n} parameters");
}

#[test]
fn bad_shapes_are_clear_errors() {
    let net = InvertibleHiding::new(small_cfg(3, 1), 0).unwrap();
    let odd = Tensor::zeros(&[1, 3, 5, 6], DType::F32);
    let e = net.hide(&odd, &odd).err().unwrap().to_string();
    assert!(e.contains("even") && e.contains("(1, 3, 5, 6)"), "{e}");
    let gray = Tensor::zeros(&[1, 1, 4, 4], DType::F32);
    let e = net.hide(&gray, &gray).err().unwrap().to_string();
    assert!(e.contains("3-channel"), "{e}");
    let rgb = Tensor::zeros(&[1, 3, 4, 4], DType::F32);
    let e = net.reveal(&rgb, &Tensor::zeros(&[1, 12, 4, 4], DType::F32)).err().unwrap().to_string();
    assert!(e.contains("(1, 12, 2, 2)"), "{e}");
}

/// Central differences on chosen elements of a tensor (parameters included, through `assign`).
fn numeric_grad(loss: &dyn Fn() -> f64, t: &Tensor, idx: &[usize]) -> Vec<f64> {
    let eps = 1e-6;
    let base = t.to_vec::<f64>().unwrap();
    idx.iter()
        .map(|&i| {
            let mut v = base.clone();
            v[i] += eps;
            t.assign(&Tensor::from_vec(v.clone(), t.shape()).unwrap()).unwrap();
            let lp = loss();
            v[i] -= 2.0 * eps;
            t.assign(&Tensor::from_vec(v, t.shape()).unwrap()).unwrap();
            let lm = loss();
            t.assign(&Tensor::from_vec(base.clone(), t.shape()).unwrap()).unwrap();
            (lp - lm) / (2.0 * eps)
        })
        .collect()
}

fn assert_grads_match(what: &str, analytic: &[f64], numeric: &[f64]) {
    for (a, n) in analytic.iter().zip(numeric) {
        assert!((a - n).abs() <= 1e-7 + 1e-5 * n.abs(), "{what}: analytic {a} vs numeric {n}");
    }
}

#[test]
fn gradients_of_the_whole_two_block_network_match_finite_differences() {
    let net = InvertibleHiding::new_with_dtype(small_cfg(1, 2), 9, DType::F64).unwrap();
    randomize(&net, 0.1, 10);
    let mut rng = Rng::new(11);
    let cover = Tensor::rand_uniform(&[2, 1, 4, 4], 0.0, 1.0, DType::F64, &mut rng).requires_grad_(true);
    let secret = Tensor::rand_uniform(&[2, 1, 4, 4], 0.0, 1.0, DType::F64, &mut rng).requires_grad_(true);
    let z = Tensor::randn(&[2, 4, 2, 2], 1.0, DType::F64, &mut rng);
    let proj = Tensor::randn(&[2, 1, 4, 4], 1.0, DType::F64, &mut rng);
    // A loss through hide and reveal, as in training.
    let loss_t = || -> Tensor {
        let h = net.hide(&cover, &secret).unwrap();
        let (_, rev) = net.reveal(&h.stego, &z).unwrap();
        h.stego.sub(&cover).unwrap().square().unwrap().sum_all().unwrap()
            .add(&rev.mul(&proj).unwrap().sum_all().unwrap()).unwrap()
    };
    let loss = || no_grad(|| loss_t().item().unwrap());
    loss_t().backward().unwrap();
    let idx: Vec<usize> = (0..32).collect();
    for (name, t) in [("cover", &cover), ("secret", &secret)] {
        let a = t.grad().unwrap().to_vec::<f64>().unwrap();
        let n = numeric_grad(&loss, t, &idx);
        assert_grads_match(name, &idx.iter().map(|&i| a[i]).collect::<Vec<_>>(), &n);
    }
    for (name, p) in net.named_parameters().iter().filter(|(n, _)| n.contains("conv1") || n.contains("conv5")) {
        let a = p.grad().unwrap().to_vec::<f64>().unwrap();
        let idx: Vec<usize> = (0..p.numel()).step_by((p.numel() / 6).max(1)).collect();
        let n = numeric_grad(&loss, p, &idx);
        assert_grads_match(name, &idx.iter().map(|&i| a[i]).collect::<Vec<_>>(), &n);
    }
}

#[test]
fn pushing_across_bit_depth_levels_stays_in_budget_and_survives_the_reduction() {
    use deephide::countermeasures::pixel::BitDepth;
    let mut rng = deephide::Rng::new(8);
    let n = 40;
    let clean_px: Vec<u8> = (0..n * 64).map(|_| (rng.uniform() * 255.0) as u8).collect();
    let labels: Vec<usize> = (0..n).map(|i| i % 2).collect();
    let clean = deephide::data::Dataset::new("c", clean_px, labels.clone(), (1, 8, 8), 2).unwrap();
    // Class 0 moves up by 3 levels everywhere, class 1 down by 3 (within an 8/255 budget).
    let mut published = clean.clone();
    for i in 0..n {
        for j in 0..64 {
            let v = &mut published.images[i * 64 + j];
            *v = if labels[i] == 0 { v.saturating_add(3) } else { v.saturating_sub(3) };
        }
    }
    let before = published.clone();
    let share = deephide::hiding::protect::push_across_levels(&clean, &mut published, 8.0 / 255.0, 2).unwrap();
    assert!(share > 0.0);
    let q = BitDepth { bits: 2 };
    let mut crossed = 0;
    for i in 0..n {
        for j in 0..64 {
            let (c, p, b) = (clean.images[i * 64 + j] as i32, published.images[i * 64 + j] as i32, before.images[i * 64 + j] as i32);
            assert!((p - c).abs() <= 8, "pixel moved {} levels", p - c);
            // Only towards the class's direction, never back.
            if labels[i] == 0 { assert!(p >= b) } else { assert!(p <= b) }
            let (lc, lp) = (q.map_u8(c as u8), q.map_u8(p as u8));
            if lc != lp {
                crossed += 1;
                assert!(if labels[i] == 0 { lp > lc } else { lp < lc }, "crossed against the class direction");
            }
            // Every pixel within 8 levels of a boundary in its class's direction crosses it.
            let reachable = (1..=8).any(|s| {
                let v = if labels[i] == 0 { c + s } else { c - s };
                (0..=255).contains(&v) && q.map_u8(v as u8) != lc
            });
            assert_eq!(lc != lp, reachable, "pixel {c} -> {p}");
        }
    }
    assert!(crossed > 0);
    assert!(deephide::hiding::protect::push_across_levels(&clean, &mut published, 8.0 / 255.0, 9).is_err());
}
