//! `deephide evaluate`: train victims on a (protected) training set under countermeasures and report their
//! clean test accuracy next to the clean and class-wise-noise references.

use std::path::PathBuf;

use clap::Args;

use deephide::eval::{self, EvalConfig};
use deephide::models::Arch;
use deephide::Error;

#[derive(Args)]
pub struct EvaluateArgs {
    /// Training set under evaluation (train split): cifar10:DIR, cifar100:DIR, idx:DIR, folder:DIR, default
    /// (bundled Fashion-MNIST subset) or fashion-mnist (full set, when installed).
    #[arg(long)]
    train: Option<String>,
    /// Clean test set (its test split), same SPEC forms.
    #[arg(long)]
    test: Option<String>,
    /// The clean originals of --train (train split): adds the clean-trained reference.
    #[arg(long)]
    clean: Option<String>,
    /// `all` or a comma-separated list of countermeasure names (see --list-countermeasures).
    #[arg(long, default_value = "none")]
    countermeasures: String,
    /// Victim network: small-cnn or resnet18.
    #[arg(long, default_value = "small-cnn")]
    model: String,
    /// Base width (small-cnn: 32 -> 32/64/128 channels; resnet18: 64 -> 64/128/256/512).
    #[arg(long)]
    width: Option<usize>,
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Train on a class-balanced random subset of this many images.
    #[arg(long)]
    train_subset: Option<usize>,
    /// Test on a class-balanced random subset of this many images.
    #[arg(long)]
    test_subset: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Runs per training set and countermeasure, with seeds seed, seed+1, ... (mean and spread reported).
    #[arg(long, default_value_t = 1)]
    seeds: usize,
    /// Fraction of the training images taken from --train, the rest from --clean (partial protection).
    #[arg(long, default_value_t = 1.0)]
    protected_fraction: f64,
    /// Extra reference training set: `classwise-noise` (needs --clean).
    #[arg(long)]
    baseline: Option<String>,
    /// L-inf budget of the class-wise noise reference, in 1/255 units.
    #[arg(long, default_value_t = 8.0)]
    noise_budget: f64,
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    #[arg(long, default_value_t = 0.1)]
    lr: f64,
    /// Where the victims train: cpu, cuda, cuda:N, cuda-emu, wgpu or auto.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Output directory for report.md, report.json and chart.png.
    #[arg(long)]
    report: Option<PathBuf>,
    /// No progress lines on stderr.
    #[arg(long)]
    quiet: bool,
    /// Print the countermeasure names with their settings and exit.
    #[arg(long)]
    list_countermeasures: bool,
}

pub fn run(a: EvaluateArgs) -> deephide::Result<bool> {
    if a.list_countermeasures {
        for n in eval::all_countermeasures() {
            println!("{n:24} {}", eval::registry::describe(n).unwrap_or("(not in this build)"));
        }
        return Ok(true);
    }
    let (Some(train), Some(test)) = (a.train, a.test) else {
        return Err(Error::msg("--train SPEC and --test SPEC are required"));
    };
    let Some(report_dir) = a.report else {
        return Err(Error::msg("--report DIR is required (where report.md, report.json and chart.png go)"));
    };
    let baseline_noise = match a.baseline.as_deref() {
        None | Some("none") => false,
        Some("classwise-noise") => true,
        Some(o) => return Err(Error::msg(format!("unknown --baseline `{o}`: expected classwise-noise"))),
    };
    if !(a.noise_budget >= 0.0 && a.noise_budget <= 255.0) {
        return Err(Error::msg(format!("--noise-budget must be in [0, 255], got {}", a.noise_budget)));
    }
    if !(a.lr > 0.0 && a.lr.is_finite()) {
        return Err(Error::msg(format!("--lr must be positive, got {}", a.lr)));
    }
    let cfg = EvalConfig {
        train,
        test,
        clean: a.clean,
        countermeasures: a.countermeasures,
        arch: Arch::parse(&a.model)?,
        width: a.width,
        epochs: a.epochs,
        train_subset: a.train_subset,
        test_subset: a.test_subset,
        seed: a.seed,
        seeds: a.seeds,
        protected_fraction: a.protected_fraction,
        baseline_noise,
        noise_eps: a.noise_budget / 255.0,
        batch_size: a.batch_size,
        lr: a.lr,
        device: a.device,
        report_dir: report_dir.clone(),
        progress: !a.quiet,
    };
    let rep = eval::evaluate(&cfg)?;
    print!("{}", table_only(&rep.to_markdown()));
    println!("report: {} (report.md, report.json, chart.png)", report_dir.display());
    Ok(true)
}

/// The first table of the markdown report.
fn table_only(md: &str) -> String {
    let mut out = String::new();
    let mut in_table = false;
    for line in md.lines() {
        if line.starts_with('|') {
            in_table = true;
            out.push_str(line);
            out.push('\n');
        } else if in_table {
            break;
        }
    }
    out
}
