//! The protection levers of `deephide train` (issue 9): bounded output, straight-through quantisation,
//! differentiable distortions (JPEG approximation against the real codec), class consistency, high-frequency
//! and budget-filling losses, semantic alignment, the error-minimising surrogate and the adversarial-poisoning
//! loss, and that training with them changes what the network outputs.

use deephide::countermeasures::jpeg;
use deephide::data::Dataset;
use deephide::hiding::shortcut::{self, budget_fill_loss, class_consistency_loss, highfreq_loss, semantic_align_loss, AlignTarget, Distortion};
use deephide::hiding::{protect_dataset, train, HidingConfig, InvertibleHiding, SecretPool, TrainOptions};
use deephide::semantic::SemanticSource;
use deephide::{Device, Rng, Tensor};

fn t(v: Vec<f32>, shape: &[usize]) -> Tensor {
    Tensor::from_vec(v, shape).unwrap()
}

/// A smooth test image with edges (values in [0, 1]).
fn image(s: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let (cx, cy) = (rng.uniform() * s as f64, rng.uniform() * s as f64);
    (0..s * s)
        .map(|i| {
            let (y, x) = ((i / s) as f64, (i % s) as f64);
            let d = ((x - cx).powi(2) + (y - cy).powi(2)).sqrt();
            (0.2 + 0.5 * (x / s as f64) + if d < s as f64 / 3.0 { 0.25 } else { 0.0 }) as f32
        })
        .collect()
}

#[test]
fn bound_keeps_delta_inside_the_budget() {
    let eps = 8.0 / 255.0;
    let cover = t(vec![0.5; 16], &[1, 1, 4, 4]);
    let stego = t((0..16).map(|i| if i % 2 == 0 { 0.9 } else { 0.1 }).collect(), &[1, 1, 4, 4]);
    let b = shortcut::bound_stego(&stego, &cover, eps).unwrap().to_vec_f32().unwrap();
    for (i, v) in b.iter().enumerate() {
        let d = v - 0.5;
        assert!(d.abs() <= eps as f32 + 1e-6 && d.abs() > 0.9 * eps as f32, "pixel {i}: delta {d}");
        assert!((shortcut::bound_value(0.5, if i % 2 == 0 { 0.9 } else { 0.1 }, eps) - v).abs() < 1e-6);
    }
    // Small deltas pass nearly unchanged.
    let s2 = t(vec![0.501; 16], &[1, 1, 4, 4]);
    let b2 = shortcut::bound_stego(&s2, &cover, eps).unwrap().to_vec_f32().unwrap();
    assert!((b2[0] - 0.501).abs() < 1e-5);
    assert!(shortcut::bound_stego(&s2, &cover, 0.0).is_err());
}

#[test]
fn quantisation_is_straight_through() {
    let x = t(vec![0.1234, 0.5, 0.9999, 0.002], &[1, 1, 2, 2]).requires_grad_(true);
    let q = shortcut::quantize_st(&x).unwrap();
    let v = q.to_vec_f32().unwrap();
    for (a, b) in v.iter().zip([0.1234f32, 0.5, 0.9999, 0.002]) {
        assert!(((a * 255.0).round() - a * 255.0).abs() < 1e-3, "{a} is not on a u8 level");
        assert!((a - b).abs() <= 0.5 / 255.0 + 1e-6);
    }
    q.sum_all().unwrap().backward().unwrap();
    assert_eq!(x.grad().unwrap().to_vec_f32().unwrap(), vec![1.0; 4]);
    let b2 = Distortion::BitDepth2.apply(&x).unwrap().to_vec_f32().unwrap();
    assert_eq!(b2, vec![0.0, 0.5, 0.75, 0.0]);
}

