//! `deephide hide`: make a data set unlearnable (or hide one image), and `deephide reveal`: recover the
//! hidden image and say which class's semantic images it matches.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use deephide::data::{self, Split};
use deephide::hiding::{self, SecretPool};
use deephide::image_io;
use deephide::semantic::SemanticSource;
use deephide::{no_grad, DType, Device, Error, Tensor};

#[derive(Args)]
pub struct HideArgs {
    /// Trained hiding network (from `deephide train`).
    #[arg(long)]
    weights: PathBuf,
    /// Data set to protect (its training split).
    #[arg(long)]
    data: Option<String>,
    /// Semantic images: procedural, single, noise or folder:DIR (as in training; default as `train`'s).
    #[arg(long, default_value = "single")]
    semantic: String,
    /// Semantic images per class (as in training; default as `train`'s).
    #[arg(long, default_value_t = 1)]
    secret_variants: usize,
    /// Seed of the semantic source (as in training).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Single-image mode: the cover image (PNG).
    #[arg(long)]
    cover: Option<PathBuf>,
    /// Single-image mode: the secret image (PNG).
    #[arg(long)]
    secret: Option<PathBuf>,
    /// Output: a directory for a data set, a PNG file for a single image.
    #[arg(long)]
    out: PathBuf,
    /// L-inf budget of the perturbation, as a number or a fraction like 8/255 (0: no clipping).
    #[arg(long, default_value = "8/255")]
    eps: String,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Protect only a class-balanced random subset of this many training images (drawn with --seed), e.g.
    /// for quick screening with `evaluate --train folder:OUT`.
    #[arg(long)]
    subset: Option<usize>,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Sample-wise error-minimising refinement after hiding (0: off): at most this many passes in which a
    /// small-CNN surrogate and the published images are optimised together (min-min, Huang et al. 2021),
    /// each image staying within --eps of its clean version. See experiments/protection.md.
    #[arg(long, default_value_t = 0)]
    em_epochs: usize,
    /// Refinement: also stay within this L-inf distance of the hidden image (0: anywhere within --eps of the
    /// clean image), so that the hidden secret stays revealable. A number or a fraction like 4/255.
    #[arg(long, default_value = "0")]
    em_radius: String,
    /// Refinement: one offset per class (class-wise error-minimising noise) instead of one per image.
    #[arg(long)]
    em_classwise: bool,
    /// Refinement: signed-gradient steps per batch and pass.
    #[arg(long, default_value_t = 5)]
    em_steps: usize,
    /// Refinement: step size, a number or a fraction like 1/255.
    #[arg(long, default_value = "1/255")]
    em_step_size: String,
    /// Refinement: width of the small-CNN surrogate.
    #[arg(long, default_value_t = 16)]
    em_width: usize,
    /// Refinement: the surrogate's SGD learning rate.
    #[arg(long, default_value_t = 0.05)]
    em_lr: f64,
    /// Refinement: stop once the surrogate's training accuracy over a pass reaches this.
    #[arg(long, default_value_t = 0.99)]
    em_stop: f64,
    /// Refinement: distortions between the image and the surrogate, one per step (none, or a list of quant,
    /// bit2, blur, jpegQ), so the noise favours what survives them.
    #[arg(long, default_value = "none")]
    em_distort: String,
    /// Also report how concentrated the perturbations are in this feature extractor's space (the LFC
    /// measure: mean cosine similarity of same-class perturbation embeddings, plain and centred).
    #[arg(long)]
    features: Option<PathBuf>,
}

/// `8/255`, `0.03` or `0`.
pub fn parse_eps(s: &str) -> deephide::Result<f64> {
    let bad = || Error::msg(format!("bad --eps `{s}`: expected a number or a fraction like 8/255"));
    let v = match s.split_once('/') {
        Some((a, b)) => a.trim().parse::<f64>().map_err(|_| bad())? / b.trim().parse::<f64>().map_err(|_| bad())?,
        None => s.trim().parse::<f64>().map_err(|_| bad())?,
    };
    if !(0.0..=1.0).contains(&v) {
        return Err(Error::msg(format!("--eps {s} is outside [0, 1]")));
    }
    Ok(v)
}

