//! `deephide evaluate`: how learnable is a (protected) training set? Train fresh victims on it, under each
//! countermeasure, and measure top-1 accuracy on the clean test set after every epoch; do the same for the
//! references (training on the clean originals, and on class-wise random noise of the same budget); write
//! `report.md`, `report.json` and `chart.png`.
//!
//! Every run is seeded: the victim's initialisation, the data order, the augmentations and the
//! countermeasure's randomness all derive from `--seed` (plus the run index for `--seeds N`), so a report can
//! be reproduced exactly on the CPU.

pub mod json;
pub mod projection;
pub mod report;

use std::path::PathBuf;
use std::time::Instant;

pub use crate::countermeasures::registry;
use registry::{Countermeasure, TrainingCountermeasure};

use crate::data::{spec::balanced_indices, DataSpec, Dataset, ImageSource, Split};
use crate::device::Device;
use crate::models::{self, Arch, ModelConfig};
use crate::rng::Rng;
use crate::train::{self, Augment, Pgd, TrainConfig};
use crate::{Error, Result};

/// The class-wise noise reference (`--baseline classwise-noise`), the `classwise-noise` method of `poison`.
pub use crate::poison::classwise_noise::poison as classwise_noise;
pub use projection::{orthogonal_projection, ProjectionConfig};
pub use report::{write_report, EvalReport};

/// Names of every countermeasure of the robustness table, in report order.
pub fn all_countermeasures() -> &'static [&'static str] {
    registry::ALL
}

/// Which training set a victim was trained on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrainSet {
    /// The clean originals (`--clean`).
    Clean,
    /// The training set under evaluation (`--train`), possibly mixed with clean images.
    Protected,
    /// The clean originals plus class-wise uniform noise (`--baseline classwise-noise`).
    ClasswiseNoise,
}

impl TrainSet {
    pub fn key(self) -> &'static str {
        match self {
            TrainSet::Clean => "clean",
            TrainSet::Protected => "protected",
            TrainSet::ClasswiseNoise => "classwise_noise",
        }
    }
    pub fn title(self) -> &'static str {
        match self {
            TrainSet::Clean => "clean-trained",
            TrainSet::Protected => "protected-trained",
            TrainSet::ClasswiseNoise => "class-wise-noise-trained",
        }
    }
}

#[derive(Clone, Debug)]
pub struct EvalConfig {
    pub train: String,
    pub test: String,
    pub clean: Option<String>,
    /// `all` or a comma-separated list.
    pub countermeasures: String,
    pub arch: Arch,
    /// Base width (None: the architecture's default).
    pub width: Option<usize>,
    pub epochs: usize,
    pub train_subset: Option<usize>,
    pub test_subset: Option<usize>,
    pub seed: u64,
    /// Runs per training set and countermeasure (seeds `seed`, `seed + 1`, ...).
    pub seeds: usize,
    /// Fraction of training images taken from `--train`; the rest are their clean originals.
    pub protected_fraction: f64,
    /// Also train on class-wise random noise (needs `clean`).
    pub baseline_noise: bool,
    /// L-inf budget of the class-wise noise, in [0, 1] units.
    pub noise_eps: f64,
    pub batch_size: usize,
    pub lr: f64,
    pub device: String,
    pub report_dir: PathBuf,
    pub progress: bool,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            train: "default".into(),
            test: "default".into(),
            clean: None,
            countermeasures: "none".into(),
            arch: Arch::SmallCnn,
            width: None,
            epochs: 10,
            train_subset: None,
            test_subset: None,
            seed: 0,
            seeds: 1,
            protected_fraction: 1.0,
            baseline_noise: false,
            noise_eps: 8.0 / 255.0,
            batch_size: 128,
            lr: 0.1,
            device: "cpu".into(),
            report_dir: PathBuf::from("report"),
            progress: false,
        }
    }
}

/// One victim training run.
#[derive(Clone, Debug)]
pub struct RunResult {
    pub seed: u64,
    /// Clean test accuracy after every epoch, in [0, 1].
    pub test_acc: Vec<f64>,
    pub train_loss: Vec<f64>,
    pub train_acc: Vec<f64>,
    /// Mean training time of an epoch (without evaluation).
    pub epoch_seconds: f64,
    /// Wall time of the run, countermeasure preparation and evaluations included.
    pub seconds: f64,
    /// Extra facts (e.g. the accuracy of the linear model of the orthogonal projection).
    pub note: Option<String>,
}

