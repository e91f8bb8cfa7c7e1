//! `deephide train`: train the invertible hiding network on a data set with semantic secrets.

use std::path::PathBuf;

use clap::Args;

use deephide::data::{self, Split};
use deephide::hiding::{self, HidingConfig, InvertibleHiding, SecretPool, TrainOptions, TrainOutput, ZMode};
use deephide::semantic::SemanticSource;
use deephide::{Device, Error, Rng};

/// The defaults are the best setting of experiments/protection.md (issue 9, row align-sign): one fixed
/// secret per class, bounded output at 8/255, u8 rounding before revealing, no concealing loss, and the
/// perturbation aligned with the sign of the class's semantic image at the full budget
/// (`--align-target sign --w-align 300`): a low-frequency, class-consistent shortcut that also survives
/// JPEG-10. The previous default (row align-fill) is `--align-target linear --w-fill 300`; the strongest
/// setting without alignment (row shortcut-c) is
/// `--w-align 0 --w-guide 1 --distort quant,jpeg10,bit2 --w-consistency 100 --w-highfreq 100 --w-fill 100`.
/// The paper's plain method is `--bound-eps 0 --train-quantize false --w-align 0 --w-guide 10`
/// (library: `TrainOptions::default()`).
#[derive(Args)]
pub struct TrainArgs {
    /// Training data (covers): default, fashion-mnist, idx:DIR, cifar10:DIR, cifar100:DIR, folder:DIR.
    #[arg(long, default_value = "default")]
    data: String,
    /// Semantic images: procedural, single, noise or folder:DIR. Default: one fixed image per class, the
    /// strongest lever measured (SCIENCE.md, experiments/protection.md).
    #[arg(long, default_value = "single")]
    semantic: String,
    /// Output directory: hiding.safetensors, checkpoint.safetensors, train_log.csv, loss_curves.png.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 1000)]
    steps: usize,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[arg(long, default_value_t = 5e-4)]
    lr: f64,
    /// Halve (times --lr-decay) the learning rate every N steps (0: never).
    #[arg(long, default_value_t = 0)]
    lr_decay_every: usize,
    #[arg(long, default_value_t = 0.5)]
    lr_decay: f64,
    /// Clip the global gradient norm (0: off).
    #[arg(long, default_value_t = 20.0)]
    clip: f64,
    #[arg(long, default_value_t = 16)]
    blocks: usize,
    #[arg(long, default_value_t = 32)]
    growth: usize,
    #[arg(long, default_value_t = 2.0)]
    clamp: f64,
    /// Weight of the concealing loss sum (stego - cover)^2 (0 by default: the bound, not this loss, keeps
    /// the perturbation within the budget).
    #[arg(long, default_value_t = 0.0)]
    w_guide: f64,
    #[arg(long, default_value_t = 5.0)]
    w_reveal: f64,
    #[arg(long, default_value_t = 1.0)]
    w_low: f64,
    /// Weight of the LFC loss (needs --features).
    #[arg(long, default_value_t = 0.0)]
    w_lfc: f64,
    /// LFC as literally specified (no centring); default is the centred form.
    #[arg(long)]
    lfc_plain: bool,
    /// Frozen feature extractor for LFC (from `deephide train-features`).
    #[arg(long)]
    features: Option<PathBuf>,
    /// What replaces the lost part when revealing in training: zeros or gaussian.
    #[arg(long, default_value = "zeros")]
    z: String,
    /// Semantic images per class (image i hides variant i mod N); 1 = one fixed secret per class.
    #[arg(long, default_value_t = 1)]
    secret_variants: usize,
    /// Use only this many training images (class-balanced).
    #[arg(long)]
    train_subset: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value_t = 100)]
    ckpt_every: usize,
    /// Continue from a checkpoint written by an earlier run.
    #[arg(long)]
    resume: Option<PathBuf>,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Bounded output: stego = cover + eps * tanh((stego - cover) / eps), in training and (stored in the
    /// weights) in `hide`, so the secret is revealed from budget-limited images. A number or a fraction like
    /// 8/255; 0: off.
    #[arg(long, default_value = "8/255")]
    bound_eps: String,
    /// Round the stego image to u8 levels (straight-through gradient) before revealing in training
    /// (`--train-quantize false` to turn off).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    train_quantize: bool,
    /// Distortions between hiding and revealing in training, one drawn per step: comma-separated from quant,
    /// bit2 (2-bit depth, straight-through), blur (3x3 Gaussian), jpegQ (differentiable JPEG approximation
    /// at quality Q, e.g. jpeg10); none: off.
    #[arg(long, default_value = "none")]
    distort: String,
    /// Weight of the class-consistency loss: sum of squared deviations of each perturbation from the mean
    /// perturbation of its class in the batch.
    #[arg(long, default_value_t = 0.0)]
    w_consistency: f64,
    /// Weight of the perturbation's energy outside the low-low Haar band (--highfreq-levels levels), which
    /// JPEG and blur remove.
    #[arg(long, default_value_t = 0.0)]
    w_highfreq: f64,
    #[arg(long, default_value_t = 2)]
    highfreq_levels: usize,
    /// Weight of the budget-filling loss sum (eps - |delta|)^2 (eps: --bound-eps, or 8/255 without it).
    #[arg(long, default_value_t = 0.0)]
    w_fill: f64,
    /// Weight of the semantic-alignment loss sum (delta - target)^2: the perturbation should be the class's
    /// semantic image mapped to [-eps, eps] (eps: --bound-eps, or 8/255 without it), see --align-target.
    #[arg(long, default_value_t = 300.0)]
    w_align: f64,
    /// Alignment target: sign (eps sign(secret - mean secret): the shape at the full budget) or linear
    /// (eps (2 secret - 1)).
    #[arg(long, default_value = "sign")]
    align_target: String,
    /// Weight of the error-minimising loss: mean cross-entropy of a jointly trained surrogate small CNN on
    /// the published (quantised, distorted) stego images; 0: off.
    #[arg(long, default_value_t = 0.0)]
    w_em: f64,
    /// Width of the surrogate small CNN.
    #[arg(long, default_value_t = 16)]
    em_width: usize,
    /// SGD learning rate of the surrogate.
    #[arg(long, default_value_t = 0.01)]
    em_lr: f64,
    /// Re-initialise the surrogate every N steps (0: never).
    #[arg(long, default_value_t = 0)]
    em_reset_every: usize,
    /// Weight of the adversarial-poisoning loss: cross-entropy of the frozen classifier --features on the
    /// published stego towards class (y + 1) mod K; 0: off.
    #[arg(long, default_value_t = 0.0)]
    w_adv: f64,
}