#[test]
fn jpeg_approximation_tracks_the_real_codec() {
    let s = 28;
    for q in [10u8, 50] {
        let img = image(s, q as u64);
        let u8s: Vec<u8> = img.iter().map(|v| (v * 255.0).round() as u8).collect();
        let real: Vec<f32> = jpeg::roundtrip(&u8s, 1, s, s, q).unwrap().iter().map(|&v| v as f32 / 255.0).collect();
        let x = t(u8s.iter().map(|&v| v as f32 / 255.0).collect(), &[1, 1, s, s]).requires_grad_(true);
        let approx = shortcut::jpeg_approx(&x, q).unwrap();
        let a = approx.to_vec_f32().unwrap();
        let err_approx = a.iter().zip(&real).map(|(p, r)| (p - r).abs()).sum::<f32>() / a.len() as f32;
        let err_identity = img.iter().zip(&real).map(|(p, r)| (p - r).abs()).sum::<f32>() / a.len() as f32;
        assert!(err_approx < 0.5 * err_identity, "quality {q}: approx error {err_approx:.4} vs doing nothing {err_identity:.4}");
        approx.square().unwrap().sum_all().unwrap().backward().unwrap();
        let g = x.grad().unwrap().to_vec_f32().unwrap();
        assert!(g.iter().any(|v| v.abs() > 1e-6) && g.iter().all(|v| v.is_finite()), "quality {q}: no gradient");
    }
    assert_eq!(Distortion::parse_list("quant,jpeg10,bit2,blur").unwrap().len(), 4);
    assert!(Distortion::parse_list("none").unwrap().is_empty());
    assert!(Distortion::parse("jpeg0").is_err() && Distortion::parse("sharpen").is_err());
}

#[test]
fn shortcut_losses_measure_what_they_say() {
    // Class-constant perturbations are perfectly consistent; a differing one is not.
    let labels = [0usize, 0, 1, 1];
    let mut d: Vec<f32> = Vec::new();
    for &y in &labels {
        d.extend(std::iter::repeat_n(if y == 0 { 0.03 } else { -0.03 }, 16));
    }
    let delta = t(d.clone(), &[4, 1, 4, 4]);
    assert!(class_consistency_loss(&delta, &labels).unwrap().item().unwrap().abs() < 1e-9);
    d[0] = 0.07; // deviation 0.04 from a pair: each of the two deviates 0.02 from the mean
    let l = class_consistency_loss(&t(d, &[4, 1, 4, 4]), &labels).unwrap().item().unwrap();
    assert!((l - 2.0 * 0.02f64.powi(2)).abs() < 1e-7, "{l}");
    // 4x4-constant maps have no energy outside the level-2 low band; a checkerboard has all of it there.
    assert!(highfreq_loss(&delta, 2).unwrap().item().unwrap() < 1e-9);
    let cb = t((0..16).map(|i| if (i / 4 + i % 4) % 2 == 0 { 0.03 } else { -0.03 }).collect(), &[1, 1, 4, 4]);
    assert!((highfreq_loss(&cb, 2).unwrap().item().unwrap() - 16.0 * 0.0009).abs() < 1e-6);
    assert!(highfreq_loss(&t(vec![0.0; 36], &[1, 1, 6, 6]), 2).is_err());
    // Budget filling: zero at +-eps, largest at zero.
    let eps = 0.03;
    assert!(budget_fill_loss(&delta, eps).unwrap().item().unwrap() < 1e-9);
    assert!((budget_fill_loss(&t(vec![0.0; 16], &[1, 1, 4, 4]), eps).unwrap().item().unwrap() - 16.0 * 0.0009).abs() < 1e-6);
    // Alignment: zero when delta is the secret mapped to [-eps, eps]; eps^2 per pixel for delta = 0 and a
    // binary secret.
    let secret = t((0..16).map(|i| (i % 2) as f32).collect(), &[1, 1, 4, 4]);
    let aligned = t((0..16).map(|i| if i % 2 == 1 { 0.03 } else { -0.03 }).collect(), &[1, 1, 4, 4]);
    assert!(semantic_align_loss(&aligned, &secret, eps, AlignTarget::Linear).unwrap().item().unwrap() < 1e-9);
    let zero = t(vec![0.0; 16], &[1, 1, 4, 4]);
    assert!((semantic_align_loss(&zero, &secret, eps, AlignTarget::Linear).unwrap().item().unwrap() - 16.0 * 0.0009).abs() < 1e-6);
    assert!(semantic_align_loss(&zero, &t(vec![0.0; 4], &[1, 1, 2, 2]), eps, AlignTarget::Linear).is_err());
    // Sign target: each image against its own mean, at the full budget. Image 0 (mean 0.45): 0.4 -> -eps,
    // 0.5 -> +eps; image 1 (mean 0.725): 0.9, 0.8 -> +eps, 0.6 -> -eps. The linear target of 0.5 would be 0.
    let grey = t(vec![0.4, 0.5, 0.4, 0.5, 0.9, 0.6, 0.6, 0.8], &[2, 1, 2, 2]);
    let want = [-eps, eps, -eps, eps, eps, -eps, -eps, eps];
    let got = shortcut::semantic_align_target(&grey, eps, AlignTarget::Sign).unwrap().to_vec_f32().unwrap();
    for (g, w) in got.iter().zip(want) {
        assert!((*g as f64 - w).abs() < 1e-7, "{got:?}");
    }
    let on_target = t(want.iter().map(|&v| v as f32).collect(), &[2, 1, 2, 2]);
    assert!(semantic_align_loss(&on_target, &grey, eps, AlignTarget::Sign).unwrap().item().unwrap() < 1e-9);
    assert!(semantic_align_loss(&on_target, &grey, eps, AlignTarget::Linear).unwrap().item().unwrap() > 1e-4);
    assert_eq!(AlignTarget::parse("sign").unwrap(), AlignTarget::Sign);
    assert!(AlignTarget::parse("square").unwrap_err().to_string().contains("linear or sign"));
}