impl RunResult {
    pub fn final_acc(&self) -> f64 {
        self.test_acc.last().copied().unwrap_or(f64::NAN)
    }
    /// Lowest test accuracy and its epoch (counting from 1).
    pub fn lowest(&self) -> (f64, usize) {
        self.test_acc
            .iter()
            .enumerate()
            .fold((f64::INFINITY, 0), |(b, be), (i, &a)| if a < b { (a, i + 1) } else { (b, be) })
    }
}

/// Mean and sample standard deviation (0 for one value).
pub fn mean_sd(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let m = v.iter().sum::<f64>() / v.len() as f64;
    if v.len() < 2 {
        return (m, 0.0);
    }
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64;
    (m, var.sqrt())
}

#[derive(Clone, Debug)]
pub struct SetResult {
    pub set: TrainSet,
    pub runs: Vec<RunResult>,
}

impl SetResult {
    pub fn finals(&self) -> Vec<f64> {
        self.runs.iter().map(|r| r.final_acc()).collect()
    }
    pub fn lowests(&self) -> Vec<f64> {
        self.runs.iter().map(|r| r.lowest().0).collect()
    }
    /// Mean over runs of the accuracy after each epoch.
    pub fn per_epoch_mean(&self) -> Vec<f64> {
        let e = self.runs.iter().map(|r| r.test_acc.len()).min().unwrap_or(0);
        (0..e).map(|i| self.runs.iter().map(|r| r.test_acc[i]).sum::<f64>() / self.runs.len() as f64).collect()
    }
    pub fn seconds(&self) -> f64 {
        self.runs.iter().map(|r| r.seconds).sum()
    }
}

#[derive(Clone, Debug)]
pub struct CmResult {
    pub name: String,
    pub description: String,
    pub sets: Vec<SetResult>,
}

impl CmResult {
    pub fn set(&self, s: TrainSet) -> Option<&SetResult> {
        self.sets.iter().find(|r| r.set == s)
    }
    pub fn seconds(&self) -> f64 {
        self.sets.iter().map(|s| s.seconds()).sum()
    }
}

/// The training sets of an evaluation, after subsetting and mixing.
pub struct TrainingSets {
    pub sets: Vec<(TrainSet, Dataset)>,
    pub test: Dataset,
}

fn check_same_kind(a: &Dataset, b: &Dataset, what: &str) -> Result<()> {
    if (a.channels, a.height, a.width) != (b.channels, b.height, b.width) {
        return Err(Error::msg(format!(
            "{what}: {} has {}x{}x{} images but {} has {}x{}x{}",
            a.name, a.channels, a.height, a.width, b.name, b.channels, b.height, b.width
        )));
    }
    if a.classes != b.classes {
        return Err(Error::msg(format!("{what}: {} has {} classes but {} has {}", a.name, a.classes, b.name, b.classes)));
    }
    Ok(())
}