pub fn parse_z(s: &str) -> deephide::Result<ZMode> {
    match s {
        "zeros" => Ok(ZMode::Zeros),
        "gaussian" => Ok(ZMode::Gaussian),
        other => Err(Error::msg(format!("unknown --z `{other}`: expected zeros or gaussian"))),
    }
}

pub fn run(a: TrainArgs) -> deephide::Result<bool> {
    let device = Device::parse(&a.device)?;
    let z = parse_z(&a.z)?;
    let mut ds = data::load(&a.data, Split::Train)?;
    if let Some(n) = a.train_subset {
        ds = data::balanced_subset(&ds, Some(n), &mut Rng::new(a.seed));
    }
    if ds.height % 2 != 0 || ds.width % 2 != 0 {
        return Err(Error::msg(format!("images are {}x{}: the Haar transform needs even height and width", ds.height, ds.width)));
    }
    // Options that cannot work with this data are refused by name, not silently adjusted.
    let max_levels = (1..=16).take_while(|&l| ds.height % (1 << l) == 0 && ds.width % (1 << l) == 0).last().unwrap_or(0);
    if a.w_highfreq > 0.0 && a.highfreq_levels > max_levels {
        return Err(Error::msg(format!(
            "--highfreq-levels {} does not fit {}x{} images: at most {max_levels} Haar levels divide them",
            a.highfreq_levels, ds.height, ds.width
        )));
    }
    if !(a.clip.is_finite() && a.clip >= 0.0) {
        return Err(Error::msg(format!("--clip must be a non-negative number (0: no clipping), got {}", a.clip)));
    }
    if !(a.lr.is_finite() && a.lr > 0.0) {
        return Err(Error::msg(format!("--lr must be a positive number, got {}", a.lr)));
    }
    for (name, v) in [("--em-width", a.em_width), ("--batch", a.batch), ("--blocks", a.blocks), ("--growth", a.growth), ("--secret-variants", a.secret_variants)] {
        if v == 0 {
            return Err(Error::msg(format!("{name} must be at least 1")));
        }
    }
    let src = SemanticSource::parse(&a.semantic, a.seed)?;
    eprintln!("data {}: {} images {}x{}x{}, {} classes; secrets: {}", a.data, ds.len(), ds.channels, ds.height, ds.width, ds.classes, src.spec());
    let pool = SecretPool::new(&src, ds.classes, a.secret_variants, (ds.channels, ds.height, ds.width))?;
    let cfg = HidingConfig { channels: ds.channels, blocks: a.blocks, growth: a.growth, clamp: a.clamp, slope: 0.01 };
    let net = InvertibleHiding::new(cfg, a.seed)?;
    for p in net.parameters() {
        p.move_to_device_(&device)?;
    }
    let opts = TrainOptions {
        steps: a.steps,
        batch: a.batch,
        lr: a.lr,
        lr_decay_every: a.lr_decay_every,
        lr_decay: a.lr_decay,
        clip: a.clip,
        w_guide: a.w_guide,
        w_reveal: a.w_reveal,
        w_low: a.w_low,
        w_lfc: a.w_lfc,
        lfc_centred: !a.lfc_plain,
        z,
        secret_variants: a.secret_variants,
        seed: a.seed,
        ckpt_every: a.ckpt_every,
        bound_eps: crate::cli::hide::parse_eps(&a.bound_eps).map_err(|_| Error::msg(format!("bad --bound-eps `{}`: expected a number or a fraction like 8/255 in [0, 1]", a.bound_eps)))?,
        train_quantize: a.train_quantize,
        distort: hiding::Distortion::parse_list(&a.distort)?,
        w_consistency: a.w_consistency,
        w_highfreq: a.w_highfreq,
        highfreq_levels: a.highfreq_levels,
        w_fill: a.w_fill,
        w_align: a.w_align,
        w_em: a.w_em,
        w_adv: a.w_adv,
        em_width: a.em_width,
        em_lr: a.em_lr,
        em_reset_every: a.em_reset_every,
        align_target: deephide::hiding::shortcut::AlignTarget::parse(&a.align_target).map_err(|e| Error::msg(format!("--align-target: {e}")))?,
        ..TrainOptions::default()
    };
    let features = match (&a.features, a.w_lfc > 0.0) {
        (Some(p), _) => Some(crate::cli::load_feature_extractor(p, &device)?),
        (None, true) => return Err(Error::msg("--w-lfc needs --features W (a feature extractor from `deephide train-features`)")),
        (None, false) if a.w_adv > 0.0 => return Err(Error::msg("--w-adv needs --features W (a classifier from `deephide train-features`)")),
        (None, false) => None,
    };
    let out = TrainOutput { dir: a.out.clone() };
    eprintln!("hiding network: {} blocks, {} parameters, device {}", a.blocks, net.num_parameters(), device.describe());
    let emb = features.as_ref().map(|f| f.as_ref() as &dyn hiding::Embedder);
    let rep = hiding::train(&net, &ds, &pool, &opts, emb, &device, Some(&out), a.resume.as_deref(), true)?;
    let k = 20.min(rep.log.len());
    println!(
        "trained {} steps in {:.1} s: cover PSNR {:.2} dB, revealed secret PSNR {:.2} dB (mean of the last {k} steps), {} rollbacks",
        rep.log.last().map_or(0, |l| l.step),
        rep.wall_s,
        rep.tail_mean(k, |l| l.cover_psnr),
        rep.tail_mean(k, |l| l.secret_psnr),
        rep.rollbacks.len()
    );
    println!("weights: {}\nlog: {}\nplot: {}", out.weights().display(), out.csv().display(), out.plot().display());
    Ok(true)
}
