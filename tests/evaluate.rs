//! `deephide evaluate` and `deephide train-features` end to end through the binary, the training sets the
//! evaluation builds (subsets, partial protection, class-wise noise), and clear errors (exit status 2).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use deephide::data::{self, Split};
use deephide::eval::{self, prepare_sets, EvalConfig, TrainSet};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_deephide"))
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("deephide-evaluate-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run deephide")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Exit status 2 and one `error:` line naming every part, no panic.
fn assert_fails(args: &[&str], parts: &[&str]) {
    let o = run(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "deephide {args:?} should exit 2; stderr: {err}");
    assert!(!err.contains("panicked"), "panic for {args:?}: {err}");
    let line = err.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("no error line for {args:?}: {err}"));
    for p in parts {
        assert!(line.contains(p), "error line `{line}` for {args:?} should contain `{p}`");
    }
}

#[test]
fn evaluate_writes_the_three_report_files() {
    let dir = TempDir::new("report");
    let rep = dir.path().join("rep");
    let r = rep.to_str().unwrap();
    let o = run(&[
        "evaluate", "--train", "default", "--test", "default", "--clean", "default", "--baseline", "classwise-noise",
        "--countermeasures", "none,orthogonal-projection,adv-pgd-8", "--epochs", "2", "--train-subset", "300",
        "--test-subset", "200", "--width", "4", "--batch-size", "64", "--quiet", "--report", r,
    ]);
    assert!(o.status.success(), "evaluate failed: {}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("| `none` |") && stdout.contains(r), "{stdout}");

    let md = std::fs::read_to_string(rep.join("report.md")).unwrap();
    let header = md.lines().find(|l| l.starts_with("| countermeasure |")).unwrap();
    for col in ["clean-trained acc", "protected-trained acc", "class-wise-noise-trained acc", "protected lowest (epoch)", "protected acc per epoch", "wall time"] {
        assert!(header.contains(col), "missing column {col}: {header}");
    }
    let rows: Vec<&str> = md.lines().skip_while(|l| !l.starts_with("| countermeasure |")).skip(2).take_while(|l| l.starts_with('|')).collect();
    assert_eq!(rows.len(), 3, "{md}");
    for (row, name) in rows.iter().zip(["none", "orthogonal-projection", "adv-pgd-8"]) {
        assert!(row.starts_with(&format!("| `{name}` |")), "{row}");
        // Two per-epoch accuracies in the protected column.
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert_eq!(cells[6].split(", ").count(), 2, "{row}");
    }
    assert!(!md.contains("Incomplete"));
    assert!(md.contains("linear model training accuracy"), "the projection's note is reported");

    let json = std::fs::read_to_string(rep.join("report.json")).unwrap();
    for s in ["\"complete\": true", "\"countermeasure\": \"none\"", "\"countermeasure\": \"adv-pgd-8\"", "\"clean\": {", "\"protected\": {", "\"classwise_noise\": {", "\"test_acc\": [", "\"final_acc_mean\""] {
        assert!(json.contains(s), "report.json lacks {s}");
    }
    assert_eq!(json.matches("\"seed\": 0").count(), 9, "3 countermeasures x 3 training sets x 1 seed");

    let png_bytes = std::fs::read(rep.join("chart.png")).unwrap();
    let dec = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let reader = dec.read_info().expect("chart.png is a PNG");
    let info = reader.info();
    assert!(info.width >= 600 && info.height >= 150, "{}x{}", info.width, info.height);
}

#[test]
fn two_seeds_give_mean_and_spread() {
    let dir = TempDir::new("seeds");
    let cfg = EvalConfig {
        epochs: 1,
        seeds: 2,
        train_subset: Some(200),
        test_subset: Some(100),
        width: Some(4),
        batch_size: 50,
        report_dir: dir.path().to_path_buf(),
        ..EvalConfig::default()
    };
    let rep = eval::evaluate(&cfg).unwrap();
    let p = rep.results[0].set(TrainSet::Protected).unwrap();
    assert_eq!(p.runs.iter().map(|r| r.seed).collect::<Vec<_>>(), vec![0, 1]);
    assert_ne!(p.runs[0].test_acc, p.runs[1].test_acc, "different seeds, different runs");
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains(" ± "), "{md}");
    // Same seed, same result: the evaluation is reproducible.
    let again = eval::evaluate(&EvalConfig { seeds: 1, ..cfg.clone() }).unwrap();
    assert_eq!(again.results[0].set(TrainSet::Protected).unwrap().runs[0].test_acc, p.runs[0].test_acc);
}

