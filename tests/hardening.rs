//! Hostile input and crashes, one test per case of the hardening issue: corrupt weights, oversized image
//! headers, absurd metadata, kill -9 during train and hide, non-regular outputs, options checked before
//! the work, reveal on images without a hidden one, resume past --steps, and two runs on one output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use deephide::data::{self, Split};
use deephide::safetensors_io::{self, SaveDType};
use deephide::{Rng, Tensor};

const SHIPPED: &str = "weights/hiding-fashion-mnist-align-sign.safetensors";

#[path = "common/cli.rs"]
mod cli;
use cli::{bin, text, tiny_idx};

fn tmp(name: &str) -> PathBuf {
    cli::tmp("hard", name)
}

/// Exit 2, one clear message containing `want`, no panic.
fn refused(o: &Output, want: &str) {
    let t = text(o);
    assert_eq!(o.status.code(), Some(2), "expected a refusal with `{want}`: {t}");
    assert!(t.contains(want), "expected `{want}` in: {t}");
    assert!(!t.contains("panicked") && !t.contains("RUST_BACKTRACE"), "{t}");
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The shipped weights with `edit` applied to their tensors and metadata.
fn edited_weights(dir: &Path, name: &str, edit: impl FnOnce(&mut BTreeMap<String, Tensor>, &mut BTreeMap<String, String>)) -> PathBuf {
    let w = safetensors_io::load(Path::new(SHIPPED)).unwrap();
    let (mut t, mut m) = (w.tensors, w.metadata);
    edit(&mut t, &mut m);
    let p = dir.join(name);
    let list: Vec<(String, Tensor)> = t.into_iter().collect();
    safetensors_io::save(&p, &list, &m, SaveDType::F32).unwrap();
    p
}

fn set_first(t: &mut BTreeMap<String, Tensor>, key: &str, v: f32) {
    let x = &t[key];
    let mut d = x.to_vec_f32().unwrap();
    d[0] = v;
    let shape = x.shape().to_vec();
    t.insert(key.into(), Tensor::from_vec(d, &shape).unwrap());
}

#[test]
fn row1_non_finite_or_absurd_weights_are_refused_naming_the_key() {
    let d = tmp("nan");
    for (i, v) in [f32::NAN, f32::INFINITY, 1e30].into_iter().enumerate() {
        let w = edited_weights(&d, &format!("w{i}.safetensors"), |t, _| set_first(t, "inv1.f.conv1.weight", v));
        let o = bin(&["hide", "--weights", s(&w), "--data", "default", "--subset", "20", "--out", s(&d.join(format!("o{i}")))]);
        refused(&o, "inv1.f.conv1.weight");
        assert!(!d.join(format!("o{i}")).exists());
    }
}

#[test]
fn row2_an_oversized_jpeg_header_is_refused_before_decoding() {
    let d = tmp("jpeg");
    let root = d.join("set");
    for class in ["a", "b"] {
        std::fs::create_dir_all(root.join(class)).unwrap();
        let px: Vec<u8> = (0..64).map(|i| (i * 3) as u8).collect();
        let jpg = deephide::countermeasures::jpeg::encode(&px, 1, 8, 8, 75).unwrap();
        std::fs::write(root.join(class).join("0.jpg"), &jpg).unwrap();
    }
    // Patch the SOF0 frame header of one file to declare 65000 x 65000 pixels.
    let p = root.join("b/0.jpg");
    let mut bytes = std::fs::read(&p).unwrap();
    let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).expect("a SOF0 marker");
    for k in [sof + 5, sof + 7] {
        bytes[k] = 0xFD;
        bytes[k + 1] = 0xE8;
    }
    std::fs::write(&p, &bytes).unwrap();
    // Under a 1 GiB address-space limit: a decoder that trusted the header would need 4 GB.
    let t0 = Instant::now();
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v 1048576; exec '{}' poison --method ops --data 'folder:{}' --out '{}'", env!("CARGO_BIN_EXE_deephide"), root.display(), d.join("o").display()))
        .output()
        .unwrap();
    refused(&o, "above the limit");
    assert!(text(&o).contains("0.jpg"), "{}", text(&o));
    assert!(t0.elapsed() < Duration::from_secs(20));
    // The limit is configurable, and applies to PNG headers too.
    std::fs::remove_file(&p).unwrap();
    std::fs::write(root.join("b/0.png"), deephide::image_io::encode_png(&deephide::image_io::Image8::filled(8, 8, 1, 9).unwrap()).unwrap()).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_deephide"))
        .args(["poison", "--method", "ops", "--data", &format!("folder:{}", root.display()), "--out", s(&d.join("o"))])
        .env("DEEPHIDE_MAX_PIXELS", "32")
        .output()
        .unwrap();
    refused(&o, "DEEPHIDE_MAX_PIXELS");
}