fn load_png_tensor(path: &PathBuf) -> deephide::Result<Tensor> {
    let (chw, c, h, w) = image_io::read_png_chw(path)?;
    Tensor::from_vec(chw, &[1, c, h, w])
}

pub fn run(a: HideArgs) -> deephide::Result<bool> {
    let device = Device::parse(&a.device)?;
    let eps = parse_eps(&a.eps)?;
    let (net, w) = hiding::weights::load(&a.weights)?;
    for p in net.parameters() {
        p.move_to_device_(&device)?;
    }
    // A network trained with a bounded output (`train --bound-eps`) publishes cover + eps * tanh(delta / eps).
    let bound = hiding::bound_eps_of(&w.metadata)?;
    if let Some(b) = bound {
        eprintln!("weights were trained with a bounded output: delta = {:.2}/255 * tanh(raw / {:.2}/255)", b * 255.0, b * 255.0);
    }
    match (&a.data, &a.cover, &a.secret) {
        (None, Some(cover), Some(secret)) => {
            let c = load_png_tensor(cover)?;
            let s = load_png_tensor(secret)?;
            if c.shape() != s.shape() {
                return Err(Error::msg(format!("cover {} is {:?} but secret {} is {:?}", cover.display(), c.shape(), secret.display(), s.shape())));
            }
            let h = no_grad(|| net.hide(&c.to_device(&device)?, &s.to_device(&device)?))?;
            let st = h.stego.to_vec_f32()?;
            let cv = c.to_vec_f32()?;
            let out: Vec<f32> = cv
                .iter()
                .zip(&st)
                .map(|(&x, &y)| {
                    let y = match bound {
                        Some(b) => hiding::shortcut::bound_value(x, y, b),
                        None => y,
                    };
                    let d = if eps > 0.0 { (y - x).clamp(-eps as f32, eps as f32) } else { y - x };
                    image_io::to_u8(x + d) as f32 / 255.0
                })
                .collect();
            let (_, ch, hh, ww) = (c.shape()[0], c.shape()[1], c.shape()[2], c.shape()[3]);
            image_io::write_png_chw(&a.out, &out, ch, hh, ww)?;
            println!(
                "wrote {}: PSNR {:.2} dB, SSIM {:.4}, L-inf {:.4}",
                a.out.display(),
                deephide::metrics::psnr(&cv, &out),
                deephide::metrics::ssim(&cv, &out, ch, hh, ww),
                deephide::metrics::delta_norms(&out, &cv).1
            );
            Ok(true)
        }
        (Some(spec), None, None) => {
            // A data set is written as a directory: refuse an unusable --out before the long work.
            data::publish::check_output_dir(&a.out)?;
            let mut ds = data::load(spec, Split::Train)?;
            if let Some(n) = a.subset {
                if n == 0 {
                    return Err(Error::msg("--subset must be at least 1"));
                }
                ds = data::balanced_subset(&ds, Some(n), &mut deephide::Rng::new(a.seed));
            }
            let src = SemanticSource::parse(&a.semantic, a.seed)?;
            let pool = SecretPool::new(&src, ds.classes, a.secret_variants, (ds.channels, ds.height, ds.width))?;
            // Refinement options are checked before the (long) hiding pass.
            let em_opts = hiding::EmRefineOptions {
                eps,
                radius: parse_eps(&a.em_radius)?,
                classwise: a.em_classwise,
                epochs: a.em_epochs,
                steps: a.em_steps,
                step_size: parse_eps(&a.em_step_size)?,
                width: a.em_width,
                lr: a.em_lr,
                batch: 128,
                stop_acc: a.em_stop,
                distort: hiding::Distortion::parse_list(&a.em_distort)?,
                seed: a.seed,
            };
            if a.em_epochs > 0 {
                em_opts.validate()?;
            }
            let mut progress = deephide::progress::Progress::new("hide", ds.len(), "img");
            let (mut protected, mut stats) = hiding::protect_dataset(&net, &ds, &pool, eps, bound, a.batch, &device, |n| progress.inc(n))?;
            progress.finish();
            let mut em_json = None;
            if a.em_epochs > 0 {
                let opts = &em_opts;
                eprintln!("error-minimising refinement: {}", opts.describe());
                let mut bar = deephide::progress::Progress::new("em-refine", a.em_epochs * ds.len(), "img");
                let (refined, rep) = hiding::em_refine(&ds, &protected, opts, &device, |n, pass, acc| {
                    bar.set_message(format!("pass {} surrogate acc {:.1}%", pass + 1, 100.0 * acc));
                    bar.inc(n)
                })?;
                bar.finish();
                for (i, p) in rep.passes.iter().enumerate() {
                    println!(
                        "em pass {}: surrogate ce {:.4}, training acc {:.2}%, mean |refined - hidden| {:.3}/255, {:.0}s",
                        i + 1,
                        p.ce,
                        100.0 * p.acc,
                        p.moved * 255.0,
                        p.seconds
                    );
                }
                stats = hiding::measure_protected(&net, &ds, &refined, &pool, eps, a.batch, &device)?;
                protected = refined;
                em_json = Some(rep.to_json(opts));
            }
            let mut json = stats.to_json(eps);
            if let Some(e) = em_json {
                json = json.trim_end().trim_end_matches('}').to_string() + &format!(", \"em_refine\": {e}}}\n");
            }
            if let Some(f) = &a.features {
                let (plain, centred) = perturbation_concentration(f, &ds, &protected, &device)?;
                println!("intra-class cosine of perturbation embeddings ({}): plain {plain:.4}, centred {centred:.4}", f.display());
                json = json.trim_end().trim_end_matches('}').to_string()
                    + &format!(", \"intra_class_cosine\": {{\"plain\": {plain:.6}, \"centred\": {centred:.6}}}}}\n");
            }
            // The folder (folder:OUT reads it back), labels, classes, a binary copy in the source's family,
            // the preview and perturbation.json, assembled aside and renamed into place as a whole.
            let grid = preview_grid(&net, &ds, &protected, &device)?;
            data::publish::write_set(&a.out, &data::publish::Publication { data: &protected, perturbation_json: json, preview: Some((&grid.0, grid.1)), apbench: false })?;
            println!("{}", stats.summary());
            println!("wrote {} (folder:{} reads it back; perturbation.json, labels.csv, preview.png)", a.out.display(), a.out.display());
            Ok(true)
        }
        _ => Err(Error::msg("give either --data SPEC (a whole data set) or both --cover and --secret (one image)")),
    }
}