fn synthetic(n: usize, classes: usize, s: usize, seed: u64) -> Dataset {
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for i in 0..n {
        labels.push(i % classes);
        images.extend(image(s, seed + i as u64).iter().map(|v| (v * 255.0) as u8));
    }
    Dataset::new("synthetic", images, labels, (1, s, s), classes).unwrap()
}

/// Mean over classes of the per-pixel variance of the perturbations within the class.
fn intra_class_variance(clean: &Dataset, prot: &Dataset) -> f64 {
    let per = clean.channels * clean.height * clean.width;
    let mut total = 0.0;
    for y in 0..clean.classes {
        let idx: Vec<usize> = (0..clean.len()).filter(|&i| clean.labels[i] == y).collect();
        let mut mean = vec![0.0f64; per];
        let deltas: Vec<Vec<f64>> = idx
            .iter()
            .map(|&i| (0..per).map(|k| (prot.images[i * per + k] as f64 - clean.images[i * per + k] as f64) / 255.0).collect())
            .collect();
        for d in &deltas {
            for (m, v) in mean.iter_mut().zip(d) {
                *m += v / deltas.len() as f64;
            }
        }
        total += deltas.iter().flat_map(|d| d.iter().zip(&mean).map(|(v, m)| (v - m).powi(2))).sum::<f64>() / (deltas.len() * per) as f64;
    }
    total / clean.classes as f64
}

#[test]
fn training_with_the_levers_changes_the_perturbations() {
    let ds = synthetic(48, 3, 8, 7);
    let src = SemanticSource::parse("single", 0).unwrap();
    let pool = SecretPool::new(&src, ds.classes, 1, (1, 8, 8)).unwrap();
    let cfg = HidingConfig { channels: 1, blocks: 2, growth: 8, clamp: 2.0, slope: 0.01 };
    let base = TrainOptions { steps: 80, batch: 12, lr: 1e-3, secret_variants: 1, ckpt_every: 0, w_guide: 1.0, ..TrainOptions::default() };
    let eps = 8.0 / 255.0;
    let levers = TrainOptions {
        bound_eps: eps,
        train_quantize: true,
        distort: vec![Distortion::Quant, Distortion::Jpeg(50), Distortion::BitDepth2, Distortion::Blur],
        w_consistency: 200.0,
        w_fill: 200.0,
        ..base.clone()
    };
    let mut out = Vec::new();
    for (o, bound) in [(&base, None), (&levers, Some(eps))] {
        let net = InvertibleHiding::new(cfg.clone(), 1).unwrap();
        let rep = train(&net, &ds, &pool, o, None, &Device::Cpu, None, None, false).unwrap();
        assert!(rep.log.iter().all(|l| l.loss.is_finite()));
        // The plain network is clipped as `hide` does; the bounded one is not clipped at all.
        let clip = if bound.is_some() { 0.0 } else { eps };
        let (prot, stats) = protect_dataset(&net, &ds, &pool, clip, bound, 16, &Device::Cpu, |_| {}).unwrap();
        eprintln!("bound {bound:?}: L-inf max {:.4}, intra-class variance {:.3e}, L2 {:.4}", stats.linf.max, intra_class_variance(&ds, &prot), stats.l2.mean());
        out.push((stats.linf.max, intra_class_variance(&ds, &prot), stats.l2.mean()));
    }
    let (plain, lever) = (out[0], out[1]);
    // The bound holds without any clip (eps = 0 in protect_dataset), up to u8 rounding.
    assert!(lever.0 <= eps + 0.5 / 255.0 + 1e-6, "bounded network published L-inf {}", lever.0);
    // Filling the budget makes the perturbation bigger (every one of the 64 pixels at eps gives L2 8 eps);
    // consistency makes it nearly the same for every image of a class (measured: 1.7e-8 vs 6.7e-6).
    assert!(lever.2 > plain.2 && lever.2 > 0.9 * 8.0 * eps, "L2 with fill {} vs plain {}", lever.2, plain.2);
    assert!(lever.1 < 0.1 * plain.1, "intra-class variance {} vs plain {}", lever.1, plain.1);
}

