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
    /// After hiding, move each pixel whose perturbation could cross a level boundary of this many bits of
    /// depth reduction (within --eps) just across it, so that part of the hidden class signal survives
    /// `bit-depth-N` (0: off). See experiments/protection.md.
    #[arg(long, default_value_t = 0)]
    push_levels: u32,
    /// Also report how concentrated the perturbations are in this feature extractor's space (the LFC
    /// measure: mean cosine similarity of same-class perturbation embeddings, plain and centred).
    #[arg(long)]
    features: Option<PathBuf>,
}

/// `8/255`, `0.03` or `0` (see [`deephide::poison::budget::parse_budget`]).
pub fn parse_eps(s: &str) -> deephide::Result<f64> {
    deephide::poison::budget::parse_budget(s, "--eps")
}

fn load_png_tensor(path: &PathBuf) -> deephide::Result<Tensor> {
    let (chw, c, h, w) = image_io::read_png_chw(path)?;
    Tensor::from_vec(chw, &[1, c, h, w])
}

pub fn run(a: HideArgs) -> deephide::Result<bool> {
    let device = Device::parse(&a.device)?;
    let eps = parse_eps(&a.eps)?;
    // Options first: a wrong one is reported before any work.
    if a.batch == 0 {
        return Err(Error::msg("--batch must be at least 1"));
    }
    if a.secret_variants == 0 {
        return Err(Error::msg("--secret-variants must be at least 1"));
    }
    if a.subset == Some(0) {
        return Err(Error::msg("--subset must be at least 1"));
    }
    if a.push_levels > 7 {
        return Err(Error::msg(format!("--push-levels must be in 0..=7 bits, got {}", a.push_levels)));
    }
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
            data::publish::check_output_file(&a.out)?;
            let c = load_png_tensor(cover)?;
            let s = load_png_tensor(secret)?;
            if c.shape() != s.shape() {
                return Err(Error::msg(format!("cover {} is {:?} but secret {} is {:?}", cover.display(), c.shape(), secret.display(), s.shape())));
            }
            let h = no_grad(|| net.hide(&c.to_device(&device)?, &s.to_device(&device)?))?;
            let st = h.stego.to_vec_f32()?;
            if st.iter().any(|v| !v.is_finite()) {
                return Err(Error::msg(format!("the hiding network {} produced a non-finite image; nothing was written", a.weights.display())));
            }
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
            let _lock = data::publish::OutputLock::acquire(&a.out)?;
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
            // The refinement's options are checked even when it is off (a typo is still a typo); its budget
            // only matters when it runs.
            hiding::EmRefineOptions { eps: if eps > 0.0 { eps } else { 8.0 / 255.0 }, ..em_opts.clone() }.validate()?;
            if ds.is_empty() {
                return Err(Error::msg(format!("{}: the training split has no images", ds.name)));
            }
            // The feature extractor of --features is loaded (and checked) now, not after the long pass.
            let features = match &a.features {
                Some(f) => Some((f.clone(), crate::cli::load_feature_extractor(f, &device).map_err(|e| Error::msg(format!("--features: {e}")))?)),
                None => None,
            };
            let mut progress = deephide::progress::Progress::new("hide", ds.len(), "img");
            let (mut protected, mut stats) = hiding::protect_dataset(&net, &ds, &pool, eps, bound, a.batch, &device, |n| progress.inc(n))?;
            progress.finish();
            let mut push_json = None;
            if a.push_levels > 0 {
                if eps <= 0.0 {
                    return Err(Error::msg("--push-levels needs a budget (--eps > 0)"));
                }
                let share = hiding::protect::push_across_levels(&ds, &mut protected, eps, a.push_levels)?;
                println!("pushed {:.2}% of pixels across a {}-bit level boundary", 100.0 * share, a.push_levels);
                push_json = Some(format!("{{\"bits\": {}, \"share_of_pixels\": {share:.6}}}", a.push_levels));
                stats = hiding::measure_protected(&net, &ds, &protected, &pool, eps, a.batch, &device)?;
            }
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
            if let Some(p) = push_json {
                json = json.trim_end().trim_end_matches('}').to_string() + &format!(", \"push_levels\": {p}}}\n");
            }
            if let Some((f, g)) = &features {
                let (plain, centred) = perturbation_concentration(g.as_ref(), &ds, &protected, &device)?;
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
    /// Data set (SPEC) on which to calibrate the "hidden image found" threshold: some of its training images
    /// are hidden with these weights and revealed, next to the same images clean. Default: the bundled
    /// Fashion-MNIST subset for one-channel weights; `none` to skip.
    #[arg(long)]
    calibrate: Option<String>,
    /// A fixed threshold on the RMS distance to the nearest class instead of calibrating.
    #[arg(long)]
    threshold: Option<f64>,
    /// L-inf budget the published images were made with (for calibration).
    #[arg(long, default_value = "8/255")]
    eps: String,
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// RMS distance from `revealed` (CHW, clamped) to the nearest semantic image of each class.
fn class_distances(revealed: &[f32], src: &SemanticSource, classes: usize, per_class: usize, c: usize, h: usize, w: usize) -> deephide::Result<Vec<(usize, f64, f64)>> {
    let mut rows = Vec::with_capacity(classes);
    for y in 0..classes {
        let mut best = f64::INFINITY;
        let mut mean = 0.0;
        for i in 0..per_class {
            let s = src.image(y, i, (h, w), c)?;
            let rmse = (revealed.iter().zip(&s).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>() / revealed.len() as f64).sqrt();
            best = best.min(rmse);
            mean += rmse / per_class as f64;
        }
        rows.push((y, best, mean));
    }
    Ok(rows)
}

/// Reveal (z = 0) from a batch of images (N, C, H, W) and clamp to [0, 1].
fn reveal_batch(net: &hiding::InvertibleHiding, x: &Tensor, device: &Device) -> deephide::Result<Vec<f32>> {
    let (n, c, h, w) = (x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]);
    let z = Tensor::zeros(&[n, 4 * c, h / 2, w / 2], DType::F32).to_device(device)?;
    let (_, secret) = no_grad(|| net.reveal(&x.to_device(device)?, &z))?;
    Ok(secret.to_vec_f32()?.iter().map(|v| v.clamp(0.0, 1.0)).collect())
}

/// The threshold on the nearest-class distance that separates images carrying a hidden semantic image
/// from clean ones, measured on `spec`: 64 class-balanced training images, hidden and published within
/// `eps` (and the weights' bound), revealed; the same images clean, revealed. Returns (threshold, highest
/// protected distance, lowest clean distance).
fn calibrate(net: &hiding::InvertibleHiding, bound: Option<f64>, spec: &str, a: &RevealArgs, eps: f64, device: &Device) -> deephide::Result<(f64, f64, f64)> {
    let ds = data::load(spec, Split::Train)?;
    let ds = data::balanced_subset(&ds, Some(64), &mut deephide::Rng::new(1));
    if ds.channels != net.cfg.channels {
        return Err(Error::msg(format!("--calibrate {spec}: {}-channel images for {}-channel weights", ds.channels, net.cfg.channels)));
    }
    let src = SemanticSource::parse(&a.semantic, a.seed)?;
    let classes = ds.classes.min(a.classes.max(1));
    let pool = SecretPool::new(&src, ds.classes, 1, (ds.channels, ds.height, ds.width))?;
    let (prot, _) = hiding::protect_dataset(net, &ds, &pool, eps, bound, 64, device, |_| {})?;
    let idx: Vec<usize> = (0..ds.len()).collect();
    let (c, h, w) = (ds.channels, ds.height, ds.width);
    let per = c * h * w;
    let nearest = |set: &data::Dataset| -> deephide::Result<Vec<f64>> {
        let r = reveal_batch(net, &set.batch(&idx)?, device)?;
        (0..idx.len())
            .map(|k| Ok(class_distances(&r[k * per..(k + 1) * per], &src, classes, a.per_class, c, h, w)?.iter().map(|t| t.1).fold(f64::INFINITY, f64::min)))
            .collect()
    };
    let dp = nearest(&prot)?;
    let dc = nearest(&ds)?;
    let hi_p = dp.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let lo_c = dc.iter().copied().fold(f64::INFINITY, f64::min);
    Ok(((hi_p + lo_c) / 2.0, hi_p, lo_c))
}

pub fn run_reveal(a: RevealArgs) -> deephide::Result<bool> {
    if a.classes == 0 || a.per_class == 0 {
        return Err(Error::msg(format!("--classes and --per-class must be at least 1 (got {} and {})", a.classes, a.per_class)));
    }
    if let Some(t) = a.threshold {
        if !(t.is_finite() && t > 0.0) {
            return Err(Error::msg(format!("--threshold must be a positive number, got {t}")));
        }
    }
    let eps = parse_eps(&a.eps)?;
    data::publish::check_output_file(&a.out)?;
    let device = Device::parse(&a.device)?;
    let (net, wts) = hiding::weights::load(&a.weights)?;
    for p in net.parameters() {
        p.move_to_device_(&device)?;
    }
    let img = load_png_tensor(&a.image)?;
    let (c, h, w) = (img.shape()[1], img.shape()[2], img.shape()[3]);
    if c != net.cfg.channels {
        return Err(Error::msg(format!("{} has {c} channel(s), the network hides {}-channel images", a.image.display(), net.cfg.channels)));
    }
    if h % 2 != 0 || w % 2 != 0 {
        return Err(Error::msg(format!("{} is {w}x{h}; the Haar transform needs even sides", a.image.display())));
    }
    let sv = reveal_batch(&net, &img, &device)?;
    image_io::write_png_chw(&a.out, &sv, c, h, w)?;
    println!("revealed secret written to {}", a.out.display());
    // The owner's check: which class's semantic images is it closest to, and is it close enough at all?
    let src = SemanticSource::parse(&a.semantic, a.seed)?;
    let mut rows = class_distances(&sv, &src, a.classes, a.per_class, c, h, w)?;
    rows.sort_by(|a, b| a.1.total_cmp(&b.1));
    let bound = hiding::bound_eps_of(&wts.metadata)?;
    let threshold: Option<f64> = match (a.threshold, a.calibrate.as_deref()) {
        (Some(t), _) => Some(t),
        (None, Some("none")) => None,
        (None, spec) => {
            let spec = match spec {
                Some(s) => Some(s.to_string()),
                None if net.cfg.channels == 1 => Some("default".to_string()),
                None => None,
            };
            match spec {
                None => None,
                Some(spec) => {
                    let (t, hi_p, lo_c) = calibrate(&net, bound, &spec, &a, eps, &device)?;
                    if hi_p >= lo_c {
                        eprintln!("warning: calibration on {spec}: protected and clean images overlap (protected up to {hi_p:.4}, clean from {lo_c:.4}); the verdict is unreliable");
                    }
                    println!("calibrated on {spec}: nearest-class distance of protected images up to {hi_p:.4}, of clean images from {lo_c:.4}; threshold {t:.4}");
                    Some(t)
                }
            }
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{:<6} {:>12} {:>12}   (RMS distance to the class's semantic images; lower = closer)", "class", "nearest", "mean");
    for (y, best, mean) in &rows {
        let _ = writeln!(out, "{y:<6} {best:>12.4} {mean:>12.4}");
    }
    let margin = rows.get(1).map(|r| r.1 - rows[0].1);
    match threshold {
        Some(t) if rows[0].1 > t => {
            let _ = writeln!(out, "no hidden image found: the nearest class ({}) is at {:.4}, above the calibrated threshold {t:.4}", rows[0].0, rows[0].1);
            Ok(false)
        }
        _ => {
            let _ = match margin {
                Some(m) => writeln!(out, "closest class: {} (margin {m:.4} to the next){}", rows[0].0, if threshold.is_none() { " [uncalibrated: give --calibrate SPEC or --threshold]" } else { "" }),
                None => writeln!(out, "closest class: {}", rows[0].0),
            };
            Ok(true)
        }
    }
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
fn perturbation_concentration(g: &dyn hiding::Embedder, clean: &data::Dataset, protected: &data::Dataset, device: &Device) -> deephide::Result<(f64, f64)> {
    let mut idx = Vec::new();
    for y in 0..clean.classes {
        idx.extend(clean.labels.iter().enumerate().filter(|(_, l)| **l == y).map(|(i, _)| i).take(50));
    }
    let labels = clean.batch_labels(&idx);
    let delta = protected.batch(&idx)?.sub(&clean.batch(&idx)?)?.to_device(device)?;
    let plain = hiding::losses::intra_class_cosine(g, &delta, &labels, false)?.unwrap_or(f64::NAN);
    let centred = hiding::losses::intra_class_cosine(g, &delta, &labels, true)?.unwrap_or(f64::NAN);
    Ok((plain, centred))
}