#[derive(Args)]
pub struct RevealArgs {
    #[arg(long)]
    weights: PathBuf,
    /// A protected image (PNG).
    #[arg(long)]
    image: PathBuf,
    /// Where to write the revealed secret (PNG).
    #[arg(long)]
    out: PathBuf,
    /// Semantic source to compare the revealed image with (procedural, single, noise or folder:DIR).
    #[arg(long, default_value = "single")]
    semantic: String,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value_t = 10)]
    classes: usize,
    /// Semantic images per class to compare with.
    #[arg(long, default_value_t = 16)]
    per_class: usize,
    #[arg(long, default_value = "cpu")]
    device: String,
}

pub fn run_reveal(a: RevealArgs) -> deephide::Result<bool> {
    let device = Device::parse(&a.device)?;
    let (net, _) = hiding::weights::load(&a.weights)?;
    for p in net.parameters() {
        p.move_to_device_(&device)?;
    }
    let img = load_png_tensor(&a.image)?;
    let (n, c, h, w) = (img.shape()[0], img.shape()[1], img.shape()[2], img.shape()[3]);
    let z = Tensor::zeros(&[n, 4 * c, h / 2, w / 2], DType::F32);
    let (_, secret) = no_grad(|| net.reveal(&img.to_device(&device)?, &z.to_device(&device)?))?;
    let sv: Vec<f32> = secret.to_vec_f32()?.iter().map(|v| v.clamp(0.0, 1.0)).collect();
    image_io::write_png_chw(&a.out, &sv, c, h, w)?;
    println!("revealed secret written to {}", a.out.display());
    // The owner's check: which class's semantic images is it closest to?
    let src = SemanticSource::parse(&a.semantic, a.seed)?;
    let mut rows = Vec::new();
    for y in 0..a.classes {
        let mut best = f64::INFINITY;
        let mut mean = 0.0;
        for i in 0..a.per_class {
            let s = src.image(y, i, (h, w), c)?;
            let rmse = (sv.iter().zip(&s).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>() / sv.len() as f64).sqrt();
            best = best.min(rmse);
            mean += rmse / a.per_class as f64;
        }
        rows.push((y, best, mean));
    }
    rows.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{:<6} {:>12} {:>12}   (RMS distance to the class's semantic images; lower = closer)", "class", "nearest", "mean");
    for (y, best, mean) in &rows {
        let _ = writeln!(out, "{y:<6} {best:>12.4} {mean:>12.4}");
    }
    if rows.len() > 1 {
        let _ = writeln!(out, "closest class: {} (margin {:.4} to the next)", rows[0].0, rows[1].1 - rows[0].1);
    }
    Ok(true)
}

/// One image per class (up to 10): rows are the clean image, the protected image, the perturbation
/// (amplified 10x around grey) and the secret revealed from the protected image.
fn preview_grid(net: &hiding::InvertibleHiding, clean: &data::Dataset, protected: &data::Dataset, device: &Device) -> deephide::Result<(Tensor, usize)> {
    let mut idx = Vec::new();
    for y in 0..clean.classes.min(10) {
        if let Some(i) = clean.labels.iter().position(|&l| l == y) {
            idx.push(i);
        }
    }
    let p = protected.batch(&idx)?;
    let (n, ch, h, w) = (idx.len(), clean.channels, clean.height, clean.width);
    let z = Tensor::zeros(&[n, 4 * ch, h / 2, w / 2], DType::F32);
    let (_, r) = no_grad(|| net.reveal(&p.to_device(device)?, &z.to_device(device)?))?;
    let r = r.to_device(&Device::Cpu)?.clamp(0.0, 1.0)?;
    super::poison::preview_grid(clean, protected, &[r])
}

/// Mean cosine similarity of same-class perturbation embeddings over a class-balanced sample of up to 50
/// images per class (plain, and centred on the embedding of an all-zero perturbation).
fn perturbation_concentration(features: &std::path::Path, clean: &data::Dataset, protected: &data::Dataset, device: &Device) -> deephide::Result<(f64, f64)> {
    let g = crate::cli::load_feature_extractor(features, device)?;
    let mut idx = Vec::new();
    for y in 0..clean.classes {
        idx.extend(clean.labels.iter().enumerate().filter(|(_, l)| **l == y).map(|(i, _)| i).take(50));
    }
    let labels = clean.batch_labels(&idx);
    let delta = protected.batch(&idx)?.sub(&clean.batch(&idx)?)?.to_device(device)?;
    let plain = hiding::losses::intra_class_cosine(g.as_ref(), &delta, &labels, false)?.unwrap_or(f64::NAN);
    let centred = hiding::losses::intra_class_cosine(g.as_ref(), &delta, &labels, true)?.unwrap_or(f64::NAN);
    Ok((plain, centred))
}