#[test]
fn row3_metadata_is_checked_against_the_tensors_first() {
    let d = tmp("meta");
    let w = edited_weights(&d, "w.safetensors", |_, m| {
        m.insert("blocks".into(), "1000000".into());
    });
    let t0 = Instant::now();
    let o = bin(&["hide", "--weights", s(&w), "--data", "default", "--subset", "20", "--out", s(&d.join("o"))]);
    refused(&o, "metadata says blocks = 1000000 but the tensors hold 4");
    assert!(t0.elapsed() < Duration::from_secs(20));
    // Another model's weights named as a hiding network.
    let o = bin(&["hide", "--weights", "weights/resnet18-w16-fashion-mnist-subset.safetensors", "--data", "default", "--out", s(&d.join("o"))]);
    refused(&o, "not a hiding network");
}

fn wait_for(cond: impl Fn() -> bool, child: &mut std::process::Child, what: &str) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < Duration::from_secs(300), "timed out waiting for {what}");
        if let Some(st) = child.try_wait().unwrap() {
            panic!("the process ended ({st}) before {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}


#[test]
fn row4_kill_during_train_then_resume_keeps_the_log_consistent() {
    let d = tmp("train");
    let spec = tiny_idx(&d.join("data"), 48, 4);
    let out = d.join("run");
    let args = ["train", "--data", &spec, "--semantic", "single", "--out", s(&out), "--blocks", "1", "--growth", "4", "--batch", "8", "--ckpt-every", "5"];
    let mut child = Command::new(env!("CARGO_BIN_EXE_deephide")).args(args).args(["--steps", "100000"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let ckpt = out.join("checkpoint.safetensors");
    let log = out.join("train_log.csv");
    // Killed once the log has run past the first checkpoint.
    wait_for(|| ckpt.exists() && std::fs::read_to_string(&log).map(|t| t.lines().count() > 12).unwrap_or(false), &mut child, "a checkpoint and more log rows");
    child.kill().unwrap();
    let _ = child.wait();
    let stale = out.join(".checkpoint.safetensors.tmp-4000000-0");
    std::fs::write(&stale, b"half a checkpoint").unwrap();
    let at = safetensors_io::load(&ckpt).unwrap().metadata.get("train.step").cloned();
    let o = bin(&[&args[..], &["--steps", "60", "--resume", s(&ckpt)]].concat());
    assert!(o.status.success(), "{}", text(&o));
    assert!(!stale.exists(), "a stale temporary checkpoint was left");
    let steps: Vec<usize> = std::fs::read_to_string(&log).unwrap().lines().skip(1).map(|l| l.split(',').next().unwrap().parse().unwrap()).collect();
    assert_eq!(steps, (1..=60).collect::<Vec<_>>(), "log rows after resume (checkpoint step {at:?})");
}

#[test]
fn row5_a_single_image_output_must_be_a_regular_file() {
    let d = tmp("devfull");
    let img = d.join("a.png");
    deephide::image_io::write_png(&img, &deephide::image_io::Image8::filled(8, 8, 1, 100).unwrap()).unwrap();
    let o = bin(&["hide", "--weights", SHIPPED, "--cover", s(&img), "--secret", s(&img), "--out", "/dev/full"]);
    refused(&o, "not a regular file");
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata("/dev/full").unwrap().file_type().is_char_device());
    let o = bin(&["hide", "--weights", SHIPPED, "--cover", s(&img), "--secret", s(&img), "--out", s(&d)]);
    refused(&o, "not a regular file");
}

#[test]
fn row6_options_paths_and_limits_are_checked_before_the_long_work() {
    let d = tmp("early");
    let file = d.join("f");
    std::fs::write(&file, b"x").unwrap();
    let t0 = Instant::now();
    refused(&bin(&["hide", "--weights", SHIPPED, "--data", "fashion-mnist", "--features", SHIPPED, "--out", s(&d.join("o"))]), "--features");
    refused(&bin(&["hide", "--weights", SHIPPED, "--data", "fashion-mnist", "--out", s(&file)]), "not a directory");
    refused(&bin(&["hide", "--weights", SHIPPED, "--data", "fashion-mnist", "--out", "/proc/deephide-nope/o"]), "/proc");
    assert!(t0.elapsed() < Duration::from_secs(30), "the refusals took {:?}: work ran before the checks", t0.elapsed());
    assert!(!d.join("o").exists());
    // Many classes: the IDX copy (one-byte labels) is left out, the set is still published.
    let root = d.join("many");
    for k in 0..300 {
        let c = root.join(format!("c{k:03}"));
        std::fs::create_dir_all(&c).unwrap();
        deephide::image_io::write_png(c.join("0.png"), &deephide::image_io::Image8::filled(8, 8, 1, (k % 200) as u8).unwrap()).unwrap();
    }
    let o = bin(&["poison", "--method", "classwise-noise", "--data", &format!("folder:{}", root.display()), "--out", s(&d.join("many-out"))]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(d.join("many-out/perturbation.json").exists() && !d.join("many-out/train-labels-idx1-ubyte.gz").exists());
}

#[test]
fn row7_a_killed_hide_leaves_no_set_that_looks_complete_and_a_rerun_cleans_up() {
    let d = tmp("killhide");
    let out = d.join("protected");
    let args = ["hide", "--weights", SHIPPED, "--data", "default", "--out", s(&out)];
    let mut child = Command::new(env!("CARGO_BIN_EXE_deephide")).args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let tmpdir = d.join(format!(".protected.tmp-{}", child.id()));
    // Killed while the set is being written.
    wait_for(|| tmpdir.join("train").exists() || tmpdir.join(".train.").exists() || std::fs::read_dir(&tmpdir).map(|r| r.count() > 0).unwrap_or(false), &mut child, "the set being written");
    child.kill().unwrap();
    let _ = child.wait();
    assert!(!out.exists(), "a killed hide published a set");
    let o = bin(&args);
    assert!(o.status.success(), "{}", text(&o));
    assert!(out.join("perturbation.json").exists());
    let left: Vec<String> = std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).filter(|n| n.starts_with(".protected.")).collect();
    assert!(left.is_empty(), "leftovers: {left:?}");
    // A reader refuses a set whose marker is missing.
    std::fs::remove_file(out.join("perturbation.json")).unwrap();
    let e = data::load(&format!("folder:{}", out.display()), Split::Train).unwrap_err().to_string();
    assert!(e.contains("incomplete"), "{e}");
}

#[test]
fn row8_reveal_refuses_bad_counts_and_finds_nothing_in_clean_images() {
    let d = tmp("reveal");
    refused(&bin(&["reveal", "--weights", SHIPPED, "--image", "x.png", "--out", s(&d.join("r.png")), "--per-class", "0"]), "--per-class");
    refused(&bin(&["reveal", "--weights", SHIPPED, "--image", "x.png", "--out", s(&d.join("r.png")), "--classes", "0"]), "--classes");
    // Protected images from the test split (not the calibration images), and the same images clean.
    let test = data::load("default", Split::Test).unwrap();
    let few = data::balanced_subset(&test, Some(10), &mut Rng::new(3));
    let clean_dir = d.join("clean");
    data::save(&format!("folder:{}", clean_dir.display()), &few, Split::Train).unwrap();
    let o = bin(&["hide", "--weights", SHIPPED, "--data", &format!("folder:{}", clean_dir.display()), "--out", s(&d.join("prot"))]);
    assert!(o.status.success(), "{}", text(&o));
    let pngs = |dir: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = walk(&dir.join("train"));
        v.sort();
        v
    };
    let mut found = 0;
    for p in pngs(&d.join("prot")) {
        let o = bin(&["reveal", "--weights", SHIPPED, "--image", s(&p), "--out", s(&d.join("r.png"))]);
        found += usize::from(o.status.code() == Some(0) && text(&o).contains("closest class"));
    }
    assert!(found >= 9, "a hidden image was found in {found} of 10 protected images");
    let mut extra = Vec::new();
    for (name, img) in [
        ("black", deephide::image_io::Image8::filled(28, 28, 1, 0).unwrap()),
        ("white", deephide::image_io::Image8::filled(28, 28, 1, 255).unwrap()),
        ("random", {
            let mut r = Rng::new(5);
            deephide::image_io::Image8::new(28, 28, 1, (0..784).map(|_| (r.uniform() * 255.0) as u8).collect()).unwrap()
        }),
    ] {
        let p = d.join(format!("{name}.png"));
        deephide::image_io::write_png(&p, &img).unwrap();
        extra.push(p);
    }
    let mut wrong = Vec::new();
    for p in pngs(&clean_dir).into_iter().chain(extra) {
        let o = bin(&["reveal", "--weights", SHIPPED, "--image", s(&p), "--out", s(&d.join("r.png"))]);
        if !(o.status.code() == Some(1) && text(&o).contains("no hidden image found")) {
            wrong.push(format!("{}: {}", p.display(), text(&o).lines().last().unwrap_or("")));
        }
    }
    assert!(wrong.len() <= 1, "images without a hidden one reported as protected: {wrong:#?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "png") {
            out.push(p);
        }
    }
    out
}

#[test]
fn row9_resume_past_steps_is_an_error() {
    let d = tmp("past");
    let spec = tiny_idx(&d.join("data"), 32, 4);
    let out = d.join("run");
    let base = ["train", "--data", &spec, "--semantic", "single", "--out", s(&out), "--blocks", "1", "--growth", "4", "--batch", "8", "--ckpt-every", "10"];
    let o = bin(&[&base[..], &["--steps", "20"]].concat());
    assert!(o.status.success(), "{}", text(&o));
    let o = bin(&[&base[..], &["--steps", "12", "--resume", s(&out.join("checkpoint.safetensors"))]].concat());
    refused(&o, "past --steps 12");
}

#[test]
fn row10_bad_option_values_are_refused_by_name() {
    let d = tmp("opts");
    let o = s(&d.join("o")).to_string();
    for (args, want) in [
        (vec!["hide", "--weights", SHIPPED, "--data", "default", "--out", &o, "--batch", "0"], "--batch"),
        (vec!["hide", "--weights", SHIPPED, "--data", "default", "--out", &o, "--secret-variants", "0"], "--secret-variants"),
        (vec!["hide", "--weights", SHIPPED, "--data", "default", "--out", &o, "--eps", "nan"], "--eps"),
        (vec!["hide", "--weights", SHIPPED, "--data", "default", "--out", &o, "--eps=-1"], "--eps"),
        (vec!["hide", "--weights", SHIPPED, "--data", "default", "--out", &o, "--em-width", "0"], "--em-width"),
        (vec!["train", "--data", "default", "--semantic", "single", "--out", &o, "--w-highfreq", "1", "--highfreq-levels", "10"], "--highfreq-levels"),
        (vec!["train", "--data", "default", "--semantic", "single", "--out", &o, "--em-width", "0"], "--em-width"),
        (vec!["train", "--data", "default", "--semantic", "single", "--out", &o, "--clip=-1"], "--clip"),
        (vec!["train", "--data", "default", "--semantic", "single", "--out", &o, "--clip", "nan"], "--clip"),
    ] {
        refused(&bin(&args), want);
    }
}

#[test]
fn row11_two_runs_on_one_output_do_not_race() {
    let d = tmp("lock");
    let out = d.join("o");
    // A live process (this test) holds the claim.
    std::fs::write(d.join(".o.lock"), std::process::id().to_string()).unwrap();
    refused(&bin(&["poison", "--method", "ops", "--data", "default", "--out", s(&out)]), "in use");
    refused(&bin(&["hide", "--weights", SHIPPED, "--data", "default", "--out", s(&out)]), "in use");
    // A claim left by a dead process is taken over.
    std::fs::write(d.join(".o.lock"), "4000000").unwrap();
    let o = bin(&["poison", "--method", "ops", "--data", "default", "--subset", "50", "--out", s(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!d.join(".o.lock").exists());
}

#[test]
fn evaluate_leaves_no_report_dir_on_early_errors() {
    let d = tmp("evrep");
    let rep = d.join("rep");
    refused(&bin(&["evaluate", "--train", "idx:/nonexistent", "--test", "default", "--report", s(&rep)]), "nonexistent");
    assert!(!rep.exists());
}

#[test]
fn wgpu_runs_without_mesa_complaining_about_the_runtime_dir() {
    let o = Command::new(env!("CARGO_BIN_EXE_deephide")).args(["gradcheck", "--device", "wgpu", "--op", "relu"]).env_remove("XDG_RUNTIME_DIR").output().unwrap();
    let t = text(&o);
    if !o.status.success() && (t.contains("adapter") || t.contains("wgpu")) {
        println!("skipped: no wgpu adapter here ({})", t.lines().last().unwrap_or(""));
        return;
    }
    assert!(o.status.success(), "{t}");
    assert!(!t.contains("XDG_RUNTIME_DIR"), "Mesa's complaint reached the user: {t}");
}