/// Load, subset, mix and derive every training set, and the test set.
pub fn prepare_sets(cfg: &EvalConfig) -> Result<TrainingSets> {
    let train_spec = DataSpec::parse(&cfg.train).map_err(|e| Error::msg(format!("--train: {e}")))?;
    let test_spec = DataSpec::parse(&cfg.test).map_err(|e| Error::msg(format!("--test: {e}")))?;
    let clean_spec = cfg
        .clean
        .as_deref()
        .map(|s| DataSpec::parse(s).map_err(|e| Error::msg(format!("--clean: {e}"))))
        .transpose()?;
    if !(0.0..=1.0).contains(&cfg.protected_fraction) {
        return Err(Error::msg(format!("--protected-fraction must be in [0, 1], got {}", cfg.protected_fraction)));
    }
    if cfg.protected_fraction < 1.0 && clean_spec.is_none() {
        return Err(Error::msg("--protected-fraction below 1 needs --clean (the clean originals of --train, in the same order)"));
    }
    if cfg.baseline_noise && clean_spec.is_none() {
        return Err(Error::msg("--baseline classwise-noise needs --clean (the noise is added to the clean images)"));
    }
    let protected = train_spec.load(Split::Train)?;
    let mut test = test_spec.load(Split::Test)?;
    check_same_kind(&protected, &test, "--train and --test differ")?;
    let clean = match &clean_spec {
        Some(s) => {
            let c = s.load(Split::Train)?;
            check_same_kind(&protected, &c, "--train and --clean differ")?;
            Some(c)
        }
        None => None,
    };
    if let Some(n) = cfg.test_subset {
        test = crate::data::balanced_subset(&test, Some(n), &mut Rng::new(cfg.seed ^ 0x7465_7374));
    }
    let aligned = clean.as_ref().is_some_and(|c| c.len() == protected.len() && c.labels == protected.labels);
    if cfg.protected_fraction < 1.0 && !aligned {
        return Err(Error::msg(format!(
            "--protected-fraction: --clean must hold the clean originals of --train in the same order ({} has {} images, {} has {}, or their labels differ)",
            protected.name,
            protected.len(),
            clean.as_ref().map_or(String::new(), |c| c.name.clone()),
            clean.as_ref().map_or(0, |c| c.len())
        )));
    }
    let pick = |ds: &Dataset| -> Vec<usize> {
        match cfg.train_subset {
            Some(n) if n < ds.len() => {
                let mut v = balanced_indices(&ds.labels, ds.classes, n, &mut Rng::new(cfg.seed ^ 0x7375_6273));
                v.sort_unstable();
                v
            }
            _ => (0..ds.len()).collect(),
        }
    };
    let pidx = pick(&protected);
    let mut prot = protected.subset(&pidx);
    prot.name = subset_name(&protected, pidx.len());
    let clean = clean.map(|c| {
        let cidx = if aligned { pidx.clone() } else { pick(&c) };
        let mut s = c.subset(&cidx);
        s.name = subset_name(&c, cidx.len());
        s
    });
    if cfg.protected_fraction < 1.0 {
        let c = clean.as_ref().expect("checked above");
        let n = prot.len();
        let k = (cfg.protected_fraction * n as f64).round() as usize;
        let mut order: Vec<usize> = (0..n).collect();
        Rng::new(cfg.seed ^ 0x006d_6978).shuffle(&mut order);
        let per = prot.image_len();
        for &i in &order[k..] {
            prot.images[i * per..(i + 1) * per].copy_from_slice(c.image(i));
        }
        prot.name = format!("{} [{:.0}% protected, rest clean]", prot.name, cfg.protected_fraction * 100.0);
    }
    let mut sets = Vec::new();
    if let Some(c) = &clean {
        sets.push((TrainSet::Clean, c.clone()));
    }
    sets.push((TrainSet::Protected, prot));
    if cfg.baseline_noise {
        let c = clean.as_ref().expect("checked above");
        sets.push((TrainSet::ClasswiseNoise, classwise_noise(c, cfg.noise_eps, cfg.seed)?));
    }
    Ok(TrainingSets { sets, test })
}

fn subset_name(ds: &Dataset, n: usize) -> String {
    if n < ds.len() { format!("{} [{n} of {}]", ds.name, ds.len()) } else { ds.name.clone() }
}

