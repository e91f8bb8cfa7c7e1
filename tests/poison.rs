//! Peer methods (`deephide poison`): every method keeps its budget in its own norm on every image, is
//! deterministic per seed, and has the property that makes it what it is; the APBench layout round-trips;
//! the command checks its input before working and resumes an interrupted run exactly.

use std::path::{Path, PathBuf};
use std::process::Command;

use deephide::data::{self, publish, Dataset, Split};
use deephide::eval::json::Json;
use deephide::poison::{self, ar, budget, lsp, ops, Budget, Method, PoisonOptions};
use deephide::Rng;

#[path = "common/cli.rs"]
mod cli;
use cli::{bin, text};

fn tmp(name: &str) -> PathBuf {
    cli::tmp("poison", name)
}

/// Mid-grey random images (levels 64..192): no perturbation of these budgets is clipped at 0 or 255, so
/// the published perturbation is the method's own.
fn grey(n: usize, chw: (usize, usize, usize), classes: usize, seed: u64) -> Dataset {
    let mut rng = Rng::new(seed);
    let per = chw.0 * chw.1 * chw.2;
    let images: Vec<u8> = (0..n * per).map(|_| 64 + (rng.uniform() * 128.0) as u8).collect();
    let labels: Vec<usize> = (0..n).map(|i| i % classes).collect();
    Dataset::new("grey", images, labels, chw, classes).unwrap()
}

/// The first images of the bundled Fashion-MNIST subset, class-balanced.
fn fashion(n: usize) -> Dataset {
    let ds = data::load("default", Split::Train).unwrap();
    data::balanced_subset(&ds, Some(n), &mut Rng::new(7))
}

fn run(m: Method, ds: &Dataset, o: &PoisonOptions) -> poison::Poisoned {
    poison::poison(m, ds, o, &mut |_, _, _| {}).unwrap_or_else(|e| panic!("{}: {e}", m.name()))
}

fn delta(clean: &Dataset, p: &Dataset, i: usize) -> Vec<i32> {
    clean.image(i).iter().zip(p.image(i)).map(|(&a, &b)| b as i32 - a as i32).collect()
}

/// The budget in the method's own norm, recomputed here independently of `Budget::check`.
fn assert_within(m: Method, clean: &Dataset, p: &poison::Poisoned) {
    for i in 0..clean.len() {
        let d = delta(clean, &p.data, i);
        match p.budget {
            Budget::Linf(e) => {
                let max = d.iter().map(|v| v.abs()).max().unwrap();
                assert!(max as f64 <= (e * 255.0 + 1e-6).floor(), "{}: image {i} has |delta| {max}/255 > {e}", m.name());
            }
            Budget::L2(r) => {
                let n = d.iter().map(|&v| (v as f64 / 255.0).powi(2)).sum::<f64>().sqrt();
                assert!(n <= r + 1e-9, "{}: image {i} has L2 {n} > {r}", m.name());
            }
            Budget::Pixels(k) => {
                let hw = clean.height * clean.width;
                let changed = (0..hw).filter(|&q| (0..clean.channels).any(|c| d[c * hw + q] != 0)).count();
                assert!(changed <= k, "{}: image {i} changes {changed} pixels > {k}", m.name());
            }
        }
    }
}

fn quick() -> PoisonOptions {
    PoisonOptions { max_rounds: 2, train_steps: 3, attack_steps: 2, tap_epochs: 1, tap_steps: 3, batch: 32, ..PoisonOptions::default() }
}

#[test]
fn every_method_keeps_its_budget_and_is_deterministic_per_seed() {
    let gray = fashion(120);
    let rgb = grey(40, (3, 32, 32), 4, 3);
    for m in poison::ALL {
        let sets: Vec<&Dataset> = if m == Method::Dh { vec![&gray] } else { vec![&gray, &rgb] };
        for ds in sets {
            let o = quick();
            let a = run(m, ds, &o);
            assert_within(m, ds, &a);
            assert_eq!(a.data.labels, ds.labels);
            assert_ne!(a.data.images, ds.images, "{}: nothing changed", m.name());
            let b = run(m, ds, &o);
            assert!(a.data.images == b.data.images, "{}: same seed, different images", m.name());
            let seeded = matches!(m, Method::ClasswiseNoise | Method::Lsp | Method::Ar | Method::Tap);
            if seeded {
                let c = run(m, ds, &PoisonOptions { seed: 1, ..quick() });
                assert!(a.data.images != c.data.images, "{}: seed 1 gave the seed-0 images", m.name());
            }
        }
    }
}