#[test]
fn partial_protection_mixes_exactly_the_requested_fraction() {
    let dir = TempDir::new("mix");
    // A "protected" copy of the bundled training set: every pixel changed.
    let clean = data::load("default", Split::Train).unwrap();
    let mut prot = clean.clone();
    prot.images.iter_mut().for_each(|b| *b = b.wrapping_add(1));
    let spec = format!("idx:{}", dir.path().display());
    data::save(&spec, &prot, Split::Train).unwrap();
    let cfg = EvalConfig {
        train: spec.clone(),
        clean: Some("default".into()),
        protected_fraction: 0.8,
        train_subset: Some(500),
        baseline_noise: true,
        ..EvalConfig::default()
    };
    let sets = prepare_sets(&cfg).unwrap();
    let kinds: Vec<TrainSet> = sets.sets.iter().map(|(k, _)| *k).collect();
    assert_eq!(kinds, vec![TrainSet::Clean, TrainSet::Protected, TrainSet::ClasswiseNoise]);
    let (c, p, n) = (&sets.sets[0].1, &sets.sets[1].1, &sets.sets[2].1);
    assert_eq!((c.len(), p.len(), n.len()), (500, 500, 500));
    assert_eq!(c.labels, p.labels);
    let same = (0..500).filter(|&i| c.image(i) == p.image(i)).count();
    assert_eq!(same, 100, "20% of the images are the clean originals");
    // Class-wise noise: within the budget, and the same pattern for every image of a class.
    let eps = (8.0_f64).round() as i32;
    let mut pattern: Vec<Option<Vec<i32>>> = vec![None; 10];
    for i in 0..500 {
        let d: Vec<i32> = n.image(i).iter().zip(c.image(i)).map(|(a, b)| *a as i32 - *b as i32).collect();
        assert!(d.iter().all(|v| v.abs() <= eps));
        let l = n.labels[i];
        if let Some(pat) = &pattern[l] {
            // Clipping at 0 and 255 can shorten the noise; elsewhere it is the class's pattern.
            let agree = d.iter().zip(pat).filter(|(a, b)| a == b).count();
            assert!(agree as f64 > 0.7 * d.len() as f64);
        } else {
            pattern[l] = Some(d);
        }
    }
    // Fractions need the clean originals, in the same order.
    let e = prepare_sets(&EvalConfig { clean: None, ..cfg.clone() }).err().unwrap().to_string();
    assert!(e.contains("--protected-fraction") && e.contains("--clean"), "{e}");
}

#[test]
fn train_features_saves_a_loadable_extractor() {
    let dir = TempDir::new("features");
    let out = dir.path().join("weights/g.safetensors");
    let o = run(&[
        "train-features", "--data", "default", "--out", out.to_str().unwrap(), "--width", "4", "--epochs", "1",
        "--train-subset", "200", "--quiet",
    ]);
    assert!(o.status.success(), "train-features failed: {}", stderr(&o));
    let (g, meta) = deephide::models::load(&out).unwrap();
    assert_eq!(g.config().arch, deephide::models::Arch::ResNet18);
    assert_eq!(g.config().width, 4);
    assert!(meta.contains_key("test_acc") && meta.contains_key("command"));
    let x = deephide::Tensor::zeros(&[2, 1, 28, 28], deephide::DType::F32);
    assert_eq!(g.embed(&x).unwrap().shape(), &[2, 32]);
    let record = std::fs::read_to_string(out.with_extension("md")).unwrap();
    assert!(record.contains("wall time") && record.contains("train-features"), "{record}");
}

