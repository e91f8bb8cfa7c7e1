//! `deephide poison`: make a training set unlearnable with a peer method (EM, REM, TAP, LSP, AR, OPS,
//! class-wise noise) or Deep Hiding, writing exactly what `hide` writes.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use deephide::data::publish::{self, Publication};
use deephide::data::{self, Split};
use deephide::eval::json::Json;
use deephide::models::Arch;
use deephide::poison::{self, Method, PoisonOptions};
use deephide::progress::Progress;
use deephide::{Device, Error, Tensor};

use super::hide::parse_eps;

#[derive(Args)]
pub struct PoisonArgs {
    /// The method (see --list): classwise-noise, em, em-classwise, rem, tap, lsp, ar, ops or dh.
    #[arg(long)]
    method: Option<String>,
    /// Print the methods with their settings and papers, and exit.
    #[arg(long)]
    list: bool,
    /// Data set to poison (its training split): a SPEC as for `hide`.
    #[arg(long)]
    data: Option<String>,
    /// Output directory (written as a whole when done; an existing one is replaced only if it is a previous output).
    #[arg(long)]
    out: Option<PathBuf>,
    /// L-inf budget of classwise-noise, em, em-classwise, rem, tap and dh (a number or a fraction like 8/255).
    #[arg(long, default_value = "8/255")]
    eps: String,
    /// L2 budget per image of lsp and ar, in [0, 1] pixel units (default: the paper's, scaled to the image size).
    #[arg(long)]
    l2: Option<f64>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Poison only a class-balanced random subset of this many training images (drawn with --seed).
    #[arg(long)]
    subset: Option<usize>,
    /// `folder` (what `hide` writes), or `apbench`: also `OUT/apbench/<index>.png` + `labels.txt`, the layout of
    /// APBench and Image-Shortcut-Squeezing (read back with `pngs:OUT/apbench`).
    #[arg(long, default_value = "folder")]
    layout: String,
    /// Continue an interrupted em, em-classwise, rem or tap run from its state file (kept beside --out).
    #[arg(long)]
    resume: bool,
    /// em / rem / tap: the surrogate network, small-cnn or resnet18.
    #[arg(long, default_value = "small-cnn")]
    surrogate: String,
    /// em / rem / tap: base width of the surrogate.
    #[arg(long, default_value_t = 32)]
    surrogate_width: usize,
    /// em / rem: surrogate mini-batches per round.
    #[arg(long, default_value_t = 10)]
    train_steps: usize,
    /// em / rem: signed-gradient steps on every image per round.
    #[arg(long, default_value_t = 5)]
    attack_steps: usize,
    /// em / rem / tap: step size (default eps/5 for em and rem, eps/20 for tap).
    #[arg(long)]
    step_size: Option<String>,
    /// em / rem: stop once the surrogate's accuracy on the poisoned set reaches this.
    #[arg(long, default_value_t = 0.99)]
    stop_acc: f64,
    /// em / rem: most rounds.
    #[arg(long, default_value_t = 30)]
    max_rounds: usize,
    /// rem: radius of the adversary (a number or a fraction like 4/255).
    #[arg(long, default_value = "4/255")]
    rem_radius: String,
    /// rem: PGD steps of the adversary.
    #[arg(long, default_value_t = 5)]
    rem_adv_steps: usize,
    /// tap: attack this trained classifier (from `train-features` or a victim) instead of training one.
    #[arg(long)]
    features: Option<PathBuf>,
    /// tap: epochs of the classifier it trains on the clean data.
    #[arg(long, default_value_t = 10)]
    tap_epochs: usize,
    /// tap: PGD steps per image.
    #[arg(long, default_value_t = 50)]
    tap_steps: usize,
    /// lsp: patch side in pixels (default: a 4x4 grid of patches).
    #[arg(long)]
    lsp_patch: Option<usize>,
    /// dh: the hiding network (default: the shipped weights).
    #[arg(long)]
    weights: Option<PathBuf>,
    #[arg(long, default_value_t = 128)]
    batch: usize,
}

fn options(a: &PoisonArgs, device: Device) -> deephide::Result<PoisonOptions> {
    let o = PoisonOptions {
        eps: parse_eps(&a.eps)?,
        l2: a.l2,
        seed: a.seed,
        device,
        surrogate: Arch::parse(&a.surrogate).map_err(|e| Error::msg(format!("--surrogate: {e}")))?,
        surrogate_width: a.surrogate_width,
        train_steps: a.train_steps,
        attack_steps: a.attack_steps,
        step_size: a.step_size.as_deref().map(parse_eps).transpose()?,
        tap_steps: a.tap_steps,
        stop_acc: a.stop_acc,
        max_rounds: a.max_rounds,
        rem_radius: parse_eps(&a.rem_radius)?,
        rem_adv_steps: a.rem_adv_steps,
        features: a.features.clone(),
        tap_epochs: a.tap_epochs,
        lsp_patch: a.lsp_patch,
        weights: a.weights.clone(),
        batch: a.batch,
        resume: None,
    };
    o.validate()?;
    Ok(o)
}

fn print_list(o: &PoisonOptions) {
    println!("{:<16} {:<10} settings (on 1x28x28 images; `--eps`, `--l2` and the loop options change them) / paper", "method", "budget");
    for m in poison::ALL {
        let norm = match m {
            Method::Lsp | Method::Ar => "L2",
            Method::Ops => "1 pixel",
            _ => "L-inf",
        };
        println!("{:<16} {:<10} {}", m.name(), norm, poison::settings(m, o, (1, 28, 28)));
        println!("{:<16} {:<10} {}", "", "", m.paper());
    }
}