#[test]
fn linf_methods_use_their_budget_and_a_smaller_budget_is_kept() {
    let ds = grey(60, (1, 28, 28), 3, 5);
    for m in [Method::ClasswiseNoise, Method::Em, Method::Tap] {
        let o = PoisonOptions { eps: 4.0 / 255.0, ..quick() };
        let p = run(m, &ds, &o);
        assert_within(m, &ds, &p);
        assert_eq!(p.budget, Budget::Linf(4.0 / 255.0));
        assert!(p.budget_report.max > 2.5 / 255.0, "{}: uses almost none of the budget ({})", m.name(), p.budget_report.max * 255.0);
    }
}

#[test]
fn classwise_methods_give_one_pattern_per_class() {
    let ds = grey(60, (1, 28, 28), 3, 11);
    for m in [Method::ClasswiseNoise, Method::EmClasswise] {
        let p = run(m, &ds, &quick());
        for y in 0..3 {
            let members: Vec<usize> = (0..ds.len()).filter(|&i| ds.labels[i] == y).collect();
            let first = delta(&ds, &p.data, members[0]);
            for &i in &members[1..] {
                assert_eq!(delta(&ds, &p.data, i), first, "{}: images {} and {i} of class {y} differ", m.name(), members[0]);
            }
        }
        assert_ne!(delta(&ds, &p.data, 0), delta(&ds, &p.data, 1), "{}: classes 0 and 1 share a pattern", m.name());
    }
}

#[test]
fn ops_changes_exactly_one_pixel_per_image_at_its_class_position() {
    let ds = fashion(200);
    let p = run(Method::Ops, &ds, &PoisonOptions::default());
    let choices = ops::search(&ds).unwrap();
    let hw = ds.height * ds.width;
    for i in 0..ds.len() {
        let d = delta(&ds, &p.data, i);
        let changed: Vec<usize> = (0..hw).filter(|&q| d[q] != 0).collect();
        let (pos, colour) = &choices[ds.labels[i]];
        assert!(changed.len() <= 1 && changed.iter().all(|q| q == pos), "image {i}: changed {changed:?}, class position {pos}");
        assert_eq!(p.data.image(i)[*pos], colour[0], "image {i}: pixel not set to the class colour");
    }
    // The class pixels differ: a network can tell the classes apart by them alone.
    let mut pairs: Vec<(usize, u8)> = choices.iter().map(|(q, c)| (*q, c[0])).collect();
    pairs.sort();
    pairs.dedup();
    assert_eq!(pairs.len(), ds.classes);
    // Colour 1 on a pixel that is 0 in every image of the class is the ideal choice (std 0): the search
    // must find a position of that kind on Fashion-MNIST's black borders.
    assert!(choices.iter().all(|(_, c)| c[0] == 255));
}

#[test]
fn ar_noise_obeys_its_class_recurrence() {
    let mut rng = Rng::new(3);
    let fs = ar::filters(4, 28, 28, &mut rng).unwrap();
    for (k, f) in fs.iter().enumerate() {
        assert!((f.iter().sum::<f64>() - 1.0).abs() < 1e-9 && f[8] == 0.0, "filter {k}: {f:?}");
        let x = ar::sample(f, 28, 28, &mut rng);
        let e: f64 = x.iter().map(|v| v * v).sum();
        let own: f64 = ar::residual(f, &x, 28, 28).iter().map(|v| v * v).sum();
        assert!(own <= 1e-18 * e.max(1.0), "class {k}: own filter leaves {own} of {e}");
        for (j, g) in fs.iter().enumerate().filter(|(j, _)| *j != k) {
            let other: f64 = ar::residual(g, &x, 28, 28).iter().map(|v| v * v).sum();
            assert!(other >= 0.2 * ar::MIN_RESPONSE * e, "class {k} noise passes filter {j} ({other} of {e})");
        }
    }
    // On published images (no clipping on mid-grey data) the own filter explains the perturbation far
    // better than the others: only u8 rounding is left.
    let ds = grey(40, (1, 28, 28), 4, 2);
    let p = run(Method::Ar, &ds, &PoisonOptions::default());
    let fs = ar::filters(4, 28, 28, &mut Rng::new(0 ^ 0x6172_5f6e_6f69)).unwrap();
    let mut wins = 0;
    for i in 0..ds.len() {
        let d: Vec<f64> = delta(&ds, &p.data, i).iter().map(|&v| v as f64).collect();
        let res: Vec<f64> = fs.iter().map(|f| ar::residual(f, &d, 28, 28).iter().map(|v| v * v).sum()).collect();
        let best = (0..4).min_by(|&a, &b| res[a].total_cmp(&res[b])).unwrap();
        wins += usize::from(best == ds.labels[i]);
    }
    assert!(wins >= 38, "the class filter is the best explanation for only {wins} of 40 perturbations");
}

