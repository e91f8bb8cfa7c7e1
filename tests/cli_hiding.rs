//! The hiding commands end to end through the binary: train, hide a data set, hide and reveal one image,
//! and clear errors (exit 2, one line, no panic) for bad input.

use std::path::{Path, PathBuf};

use deephide::data::{self, Dataset, Split};
use deephide::Rng;

#[path = "common/cli.rs"]
mod cli;
use cli::{bin, text};

fn tmp(name: &str) -> PathBuf {
    cli::tmp("cli", name)
}

/// A tiny gray data set (48 images of 8x8, 4 classes) written as IDX.
fn tiny_idx(dir: &Path) -> String {
    cli::tiny_idx(dir, 48, 4)
}

#[test]
fn train_hide_reveal_round_trip() {
    let d = tmp("round");
    let spec = tiny_idx(&d.join("data"));
    let out = d.join("run");
    let o = bin(&["train", "--data", &spec, "--semantic", "single", "--out", out.to_str().unwrap(), "--steps", "6", "--blocks", "1", "--growth", "4", "--batch", "8", "--ckpt-every", "3", "--secret-variants", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    for f in ["hiding.safetensors", "checkpoint.safetensors", "train_log.csv", "loss_curves.png", "psnr_curves.png"] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    assert_eq!(std::fs::read_to_string(out.join("train_log.csv")).unwrap().lines().count(), 7);
    // Resume to 9 steps: three more rows.
    let o = bin(&["train", "--data", &spec, "--semantic", "single", "--out", out.to_str().unwrap(), "--steps", "9", "--blocks", "1", "--growth", "4", "--batch", "8", "--secret-variants", "2", "--resume", out.join("checkpoint.safetensors").to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(out.join("train_log.csv")).unwrap().lines().count(), 10);

    let w = out.join("hiding.safetensors");
    let prot = d.join("protected");
    let o = bin(&["hide", "--weights", w.to_str().unwrap(), "--data", &spec, "--semantic", "single", "--secret-variants", "2", "--out", prot.to_str().unwrap(), "--eps", "8/255"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("48 images"), "{}", text(&o));
    for f in ["labels.csv", "perturbation.json", "preview.png", "train-images-idx3-ubyte.gz"] {
        assert!(prot.join(f).exists(), "{f} missing");
    }
    // The protected set reads back in both formats, labels intact, and stays within the budget.
    let clean = data::load(&spec, Split::Train).unwrap();
    // The image folder lists images class by class (file names keep the original index), IDX keeps order.
    let mut by_class: Vec<usize> = (0..clean.len()).collect();
    by_class.sort_by_key(|&i| clean.labels[i]);
    for (s, order) in [(format!("folder:{}", prot.display()), by_class), (format!("idx:{}", prot.display()), (0..clean.len()).collect())] {
        let p = data::load(&s, Split::Train).unwrap();
        let reference = clean.subset(&order);
        assert_eq!(p.labels, reference.labels, "{s}");
        let linf = p.images.iter().zip(&reference.images).map(|(a, b)| (*a as i32 - *b as i32).abs()).max().unwrap();
        assert!(linf <= 8, "{s}: L-inf {linf}/255 over the budget");
    }
    let json = std::fs::read_to_string(prot.join("perturbation.json")).unwrap();
    assert!(json.contains("\"psnr_db\"") && json.contains("\"ssim\"") && json.contains("\"linf\""), "{json}");

    // One image: hide, then reveal and rank the classes.
    let cover = d.join("cover.png");
    let secret = d.join("secret.png");
    let img: Vec<f32> = clean.image(0).iter().map(|&v| v as f32 / 255.0).collect();
    deephide::image_io::write_png_chw(&cover, &img, 1, 8, 8).unwrap();
    let sec = deephide::semantic::SemanticSource::parse("single", 0).unwrap().image(2, 0, (8, 8), 1).unwrap();
    deephide::image_io::write_png_chw(&secret, &sec, 1, 8, 8).unwrap();
    let stego = d.join("stego.png");
    let o = bin(&["hide", "--weights", w.to_str().unwrap(), "--cover", cover.to_str().unwrap(), "--secret", secret.to_str().unwrap(), "--out", stego.to_str().unwrap(), "--eps", "0"]);
    assert!(o.status.success() && stego.exists(), "{}", text(&o));
    let revealed = d.join("revealed.png");
    let o = bin(&["reveal", "--weights", w.to_str().unwrap(), "--image", stego.to_str().unwrap(), "--out", revealed.to_str().unwrap(), "--semantic", "single", "--classes", "4", "--per-class", "1"]);
    assert!(o.status.success() && revealed.exists(), "{}", text(&o));
    assert!(text(&o).contains("closest class"), "{}", text(&o));
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn bad_input_is_a_clear_error() {
    let d = tmp("errors");
    let missing = d.join("nope.safetensors");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["hide".into(), "--weights".into(), missing.display().to_string(), "--data".into(), "default".into(), "--out".into(), d.join("o").display().to_string()], "nope.safetensors"),
        (vec!["train".into(), "--data".into(), "idx:/nonexistent/dir".into(), "--out".into(), d.join("t").display().to_string(), "--steps".into(), "1".into()], "/nonexistent/dir"),
        (vec!["train".into(), "--data".into(), "default".into(), "--out".into(), d.join("t").display().to_string(), "--z".into(), "laplace".into()], "laplace"),
        (vec!["hide".into(), "--weights".into(), missing.display().to_string(), "--out".into(), d.join("o").display().to_string(), "--eps".into(), "8/0x".into()], "--eps"),
    ];
    // A corrupt weights file.
    let corrupt = d.join("corrupt.safetensors");
    std::fs::write(&corrupt, b"not a safetensors file at all").unwrap();
    let mut cases = cases;
    cases.push((vec!["reveal".into(), "--weights".into(), corrupt.display().to_string(), "--image".into(), "x.png".into(), "--out".into(), "y.png".into()], "corrupt.safetensors"));
    for (args, needle) in cases {
        let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let o = bin(&a);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{a:?}: {t}");
        assert!(t.contains(needle), "{a:?}: message does not name `{needle}`: {t}");
        assert!(!t.contains("panicked"), "{a:?}: {t}");
    }
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn protected_rgb_32x32_data_is_also_written_as_cifar10_batches() {
    let d = tmp("rgb");
    let mut rng = Rng::new(2);
    let n = 20;
    let images: Vec<u8> = (0..n * 3 * 32 * 32).map(|_| (rng.uniform() * 255.0) as u8).collect();
    let labels: Vec<usize> = (0..n).map(|i| i % 10).collect();
    let ds = Dataset::new("rgb", images, labels, (3, 32, 32), 10).unwrap();
    let spec = format!("folder:{}", d.join("data").display());
    data::save(&spec, &ds, Split::Train).unwrap();
    let out = d.join("run");
    let o = bin(&["train", "--data", &spec, "--semantic", "noise", "--out", out.to_str().unwrap(), "--steps", "2", "--blocks", "1", "--growth", "4", "--batch", "4", "--secret-variants", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    let prot = d.join("protected");
    let o = bin(&["hide", "--weights", out.join("hiding.safetensors").to_str().unwrap(), "--data", &spec, "--semantic", "noise", "--secret-variants", "1", "--out", prot.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let back = data::load(&format!("cifar10:{}", prot.display()), Split::Train).unwrap();
    assert_eq!(back.len(), n);
    let folder = data::load(&format!("folder:{}", prot.display()), Split::Train).unwrap();
    // Same images either way (the folder lists them class by class).
    let mut by_class: Vec<usize> = (0..n).collect();
    by_class.sort_by_key(|&i| back.labels[i]);
    assert_eq!(back.subset(&by_class).images, folder.images);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn default_training_is_bounded_and_hide_applies_the_bound() {
    let d = tmp("bounded");
    let spec = tiny_idx(&d.join("data"));
    let meta = |p: &Path| deephide::safetensors_io::load(p).unwrap().metadata;
    // Defaults: bounded output at 8/255 stored in the weights; the plain method has no bound.
    let out = d.join("run");
    let o = bin(&["train", "--data", &spec, "--out", out.to_str().unwrap(), "--steps", "4", "--blocks", "1", "--growth", "4", "--batch", "8"]);
    assert!(o.status.success(), "{}", text(&o));
    let w = out.join("hiding.safetensors");
    let b: f64 = meta(&w).get("deephide.bound_eps").expect("bound missing from the metadata").parse().unwrap();
    assert!((b - 8.0 / 255.0).abs() < 1e-9, "{b}");
    let plain = d.join("plain");
    let o = bin(&["train", "--data", &spec, "--out", plain.to_str().unwrap(), "--steps", "2", "--blocks", "1", "--growth", "4", "--batch", "8", "--bound-eps", "0", "--train-quantize", "false", "--w-align", "0", "--w-fill", "0", "--w-guide", "10"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!meta(&plain.join("hiding.safetensors")).contains_key("deephide.bound_eps"));
    // hide without a clip (--eps 0) still publishes within 8/255, because the bound applies.
    let prot = d.join("protected");
    let o = bin(&["hide", "--weights", w.to_str().unwrap(), "--data", &spec, "--out", prot.to_str().unwrap(), "--eps", "0"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("bounded output"), "{}", text(&o));
    let json = std::fs::read_to_string(prot.join("perturbation.json")).unwrap();
    assert!(json.contains("\"reveal_psnr_db\""), "{json}");
    let acc: f64 = json.split("\"reveal_class_acc\": ").nth(1).and_then(|t| t.trim_end().trim_end_matches('}').parse().ok()).expect("reveal_class_acc");
    assert!((0.0..=1.0).contains(&acc), "{json}");
    let clean = data::load(&spec, Split::Train).unwrap();
    let p = data::load(&format!("idx:{}", prot.display()), Split::Train).unwrap();
    let linf = p.images.iter().zip(&clean.images).map(|(a, b)| (*a as i32 - *b as i32).abs()).max().unwrap();
    assert!(linf <= 8, "L-inf {linf}/255 over the bound");
    // Bad lever values are clear errors.
    for (flag, val) in [("--distort", "sharpen"), ("--bound-eps", "2"), ("--train-quantize", "maybe"), ("--align-target", "square"), ("--w-em", "nan"), ("--w-adv", "1")] {
        let o = bin(&["train", "--data", &spec, "--out", d.join("bad").to_str().unwrap(), "--steps", "1", flag, val]);
        assert_eq!(o.status.code(), Some(2), "{flag} {val}: {}", text(&o));
        assert!(!text(&o).contains("panicked"), "{}", text(&o));
    }
    std::fs::remove_dir_all(&d).ok();
}

/// The shipped hiding network (weights/hiding-fashion-mnist-align-sign.safetensors, the defaults trained on
/// the full Fashion-MNIST, see its .md) protects bundled images within 8/255, and the secret it hides is
/// still recoverable: the revealed image is nearest to its own class's semantic image.
#[test]
fn shipped_hiding_weights_protect_within_budget_and_reveal_the_class() {
    let w = Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/hiding-fashion-mnist-align-sign.safetensors");
    let meta = deephide::safetensors_io::load(&w).unwrap().metadata;
    let b: f64 = meta.get("deephide.bound_eps").expect("bound missing").parse().unwrap();
    assert!((b - 8.0 / 255.0).abs() < 1e-9, "{b}");
    let d = tmp("shipped");
    let prot = d.join("protected");
    let o = bin(&["hide", "--weights", w.to_str().unwrap(), "--data", "default", "--subset", "200", "--out", prot.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let json = std::fs::read_to_string(prot.join("perturbation.json")).unwrap();
    let field = |key: &str, sub: &str| -> f64 {
        let after = json.split(&format!("\"{key}\": ")).nth(1).unwrap_or_else(|| panic!("{key} missing: {json}"));
        let after = if sub.is_empty() { after } else { after.split(&format!("\"{sub}\": ")).nth(1).unwrap() };
        after.split([',', '}']).next().unwrap().trim().parse().unwrap()
    };
    assert_eq!(field("images", ""), 200.0);
    assert!(field("linf", "max") <= 8.0 / 255.0 + 1e-6, "{json}");
    // Measured on all 60,000 training images: 33.1 dB, SSIM 0.945, reveal 16.6 dB, class 100%.
    assert!(field("psnr_db", "mean") > 30.0, "{json}");
    assert!(field("ssim", "mean") > 0.9, "{json}");
    assert!(field("reveal_psnr_db", "mean") > 12.0, "{json}");
    assert!(field("reveal_class_acc", "") >= 0.95, "{json}");
    std::fs::remove_dir_all(&d).ok();
}

/// `hide --em-epochs`: the sample-wise error-minimising refinement runs after hiding, stays within the
/// budget, and is recorded in perturbation.json; bad refinement options are clear errors.
#[test]
fn hide_with_error_minimising_refinement_stays_in_budget_and_records_it() {
    let w = Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/hiding-fashion-mnist-align-sign.safetensors");
    let d = tmp("emrefine");
    let prot = d.join("protected");
    let o = bin(&["hide", "--weights", w.to_str().unwrap(), "--data", "default", "--subset", "200", "--out", prot.to_str().unwrap(), "--em-epochs", "2", "--em-stop", "1", "--em-distort", "jpeg10"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("em pass 2: surrogate ce"), "{}", text(&o));
    let json = std::fs::read_to_string(prot.join("perturbation.json")).unwrap();
    assert!(json.contains("\"em_refine\": {\"options\": \"2 passes max, 5 steps of 1.00/255"), "{json}");
    assert!(json.contains("distortions jpeg10"), "{json}");
    assert_eq!(json.matches("\"moved\"").count(), 2, "{json}");
    let clean = data::balanced_subset(&data::load("default", Split::Train).unwrap(), Some(200), &mut Rng::new(0));
    let p = data::load(&format!("folder:{}", prot.display()), Split::Train).unwrap();
    assert_eq!(p.len(), 200);
    // folder: lists the images by class; compare each published image with its clean version by index.
    let csv = std::fs::read_to_string(prot.join("labels.csv")).unwrap();
    assert_eq!(csv.lines().count(), 201);
    let idx = data::load(&format!("idx:{}", prot.display()), Split::Train).unwrap();
    assert_eq!(idx.labels, clean.labels);
    let linf = idx.images.iter().zip(&clean.images).map(|(a, b)| (*a as i32 - *b as i32).abs()).max().unwrap();
    assert!(linf <= 8, "L-inf {linf}/255 over the budget");
    assert!(idx.images != clean.images);
    for (flag, val) in [("--em-distort", "sharpen"), ("--em-step-size", "0"), ("--em-stop", "2"), ("--em-lr", "-1")] {
        let o = bin(&["hide", "--weights", w.to_str().unwrap(), "--data", "default", "--subset", "20", "--out", d.join("bad").to_str().unwrap(), "--em-epochs", "1", flag, val]);
        assert_eq!(o.status.code(), Some(2), "{flag} {val}: {}", text(&o));
        assert!(!text(&o).contains("panicked"), "{}", text(&o));
    }
    std::fs::remove_dir_all(&d).ok();
}