/// Train one victim on `data` under countermeasure `cm`.
#[allow(clippy::too_many_arguments)]
pub fn run_one(
    cfg: &EvalConfig,
    name: &str,
    cm: &Countermeasure,
    set: TrainSet,
    data: &Dataset,
    test: &Dataset,
    seed: u64,
) -> Result<RunResult> {
    let start = Instant::now();
    let arch = cfg.arch;
    let width = cfg.width.unwrap_or(arch.default_width());
    let mcfg = ModelConfig::new(arch, data.channels, (data.height, data.width), data.classes).with_width(width);
    let model = models::build(&mcfg, &mut Rng::new(seed ^ 0x006d_6f64_656c))?;
    let mut tcfg = TrainConfig {
        epochs: cfg.epochs,
        batch_size: cfg.batch_size,
        lr: cfg.lr,
        augment: Augment::Auto,
        seed,
        progress: cfg.progress,
        label: format!("{name} / {}", set.key()),
        device: Device::parse(&cfg.device)?,
        ..TrainConfig::default()
    };
    let mut cm_rng = Rng::new(seed ^ 0x636d);
    let mut note = None;
    let transformed;
    let projected;
    let mut batch_aug = None;
    let source: &dyn ImageSource = match cm {
        Countermeasure::None => data,
        Countermeasure::Dataset(t) => {
            transformed = t.apply(data, &mut cm_rng)?;
            &transformed
        }
        Countermeasure::Batch(b) => {
            batch_aug = Some(&**b);
            data
        }
        Countermeasure::Training(TrainingCountermeasure::AdversarialPgd { eps, step, steps }) => {
            tcfg.adversarial = Some(Pgd { eps: *eps, step: *step, steps: *steps, random_start: true });
            data
        }
        Countermeasure::Training(TrainingCountermeasure::OrthogonalProjection) => {
            let (p, fit) = orthogonal_projection(data, &ProjectionConfig { seed, ..ProjectionConfig::default() })?;
            note = Some(format!("linear model training accuracy {:.1}%", fit.train_acc * 100.0));
            projected = p;
            &projected
        }
    };
    let r = train::train(&*model, source, Some(test), &tcfg, batch_aug, &mut |_| Ok(()))?;
    let epochs = r.epochs.len().max(1) as f64;
    Ok(RunResult {
        seed,
        test_acc: r.test_accs(),
        train_loss: r.epochs.iter().map(|e| e.train_loss).collect(),
        train_acc: r.epochs.iter().map(|e| e.train_acc).collect(),
        epoch_seconds: r.epochs.iter().map(|e| e.seconds).sum::<f64>() / epochs,
        seconds: start.elapsed().as_secs_f64(),
        note,
    })
}

/// Run the whole evaluation, writing the report after every finished run (so an interrupted evaluation
/// leaves the results so far).
pub fn evaluate(cfg: &EvalConfig) -> Result<EvalReport> {
    let started = Instant::now();
    if cfg.epochs == 0 {
        return Err(Error::msg("--epochs must be at least 1"));
    }
    if cfg.seeds == 0 {
        return Err(Error::msg("--seeds must be at least 1"));
    }
    // An absent or unknown device fails here, before any data is prepared.
    Device::parse(&cfg.device)?;
    let names = registry::parse_list(&cfg.countermeasures)?;
    let cms: Vec<(String, Countermeasure)> =
        names.iter().map(|n| registry::by_name(n).map(|c| (n.to_string(), c))).collect::<Result<_>>()?;
    // The data first: an unreadable set must not leave an empty report directory behind.
    let sets = prepare_sets(cfg)?;
    std::fs::create_dir_all(&cfg.report_dir).map_err(|e| Error::io(&cfg.report_dir, e))?;
    let mut rep = EvalReport::new(cfg, &sets);
    write_report(&rep, &cfg.report_dir)?;
    for (name, cm) in &cms {
        let mut res = CmResult {
            name: name.clone(),
            description: registry::describe(name).unwrap_or("").to_string(),
            sets: Vec::new(),
        };
        for (set, data) in &sets.sets {
            let mut sr = SetResult { set: *set, runs: Vec::new() };
            for k in 0..cfg.seeds {
                let seed = cfg.seed + k as u64;
                let run = run_one(cfg, name, cm, *set, data, &sets.test, seed)
                    .map_err(|e| Error::msg(format!("countermeasure `{name}`, {} training set, seed {seed}: {e}", set.key())))?;
                if cfg.progress {
                    eprintln!(
                        "{name} / {}: seed {seed}: final test accuracy {:.2}%, lowest {:.2}% (epoch {}), {:.0}s",
                        set.key(),
                        run.final_acc() * 100.0,
                        run.lowest().0 * 100.0,
                        run.lowest().1,
                        run.seconds
                    );
                }
                sr.runs.push(run);
                let mut partial = res.clone();
                partial.sets.push(sr.clone());
                rep.set_result(partial);
                rep.total_seconds = started.elapsed().as_secs_f64();
                write_report(&rep, &cfg.report_dir)?;
            }
            res.sets.push(sr);
        }
        rep.set_result(res);
    }
    rep.total_seconds = started.elapsed().as_secs_f64();
    rep.complete = true;
    write_report(&rep, &cfg.report_dir)?;
    Ok(rep)
}