fn mean_of(v: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = v.collect();
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn error_minimising_and_adversarial_losses_train_and_are_logged() {
    let ds = synthetic(48, 3, 8, 7);
    let src = SemanticSource::parse("single", 0).unwrap();
    let pool = SecretPool::new(&src, ds.classes, 1, (1, 8, 8)).unwrap();
    let cfg = HidingConfig { channels: 1, blocks: 2, growth: 8, clamp: 2.0, slope: 0.01 };
    let base = TrainOptions { steps: 60, batch: 12, lr: 1e-3, secret_variants: 1, ckpt_every: 0, w_guide: 1.0, ..TrainOptions::default() };

    // Error-minimising: the jointly trained surrogate's loss is logged and falls (min-min).
    let em = TrainOptions { w_em: 100.0, em_width: 4, em_lr: 0.05, ..base.clone() };
    let net = InvertibleHiding::new(cfg.clone(), 1).unwrap();
    let rep = train(&net, &ds, &pool, &em, None, &Device::Cpu, None, None, false).unwrap();
    assert!(rep.log.iter().all(|l| l.em_ce.is_finite() && l.em_ce > 0.0 && (0.0..=1.0).contains(&l.em_acc)));
    let (first, last) = (mean_of(rep.log[..10].iter().map(|l| l.em_ce)), mean_of(rep.log[50..].iter().map(|l| l.em_ce)));
    assert!(last < 0.7 * first, "surrogate cross-entropy {first} -> {last}");
    assert!(rep.log.iter().all(|l| l.adv_ce == 0.0), "adversarial loss is off");
    // Resetting the surrogate keeps training going (fresh weights, loss back up, no error).
    let reset = TrainOptions { em_reset_every: 20, steps: 25, ..em.clone() };
    let rep = train(&InvertibleHiding::new(cfg.clone(), 1).unwrap(), &ds, &pool, &reset, None, &Device::Cpu, None, None, false).unwrap();
    assert_eq!(rep.log.len(), 25);

    // Adversarial poisoning towards class y + 1 on a frozen classifier: its loss is logged and falls.
    let adv = TrainOptions { w_adv: 100.0, w_guide: 0.0, ..base.clone() };
    let net = InvertibleHiding::new(cfg.clone(), 1).unwrap();
    let Err(err) = train(&net, &ds, &pool, &adv, None, &Device::Cpu, None, None, false) else { panic!("--w-adv without a classifier trained") };
    assert!(err.to_string().contains("frozen classifier"), "{err}");
    let mcfg = deephide::models::ModelConfig::new(deephide::models::Arch::SmallCnn, 1, (8, 8), 3).with_width(4);
    let frozen = deephide::models::build(&mcfg, &mut deephide::Rng::new(3)).unwrap();
    frozen.set_training(false);
    let before: Vec<Vec<f32>> = frozen.parameters().iter().map(|p| p.to_vec_f32().unwrap()).collect();
    for p in frozen.parameters() {
        let _ = p.clone().requires_grad_(false);
    }
    let g: &dyn deephide::hiding::Embedder = frozen.as_ref();
    let rep = train(&net, &ds, &pool, &adv, Some(g), &Device::Cpu, None, None, false).unwrap();
    let (first, last) = (mean_of(rep.log[..10].iter().map(|l| l.adv_ce)), mean_of(rep.log[50..].iter().map(|l| l.adv_ce)));
    assert!(first > 0.0 && last < first, "adversarial cross-entropy {first} -> {last}");
    let after: Vec<Vec<f32>> = frozen.parameters().iter().map(|p| p.to_vec_f32().unwrap()).collect();
    assert_eq!(before, after, "the classifier stays frozen");

    // Bad weights are refused with the flag's name.
    let bad = TrainOptions { w_em: f64::NAN, ..base.clone() };
    let Err(err) = train(&net, &ds, &pool, &bad, None, &Device::Cpu, None, None, false) else { panic!("a NaN weight trained") };
    assert!(err.to_string().contains("--w-em"), "{err}");
}