#[test]
fn lsp_noise_is_linearly_separable_by_class() {
    let ds = grey(100, (3, 32, 32), 5, 9);
    let p = run(Method::Lsp, &ds, &PoisonOptions::default());
    assert!(matches!(p.budget, Budget::L2(r) if (r - 6.0 / 255.0 * 3072f64.sqrt()).abs() < 1e-9), "{:?}", p.budget);
    // Patch means of the perturbation (8x8 patches, 4x4 grid, 3 channels): nearest class centroid.
    let feats: Vec<Vec<f64>> = (0..ds.len())
        .map(|i| {
            let d = delta(&ds, &p.data, i);
            let mut f = vec![0.0; 48];
            for c in 0..3 {
                for y in 0..32 {
                    for x in 0..32 {
                        f[c * 16 + (y / 8) * 4 + x / 8] += d[c * 1024 + y * 32 + x] as f64 / 64.0;
                    }
                }
            }
            f
        })
        .collect();
    let mut cent = vec![vec![0.0; 48]; 5];
    for (i, f) in feats.iter().enumerate() {
        for j in 0..48 {
            cent[ds.labels[i]][j] += f[j] / 20.0;
        }
    }
    let hits = feats
        .iter()
        .enumerate()
        .filter(|(i, f)| {
            let dist = |c: &Vec<f64>| c.iter().zip(f.iter()).map(|(a, b)| (a - b).powi(2)).sum::<f64>();
            (0..5).min_by(|&a, &b| dist(&cent[a]).total_cmp(&dist(&cent[b]))).unwrap() == ds.labels[*i]
        })
        .count();
    assert_eq!(hits, ds.len(), "nearest-centroid accuracy on the perturbations");
    // Flat patches: inside a patch every value of a channel moves the same way.
    let d = delta(&ds, &p.data, 0);
    assert!((0..8).all(|x| (d[x] - d[0]).abs() <= 1), "{:?}", &d[..8]);
}

fn member(extra: &[(String, Json)], outer: &str, inner: &str) -> f64 {
    let (_, v) = extra.iter().find(|(k, _)| k == outer).unwrap_or_else(|| panic!("no `{outer}`"));
    let Json::Obj(m) = v else { panic!("`{outer}` is not an object") };
    match m.iter().find(|(k, _)| k == inner) {
        Some((_, Json::Num(x))) => *x,
        other => panic!("`{outer}.{inner}`: {other:?}"),
    }
}

#[test]
fn em_makes_the_data_easier_for_its_surrogate_than_clean_data() {
    let ds = fashion(256);
    for m in [Method::Em, Method::Rem] {
        let o = PoisonOptions { max_rounds: 4, train_steps: 8, attack_steps: 5, batch: 64, surrogate_width: 8, ..PoisonOptions::default() };
        let p = run(m, &ds, &o);
        let (pub_ce, clean_ce) = (member(&p.extra, "surrogate", "ce_published"), member(&p.extra, "surrogate", "ce_clean"));
        assert!(pub_ce < 0.8 * clean_ce, "{}: surrogate loss on the published images {pub_ce} vs clean {clean_ce}", m.name());
    }
}

#[test]
fn tap_moves_the_classifier_towards_the_target_class() {
    let ds = fashion(300);
    // A small, briefly trained classifier is fairly robust at 8/255; at 16/255 the move is unmistakable.
    let o = PoisonOptions { eps: 16.0 / 255.0, tap_epochs: 8, tap_steps: 30, step_size: Some(1.0 / 255.0), batch: 32, surrogate_width: 16, ..PoisonOptions::default() };
    let p = run(Method::Tap, &ds, &o);
    let before = member(&p.extra, "classifier", "target_rate_clean");
    let after = member(&p.extra, "classifier", "target_rate_published");
    assert!(after > before + 0.1, "target class rate {before} -> {after}");
}