pub fn run(a: PoisonArgs) -> deephide::Result<bool> {
    let device = Device::parse(&a.device)?;
    let mut o = options(&a, device)?;
    if a.list {
        print_list(&o);
        return Ok(true);
    }
    let Some(method) = a.method.as_deref() else {
        return Err(Error::msg("--method NAME is required (see --list)"));
    };
    let method = Method::parse(method)?;
    let (Some(spec), Some(out)) = (a.data.as_deref(), a.out.clone()) else {
        return Err(Error::msg("--data SPEC and --out DIR are required"));
    };
    let apbench = match a.layout.as_str() {
        "folder" => false,
        "apbench" => true,
        other => return Err(Error::msg(format!("unknown --layout `{other}`: expected folder or apbench"))),
    };
    if a.resume && !method.resumable() {
        return Err(Error::msg(format!("--resume: {} has no long loop to resume (only em, em-classwise, rem and tap do)", method.name())));
    }
    if let Some(f) = &a.features {
        if !f.is_file() {
            return Err(Error::msg(format!("--features {}: no such file", f.display())));
        }
    }
    // Every check that can fail runs before the long work.
    publish::check_output_dir(&out)?;
    let _lock = publish::OutputLock::acquire(&out)?;
    let state = poison::resume::state_path(&out);
    if method.resumable() {
        if a.resume && !state.is_file() {
            return Err(Error::msg(format!("--resume: no state of an interrupted run at {}", state.display())));
        }
        if !a.resume && state.is_file() {
            eprintln!("note: starting afresh; the state of an earlier interrupted run at {} will be overwritten (use --resume to continue it)", state.display());
            std::fs::remove_file(&state).map_err(|e| Error::io(&state, e))?;
        }
        o.resume = Some(state.clone());
    }
    let mut clean = data::load(spec, Split::Train)?;
    if let Some(n) = a.subset {
        if n == 0 {
            return Err(Error::msg("--subset must be at least 1"));
        }
        clean = data::balanced_subset(&clean, Some(n), &mut deephide::Rng::new(a.seed));
    }
    if clean.is_empty() {
        return Err(Error::msg(format!("{}: the training split has no images", clean.name)));
    }
    eprintln!("{} on {} ({} images, {}x{}x{}): {}", method.name(), clean.name, clean.len(), clean.channels, clean.height, clean.width, poison::settings(method, &o, (clean.channels, clean.height, clean.width)));
    let start = Instant::now();
    let mut bar: Option<(String, Progress)> = None;
    let mut on_progress = |k: usize, total: usize, stage: &str| {
        if bar.as_ref().is_none_or(|(s, _)| s != stage) {
            if let Some((_, mut b)) = bar.take() {
                b.finish();
            }
            bar = Some((stage.to_string(), Progress::new(format!("{} {stage}", method.name()), total, "img")));
        }
        if let Some((_, b)) = bar.as_mut() {
            b.inc(k);
        }
    };
    let result = poison::poison(method, &clean, &o, &mut on_progress);
    if let Some((_, mut b)) = bar.take() {
        b.finish();
    }
    let p = result?;
    let seconds = start.elapsed().as_secs_f64();
    let linf = match p.budget {
        poison::Budget::Linf(e) => e,
        _ => 0.0,
    };
    let q = publish::quality(&clean, &p.data, linf)?;
    let mut members: Vec<(String, Json)> = vec![
        ("method".into(), Json::str(method.name())),
        ("paper".into(), Json::str(method.paper())),
        ("settings".into(), Json::str(p.settings.clone())),
        ("data".into(), Json::str(clean.name.clone())),
        ("seed".into(), Json::Num(a.seed as f64)),
        ("eps".into(), Json::Num(linf)),
        ("budget".into(), p.budget_report.to_json()),
    ];
    members.extend(q.to_json_members());
    members.extend(p.extra.iter().cloned());
    members.push(("seconds".into(), Json::Num(seconds)));
    let json = Json::Obj(members).to_pretty();
    let grid = preview_grid(&clean, &p.data, &p.preview_rows)?;
    publish::write_set(&out, &Publication { data: &p.data, perturbation_json: json, preview: Some((&grid.0, grid.1)), apbench })?;
    if state.is_file() {
        let _ = std::fs::remove_file(&state);
    }
    println!("{}: {} ({}, max used {:.4})", method.name(), q.summary(), p.budget.describe(), p.budget_report.max);
    println!("made in {seconds:.1}s; wrote {} (folder:{} reads it back{})", out.display(), out.display(), if apbench { format!(", and pngs:{}/apbench", out.display()) } else { String::new() });
    Ok(true)
}

/// One image per class (up to 10): the clean image, the poisoned one, the perturbation x10 around grey, and
/// any method rows (e.g. DH's revealed secret).
pub fn preview_grid(clean: &data::Dataset, poisoned: &data::Dataset, extra: &[Tensor]) -> deephide::Result<(Tensor, usize)> {
    let mut idx = Vec::new();
    for y in 0..clean.classes.min(10) {
        if let Some(i) = clean.labels.iter().position(|&l| l == y) {
            idx.push(i);
        }
    }
    let c = clean.batch(&idx)?;
    let p = poisoned.batch(&idx)?;
    let d = p.sub(&c)?.mul_scalar(10.0)?.add_scalar(0.5)?.clamp(0.0, 1.0)?;
    let mut rows = vec![c, p, d];
    rows.extend(extra.iter().cloned());
    let refs: Vec<&Tensor> = rows.iter().collect();
    Ok((Tensor::concat(&refs, 0)?, idx.len()))
}