#[test]
fn bad_arguments_exit_2_with_one_clear_line() {
    let dir = TempDir::new("bad");
    let r = dir.path().join("r");
    let r = r.to_str().unwrap();
    assert_fails(&["evaluate", "--train", "nope", "--test", "default", "--report", r], &["--train", "unknown data SPEC `nope`"]);
    assert_fails(&["evaluate", "--train", "default", "--test", "idx:/nonexistent/dh", "--report", r], &["/nonexistent/dh", "not a directory"]);
    assert_fails(&["evaluate", "--train", "cifar10:/nonexistent/c", "--test", "default", "--report", r], &["/nonexistent/c"]);
    assert_fails(&["evaluate", "--train", "default", "--test", "default", "--countermeasures", "none,jpeg7", "--report", r], &["unknown countermeasure `jpeg7`"]);
    assert_fails(&["evaluate", "--train", "default", "--test", "default"], &["--report"]);
    assert_fails(&["evaluate", "--train", "default", "--test", "default", "--model", "vgg", "--report", r], &["unknown model `vgg`"]);
    assert_fails(&["evaluate", "--train", "default", "--test", "default", "--protected-fraction", "0.5", "--report", r], &["--clean"]);
    assert_fails(&["evaluate", "--train", "default", "--test", "default", "--baseline", "gaussian", "--report", r], &["--baseline"]);
    assert_fails(&["evaluate", "--train", "default", "--test", "default", "--device", "tpu", "--report", r], &["unknown device `tpu`"]);
    // Victims train on wgpu; with no adapter, `--device wgpu` is one clear error before any data is read.
    let o = bin()
        .args(["evaluate", "--train", "default", "--test", "default", "--device", "wgpu", "--report", r])
        .env("VK_ICD_FILENAMES", "/nonexistent")
        .env("WGPU_BACKEND", "vulkan")
        .env_remove("VK_DRIVER_FILES")
        .env_remove("WGPU_ADAPTER_NAME")
        .output()
        .expect("run deephide");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "no adapter should exit 2; stderr: {err}");
    let line = err.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("no error line: {err}"));
    assert!(line.contains("wgpu") && line.contains("adapter"), "{line}");
    // A device that cannot exist (wgpu itself now runs: lavapipe in CI would train the victims for real).
    assert_fails(&["evaluate", "--train", "default", "--test", "default", "--device", "cuda:x", "--report", r], &["cuda:x"]);
    // Shapes that do not fit: gray Fashion-MNIST training, colour CIFAR test.
    if let Some(sample) = ["../shared/data", "../../shared/data", "/work/shared/data"]
        .iter()
        .map(|d| Path::new(env!("CARGO_MANIFEST_DIR")).join(d).join("cifar10-test-sample20.bin"))
        .find(|p| p.is_file())
    {
        let spec = format!("cifar10:{}", sample.display());
        assert_fails(&["evaluate", "--train", "default", "--test", &spec, "--report", r], &["1x28x28", "3x32x32"]);
    }
    // A report directory that cannot be created.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let under = file.join("rep");
    assert_fails(&["evaluate", "--train", "default", "--test", "default", "--report", under.to_str().unwrap()], &[under.to_str().unwrap()]);
    assert_fails(&["train-features", "--data", "idx:/nonexistent/x", "--out", "/tmp/x.safetensors"], &["/nonexistent/x"]);
}

#[test]
fn all_eighteen_countermeasures_run_end_to_end() {
    let dir = TempDir::new("all");
    let cfg = EvalConfig {
        countermeasures: "all".into(),
        epochs: 1,
        train_subset: Some(200),
        test_subset: Some(100),
        width: Some(4),
        batch_size: 50,
        report_dir: dir.path().to_path_buf(),
        ..EvalConfig::default()
    };
    let rep = eval::evaluate(&cfg).unwrap();
    assert_eq!(rep.results.len(), 18);
    for r in &rep.results {
        let p = r.set(TrainSet::Protected).unwrap();
        assert_eq!(p.runs.len(), 1);
        let acc = p.runs[0].final_acc();
        assert!((0.0..=1.0).contains(&acc), "{}: accuracy {acc}", r.name);
        assert!(!r.description.is_empty(), "{} has no description", r.name);
    }
}

#[test]
fn list_countermeasures_names_all_eighteen() {
    let o = run(&["evaluate", "--list-countermeasures"]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.lines().count(), 18, "{out}");
    for n in ["none", "jpeg10", "adv-pgd-4", "adv-pgd-8", "orthogonal-projection"] {
        assert!(out.lines().any(|l| l.starts_with(n)), "{n} missing: {out}");
    }
    assert_eq!(eval::all_countermeasures().len(), 18);
}