#[test]
fn dh_is_hide_with_the_shipped_weights() {
    let ds = fashion(100);
    let p = run(Method::Dh, &ds, &PoisonOptions::default());
    let Some((_, Json::Num(acc))) = p.extra.iter().find(|(k, _)| k == "reveal_class_acc") else { panic!("no reveal_class_acc") };
    assert!(*acc >= 0.95, "revealed secret nearest its class for {acc}");
    assert_eq!(p.preview_rows.len(), 1);
    // RGB data needs an RGB network: a clear error, not a crash.
    let e = poison::poison(Method::Dh, &grey(8, (3, 32, 32), 2, 1), &PoisonOptions::default(), &mut |_, _, _| {}).err().unwrap();
    assert!(e.to_string().contains("channels"), "{e}");
}

#[test]
fn l2_publishing_never_exceeds_the_budget() {
    let mut rng = Rng::new(4);
    for t in 0..200 {
        let clean: Vec<u8> = (0..300).map(|_| if t % 2 == 0 { (rng.uniform() * 256.0) as u8 } else { 0 }).collect();
        let mut d: Vec<f32> = (0..300).map(|_| rng.normal() as f32).collect();
        let r = 0.02 + rng.uniform() * 0.5;
        budget::scale_to_l2(&mut d, r);
        let mut out = Vec::new();
        budget::publish_l2(&clean, &d, r, &mut out);
        assert!(Budget::L2(r).norm(&clean, &out, 1) <= r + 1e-9);
        let mut out = Vec::new();
        budget::publish_linf(&clean, &d, r, &mut out);
        assert!(Budget::Linf(r).norm(&clean, &out, 1) <= budget::linf_levels(r) as f64 / 255.0 + 1e-12);
    }
    // The check names an image over the budget.
    let a = grey(3, (1, 8, 8), 1, 1);
    let mut b = a.clone();
    b.images[64 + 5] = b.images[64 + 5].wrapping_add(20);
    let e = Budget::Linf(8.0 / 255.0).check(&a, &b).unwrap_err().to_string();
    assert!(e.contains("image 1"), "{e}");
    let _ = lsp::default_patch(28, 28);
}

#[test]
fn apbench_layout_round_trips() {
    let d = tmp("apbench");
    let ds = grey(23, (3, 32, 32), 4, 6);
    publish::write_pngs(&d.join("pngs"), &ds).unwrap();
    assert!(d.join("pngs/0.png").is_file() && d.join("pngs/22.png").is_file());
    let back = data::load(&format!("pngs:{}", d.join("pngs").display()), Split::Train).unwrap();
    assert_eq!(back.images, ds.images);
    assert_eq!(back.labels, ds.labels);
    assert_eq!((back.channels, back.height, back.width, back.classes), (3, 32, 32, 4));
    // A labels file with a missing image is an error naming the file.
    std::fs::remove_file(d.join("pngs/7.png")).unwrap();
    let e = data::load(&format!("pngs:{}", d.join("pngs").display()), Split::Train).unwrap_err().to_string();
    assert!(e.contains("7.png"), "{e}");
    assert!(data::load(&format!("pngs:{}", d.join("pngs").display()), Split::Test).is_err());
}

fn read_json(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn cli_writes_what_hide_writes_and_the_apbench_layout() {
    let d = tmp("cli");
    let out = d.join("lsp");
    let o = bin(&["poison", "--method", "lsp", "--data", "default", "--subset", "200", "--layout", "apbench", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    for f in ["labels.csv", "classes.txt", "perturbation.json", "preview.png", "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "apbench/0.png", "apbench/199.png", "apbench/labels.txt"] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let j = read_json(&out.join("perturbation.json"));
    for k in ["\"method\": \"lsp\"", "\"norm\": \"l2\"", "\"psnr_db\"", "\"ssim\"", "\"linf\"", "\"seconds\""] {
        assert!(j.contains(k), "{k} not in {j}");
    }
    // Every consumer reads it: folder:, idx: and pngs: give the same 200 images (in their own orders).
    let f = data::load(&format!("folder:{}", out.display()), Split::Train).unwrap();
    let i = data::load(&format!("idx:{}", out.display()), Split::Train).unwrap();
    let p = data::load(&format!("pngs:{}", out.join("apbench").display()), Split::Train).unwrap();
    assert_eq!((f.len(), i.len(), p.len()), (200, 200, 200));
    assert_eq!(i.images, p.images);
    assert_eq!(i.labels, p.labels);
    let mut a: Vec<&[u8]> = (0..200).map(|k| f.image(k)).collect();
    let mut b: Vec<&[u8]> = (0..200).map(|k| i.image(k)).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    // Rerunning onto the same output replaces it as a whole.
    let o = bin(&["poison", "--method", "ops", "--data", "default", "--subset", "200", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(read_json(&out.join("perturbation.json")).contains("\"method\": \"ops\""));
    assert!(!out.join("apbench").exists(), "the old output's files must not survive a rewrite");
}

#[test]
fn cli_refuses_bad_input_before_working() {
    let d = tmp("bad");
    let file = d.join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let busy = d.join("busy");
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), b"mine").unwrap();
    let out = d.join("o");
    let o_s = out.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["poison", "--method", "nope", "--data", "default", "--out", o_s], "unknown --method"),
        (vec!["poison", "--data", "default", "--out", o_s], "--method"),
        (vec!["poison", "--method", "ops", "--data", "default", "--out", file.to_str().unwrap()], "not a directory"),
        (vec!["poison", "--method", "ops", "--data", "default", "--out", busy.to_str().unwrap()], "not a deephide output"),
        (vec!["poison", "--method", "ops", "--data", "default", "--out", o_s, "--resume"], "no long loop"),
        (vec!["poison", "--method", "em", "--data", "default", "--out", o_s, "--resume"], "no state"),
        (vec!["poison", "--method", "em", "--data", "default", "--out", o_s, "--eps", "2"], "outside [0, 1]"),
        (vec!["poison", "--method", "em", "--data", "default", "--out", o_s, "--attack-steps", "0"], "--attack-steps"),
        (vec!["poison", "--method", "tap", "--data", "default", "--out", o_s, "--features", "/nonexistent.safetensors"], "no such file"),
        (vec!["poison", "--method", "ops", "--data", "default", "--out", o_s, "--layout", "zip"], "--layout"),
        (vec!["poison", "--method", "ops", "--data", "idx:/nonexistent", "--out", o_s], "nonexistent"),
    ];
    for (args, want) in cases {
        let o = bin(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        let t = text(&o);
        assert!(t.contains(want), "{args:?}: expected `{want}` in: {t}");
        assert!(!t.contains("panicked"), "{args:?}: {t}");
    }
    assert_eq!(std::fs::read(busy.join("notes.txt")).unwrap(), b"mine");
    assert!(!out.exists());
    let o = bin(&["poison", "--list"]);
    assert!(o.status.success());
    for m in poison::ALL {
        assert!(text(&o).contains(m.name()), "--list misses {}", m.name());
    }
}

#[test]
fn an_interrupted_em_run_resumes_to_the_same_images() {
    let d = tmp("resume");
    let flags = ["--method", "em", "--data", "default", "--subset", "600", "--surrogate-width", "8", "--max-rounds", "4", "--stop-acc", "1", "--train-steps", "4", "--batch", "64"];
    let full = d.join("full");
    let mut args: Vec<&str> = vec!["poison"];
    args.extend(flags);
    let full_s = full.to_str().unwrap().to_string();
    let o = bin(&[args.clone(), vec!["--out", &full_s]].concat());
    assert!(o.status.success(), "{}", text(&o));
    // The same run, killed once its state file says one round is done, then resumed.
    let cut = d.join("cut");
    let cut_s = cut.to_str().unwrap().to_string();
    let state = poison::resume::state_path(&cut);
    let mut child = Command::new(env!("CARGO_BIN_EXE_deephide"))
        .args([args.clone(), vec!["--out", &cut_s]].concat())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while !state.is_file() {
        assert!(t0.elapsed().as_secs() < 300, "no state file after 300 s");
        if let Some(s) = child.try_wait().unwrap() {
            panic!("finished ({s}) before it could be interrupted");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    let _ = child.wait();
    assert!(!cut.exists(), "a killed run must not leave a published set");
    let o = bin(&[args.clone(), vec!["--out", &cut_s, "--resume"]].concat());
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("resumed em"), "{}", text(&o));
    assert!(!state.exists(), "the state file stays after success");
    let a = std::fs::read(full.join("train-images-idx3-ubyte.gz")).unwrap();
    let b = std::fs::read(cut.join("train-images-idx3-ubyte.gz")).unwrap();
    assert!(a == b, "the resumed run published different images");
}
