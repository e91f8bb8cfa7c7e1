//! Training the hiding network: every cover is paired with a semantic image of its class; the loss is
//! w_guide * guide + w_reveal * reveal + w_low * low-frequency (+ w_lfc * LFC), all sum-reduced as in HiNet.
//!
//! Defaults and why: HiNet's Adam (betas 0.5/0.999, eps 1e-6, weight decay 1e-5) with lr 5e-4 and gradient
//! clipping at 20, which the reference run found stable where lr 1e-3 unclipped diverged; guide weight 10,
//! because at HiNet's weight 1 the stego PSNR stalls near 24-25 dB (SCIENCE.md) and the issue asks for 30.
//!
//! Robustness: checkpoints every N steps written atomically (parameters, Adam state, step, learning rate and
//! RNG state, so `resume` continues exactly); a NaN/inf loss or a spike above `spike_factor` times the
//! running mean rolls back to the last good state, halves the learning rate and logs it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::losses::{guide_loss, lfc_loss, low_frequency_loss, reveal_loss, Embedder};
use super::shortcut::{self, Distortion};
use super::model::InvertibleHiding;
use super::weights;
use crate::data::Dataset;
use crate::device::Device;
use crate::dtype::DType;
use crate::optim::{clip_grad_norm, Adam, Optimizer};
use crate::rng::Rng;
use crate::safetensors_io::SaveDType;
use crate::semantic::SemanticSource;
use crate::tensor::Tensor;
use crate::{no_grad, Error, Result};

/// Weights metadata key of the bounded-output budget (read by `hide`).
pub const BOUND_EPS_KEY: &str = "deephide.bound_eps";

/// The bounded-output budget stored in weights metadata, if any.
pub fn bound_eps_of(meta: &BTreeMap<String, String>) -> Result<Option<f64>> {
    match meta.get(BOUND_EPS_KEY) {
        None => Ok(None),
        Some(v) => match v.parse::<f64>() {
            Ok(e) if e > 0.0 && e.is_finite() => Ok(Some(e)),
            _ => Err(Error::msg(format!("weights metadata `{BOUND_EPS_KEY}` = `{v}` is not a positive number"))),
        },
    }
}

/// What stands in for the lost part r when revealing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZMode {
    Zeros,
    Gaussian,
}

#[derive(Clone, Debug)]
pub struct TrainOptions {
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    /// Multiply the learning rate by `lr_decay` every this many steps (0: never).
    pub lr_decay_every: usize,
    pub lr_decay: f64,
    /// Clip the global gradient norm (0: off).
    pub clip: f64,
    pub weight_decay: f64,
    pub w_guide: f64,
    pub w_reveal: f64,
    pub w_low: f64,
    pub w_lfc: f64,
    pub lfc_centred: bool,
    pub z: ZMode,
    /// Semantic images per class; training image i hides variant i mod this (the same mapping `hide` uses).
    pub secret_variants: usize,
    pub seed: u64,
    pub ckpt_every: usize,
    /// A loss above this multiple of its running mean counts as divergence.
    pub spike_factor: f64,
    /// Bounded output: stego = cover + eps * tanh((stego - cover) / eps) in training and in `hide` (0: off).
    pub bound_eps: f64,
    /// Round the stego to u8 levels (straight-through) before revealing.
    pub train_quantize: bool,
    /// Distortions between hiding and revealing; one is drawn per step.
    pub distort: Vec<Distortion>,
    /// Weight of the class-consistency loss (squared deviation of each perturbation from its class's mean
    /// in the batch).
    pub w_consistency: f64,
    /// Weight of the perturbation's energy outside the low-low Haar band of `highfreq_levels` levels (fewer
    /// when the image size does not divide by 2^levels).
    pub w_highfreq: f64,
    pub highfreq_levels: usize,
    /// Weight of sum (eps - |delta|)^2 with eps = `bound_eps` (or 8/255 without a bound).
    pub w_fill: f64,
    /// Weight of sum (delta - target)^2 (eps as for `w_fill`), target per `align_target`.
    pub w_align: f64,
    pub align_target: shortcut::AlignTarget,
    /// Weight of the error-minimising loss: mean cross-entropy of a surrogate small CNN on what is revealed
    /// from (the published, distorted stego). The surrogate trains jointly on the same loss (min-min, as
    /// error-minimising noise), so the perturbation becomes features a classifier picks up at once.
    pub w_em: f64,
    /// Width of the surrogate small CNN (16 -> 16/32/64 channels).
    pub em_width: usize,
    /// SGD learning rate of the surrogate (momentum 0.9).
    pub em_lr: f64,
    /// Re-initialise the surrogate every this many steps (0: never), so the perturbation has to be
    /// learnable from scratch, as for a victim, not only by a surrogate that has seen it for long.
    pub em_reset_every: usize,
    /// Weight of the adversarial-poisoning loss: mean cross-entropy of the frozen classifier given as the
    /// feature extractor (`--features`) on the published stego towards class (y + 1) mod K, so each image
    /// carries the (non-robust) features of the next class and a victim learns them as the wrong label.
    pub w_adv: f64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            steps: 1000,
            batch: 32,
            lr: 5e-4,
            lr_decay_every: 0,
            lr_decay: 0.5,
            clip: 20.0,
            weight_decay: 1e-5,
            w_guide: 10.0,
            w_reveal: 5.0,
            w_low: 1.0,
            w_lfc: 0.0,
            lfc_centred: true,
            z: ZMode::Zeros,
            secret_variants: 64,
            seed: 0,
            ckpt_every: 100,
            spike_factor: 20.0,
            bound_eps: 0.0,
            train_quantize: false,
            distort: Vec::new(),
            w_consistency: 0.0,
            w_highfreq: 0.0,
            highfreq_levels: 2,
            w_fill: 0.0,
            w_align: 0.0,
            align_target: shortcut::AlignTarget::Linear,
            w_em: 0.0,
            em_width: 16,
            em_lr: 0.01,
            em_reset_every: 0,
            w_adv: 0.0,
        }
    }
}

/// One logged step.
#[derive(Clone, Debug, Default)]
pub struct StepLog {
    pub step: usize,
    pub loss: f64,
    pub guide: f64,
    pub reveal: f64,
    pub low: f64,
    pub lfc: f64,
    pub cover_psnr: f64,
    pub secret_psnr: f64,
    pub grad_norm: f64,
    pub lr: f64,
    pub ms: f64,
    /// Error-minimising surrogate: its mean cross-entropy and batch accuracy on the published stego (0 when off).
    pub em_ce: f64,
    pub em_acc: f64,
    /// Adversarial-poisoning loss: the frozen classifier's mean cross-entropy towards class y + 1 (0 when off).
    pub adv_ce: f64,
}

impl StepLog {
    pub const CSV_HEADER: &'static str = "step,loss,guide,reveal,low,lfc,cover_psnr,secret_psnr,grad_norm,lr,ms,em_ce,em_acc,adv_ce";
    pub fn csv(&self) -> String {
        format!(
            "{},{:.6},{:.6},{:.6},{:.6},{:.6},{:.3},{:.3},{:.4},{:.3e},{:.1},{:.4},{:.3},{:.4}",
            self.step, self.loss, self.guide, self.reveal, self.low, self.lfc, self.cover_psnr, self.secret_psnr, self.grad_norm, self.lr, self.ms, self.em_ce, self.em_acc, self.adv_ce
        )
    }
}

/// Semantic images for training and hiding: `variants` per class, pre-drawn once (procedural drawing is
/// too slow to repeat every step). Image i of class y hides variant i mod `variants`.
pub struct SecretPool {
    images: Vec<Vec<Vec<f32>>>,
    chw: (usize, usize, usize),
}

impl SecretPool {
    pub fn new(src: &SemanticSource, classes: usize, variants: usize, chw: (usize, usize, usize)) -> Result<SecretPool> {
        let (c, h, w) = chw;
        let variants = variants.max(1);
        let mut images = Vec::with_capacity(classes);
        for y in 0..classes {
            images.push((0..variants).map(|v| src.image(y, v, (h, w), c)).collect::<Result<Vec<_>>>()?);
        }
        Ok(SecretPool { images, chw })
    }

    pub fn image(&self, class: usize, index: usize) -> &[f32] {
        let v = &self.images[class];
        &v[index % v.len()]
    }

    /// Secrets of the given (class, image index) pairs as an (N, C, H, W) tensor.
    pub fn batch(&self, items: &[(usize, usize)]) -> Result<Tensor> {
        let (c, h, w) = self.chw;
        let mut v = Vec::with_capacity(items.len() * c * h * w);
        for &(y, i) in items {
            v.extend_from_slice(self.image(y, i));
        }
        Tensor::from_vec(v, &[items.len(), c, h, w])
    }
}

fn psnr_from_sum(sum_sq: f64, n: usize) -> f64 {
    let mse = sum_sq / n.max(1) as f64;
    if mse <= 0.0 { f64::INFINITY } else { 10.0 * (1.0 / mse).log10() }
}

/// The error-minimising surrogate (`w_em`): a small CNN trained jointly with the hiding network.
struct Surrogate {
    model: Box<dyn crate::models::Classifier>,
    opt: crate::optim::Sgd,
    /// Step at which it was (re-)initialised.
    born: usize,
}

impl Surrogate {
    fn new(data: &Dataset, opts: &TrainOptions, device: &Device, step: usize) -> Result<Surrogate> {
        let cfg = crate::models::ModelConfig::new(crate::models::Arch::SmallCnn, data.channels, (data.height, data.width), data.classes)
            .with_width(opts.em_width.max(1));
        let mut rng = Rng::new(opts.seed ^ 0x7375_7272 ^ (step as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let model = crate::models::build(&cfg, &mut rng)?;
        model.to_device(device)?;
        let opt = crate::optim::Sgd::new(model.parameters(), opts.em_lr).momentum(0.9).weight_decay(5e-4);
        Ok(Surrogate { model, opt, born: step })
    }
}

/// Everything needed to continue training exactly.
struct Snapshot {
    params: Vec<Tensor>,
    optim: Vec<Option<(Tensor, Tensor, i32)>>,
    step: usize,
    lr: f64,
    rng: [u64; 4],
}

fn snapshot(net: &InvertibleHiding, opt: &Adam, step: usize, lr: f64, rng: &Rng) -> Result<Snapshot> {
    let params = net.parameters().iter().map(|p| p.copy()).collect::<Result<Vec<_>>>()?;
    let optim = opt
        .export_state()
        .into_iter()
        .map(|s| s.map(|(m, v, t)| Ok::<_, Error>((m.copy()?, v.copy()?, t))).transpose())
        .collect::<Result<Vec<_>>>()?;
    Ok(Snapshot { params, optim, step, lr, rng: rng.state() })
}

fn restore(net: &InvertibleHiding, opt: &mut Adam, s: &Snapshot) -> Result<()> {
    no_grad(|| -> Result<()> {
        for (p, v) in net.parameters().iter().zip(&s.params) {
            p.assign(v)?;
            p.zero_grad();
        }
        Ok(())
    })?;
    let optim = s
        .optim
        .iter()
        .map(|st| st.as_ref().map(|(m, v, t)| Ok::<_, Error>((m.copy()?, v.copy()?, *t))).transpose())
        .collect::<Result<Vec<_>>>()?;
    opt.import_state(optim)?;
    opt.set_lr(s.lr);
    Ok(())
}

/// Write a checkpoint (parameters, optimizer state, training state) atomically.
fn save_checkpoint(path: &Path, net: &InvertibleHiding, opt: &Adam, step: usize, lr: f64, rng: &Rng) -> Result<()> {
    let mut tensors = net.named_parameters();
    let mut meta = BTreeMap::new();
    for ((name, _), st) in net.named_parameters().iter().zip(opt.export_state()) {
        if let Some((m, v, t)) = st {
            tensors.push((format!("optim.m.{name}"), m));
            tensors.push((format!("optim.v.{name}"), v));
            meta.insert(format!("optim.t.{name}"), t.to_string());
        }
    }
    meta.insert("train.step".into(), step.to_string());
    meta.insert("train.lr".into(), format!("{lr:e}"));
    meta.insert("train.rng".into(), rng.state().iter().map(|v| v.to_string()).collect::<Vec<_>>().join(","));
    let mut all = net.cfg.to_metadata();
    all.extend(meta);
    crate::safetensors_io::save(path, &tensors, &all, SaveDType::F32)
}

/// Keep the header and the rows of steps up to `step` of a training log (rewritten atomically).
fn truncate_log(csv: &Path, step: usize) -> Result<()> {
    let text = std::fs::read_to_string(csv).map_err(|e| Error::io(csv, e))?;
    let mut kept = String::new();
    for (i, line) in text.lines().enumerate() {
        let keep = i == 0 || line.split(',').next().and_then(|s| s.trim().parse::<usize>().ok()).is_some_and(|s| s <= step);
        if keep {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    if kept.len() != text.len() {
        crate::image_io::write_atomic(csv, kept.as_bytes())?;
    }
    Ok(())
}

/// Temporary files of atomic writes (`.NAME.tmp-PID-N` or `.NAME.tmpPID`) left in `dir` by a process that
/// was killed: removed when that process no longer runs.
pub fn remove_stale_temp_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !name.starts_with('.') {
            continue;
        }
        let pid = name.rsplit_once(".tmp").and_then(|(_, rest)| rest.trim_start_matches('-').split('-').next().and_then(|p| p.parse::<u32>().ok()));
        if let Some(pid) = pid {
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Load a checkpoint into `net` and `opt`; returns (step, lr, rng).
fn load_checkpoint(path: &Path, net: &InvertibleHiding, opt: &mut Adam) -> Result<(usize, f64, Rng)> {
    let (loaded, mut w) = weights::load(path)?;
    if loaded.cfg != net.cfg {
        return Err(Error::format(path, format!("checkpoint config {:?} differs from the requested {:?}", loaded.cfg, net.cfg)));
    }
    let get = |k: &str| w.metadata.get(k).cloned().ok_or_else(|| Error::format(path, format!("not a training checkpoint: metadata `{k}` missing")));
    let step: usize = get("train.step")?.parse().map_err(|_| Error::format(path, "bad `train.step`"))?;
    let lr: f64 = get("train.lr")?.parse().map_err(|_| Error::format(path, "bad `train.lr`"))?;
    let rs: Vec<u64> = get("train.rng")?.split(',').map(|v| v.parse::<u64>()).collect::<std::result::Result<_, _>>().map_err(|_| Error::format(path, "bad `train.rng`"))?;
    let rng = Rng::from_state(rs.try_into().map_err(|_| Error::format(path, "bad `train.rng`"))?);
    no_grad(|| -> Result<()> {
        for (p, q) in net.parameters().iter().zip(loaded.parameters()) {
            p.assign(&q)?;
        }
        Ok(())
    })?;
    let mut state = Vec::new();
    for (name, p) in net.named_parameters() {
        let t = w.metadata.get(&format!("optim.t.{name}")).cloned();
        state.push(match t {
            None => None,
            Some(t) => {
                let t: i32 = t.parse().map_err(|_| Error::format(path, format!("bad `optim.t.{name}`")))?;
                let m = w.take(&format!("optim.m.{name}"), p.shape())?;
                let v = w.take(&format!("optim.v.{name}"), p.shape())?;
                Some((m.to_device(&p.device())?, v.to_device(&p.device())?, t))
            }
        });
    }
    opt.import_state(state)?;
    opt.set_lr(lr);
    Ok((step, lr, rng))
}

pub struct TrainReport {
    pub log: Vec<StepLog>,
    pub wall_s: f64,
    /// Divergence events: (step, message).
    pub rollbacks: Vec<(usize, String)>,
}

impl TrainReport {
    /// Mean of the last `k` logged steps of a field.
    pub fn tail_mean(&self, k: usize, f: impl Fn(&StepLog) -> f64) -> f64 {
        let t = &self.log[self.log.len().saturating_sub(k)..];
        t.iter().map(&f).sum::<f64>() / t.len().max(1) as f64
    }
}

/// Where training writes: final weights, rolling checkpoint, CSV log and loss-curve plot.
pub struct TrainOutput {
    pub dir: PathBuf,
}

impl TrainOutput {
    pub fn weights(&self) -> PathBuf {
        self.dir.join("hiding.safetensors")
    }
    pub fn checkpoint(&self) -> PathBuf {
        self.dir.join("checkpoint.safetensors")
    }
    pub fn csv(&self) -> PathBuf {
        self.dir.join("train_log.csv")
    }
    pub fn plot(&self) -> PathBuf {
        self.dir.join("loss_curves.png")
    }
}

/// Train `net` on `data` (covers) with secrets from `pool`. With `out`, writes checkpoints, the CSV log and
/// the plot there; with `resume`, continues from that checkpoint.
#[allow(clippy::too_many_arguments)]
pub fn train(
    net: &InvertibleHiding,
    data: &Dataset,
    pool: &SecretPool,
    opts: &TrainOptions,
    lfc: Option<&dyn Embedder>,
    device: &Device,
    out: Option<&TrainOutput>,
    resume: Option<&Path>,
    show_progress: bool,
) -> Result<TrainReport> {
    if data.channels != net.cfg.channels {
        return Err(Error::msg(format!("the data has {} channels, the network hides {}-channel images", data.channels, net.cfg.channels)));
    }
    if data.is_empty() || opts.batch == 0 {
        return Err(Error::msg("training needs a non-empty data set and a batch size of at least 1"));
    }
    let weights = [
        ("guide", opts.w_guide),
        ("reveal", opts.w_reveal),
        ("low", opts.w_low),
        ("lfc", opts.w_lfc),
        ("consistency", opts.w_consistency),
        ("highfreq", opts.w_highfreq),
        ("fill", opts.w_fill),
        ("align", opts.w_align),
        ("em", opts.w_em),
        ("adv", opts.w_adv),
    ];
    for (name, w) in weights {
        if !(w >= 0.0 && w.is_finite()) {
            return Err(Error::msg(format!("loss weight --w-{name} must be a finite number >= 0, got {w}")));
        }
    }
    if opts.w_em > 0.0 && !(opts.em_lr > 0.0 && opts.em_lr.is_finite()) {
        return Err(Error::msg(format!("--em-lr must be positive, got {}", opts.em_lr)));
    }
    let mut opt = Adam::new(net.parameters(), opts.lr).betas(0.5, 0.999).eps(1e-6).weight_decay(opts.weight_decay);
    let mut rng = Rng::new(opts.seed);
    let mut surrogate = if opts.w_em > 0.0 { Some(Surrogate::new(data, opts, device, 0)?) } else { None };
    let mut step = 0;
    let mut lr = opts.lr;
    if let Some(path) = resume {
        (step, lr, rng) = load_checkpoint(path, net, &mut opt)?;
        if step > opts.steps {
            return Err(Error::msg(format!(
                "the checkpoint {} is at step {step}, past --steps {}; give --steps larger than {step} to train on",
                path.display(),
                opts.steps
            )));
        }
        eprintln!("resumed from {} at step {step}, lr {lr:.3e}", path.display());
    }
    let mut csv = match out {
        Some(o) => {
            std::fs::create_dir_all(&o.dir).map_err(|e| Error::io(&o.dir, e))?;
            remove_stale_temp_files(&o.dir);
            let fresh = resume.is_none() || !o.csv().exists();
            if !fresh {
                // Rows logged after the checkpoint (a run killed between checkpoints) are redone: drop them.
                truncate_log(&o.csv(), step)?;
            }
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(!fresh)
                .write(true)
                .truncate(fresh)
                .open(o.csv())
                .map_err(|e| Error::io(o.csv(), e))?;
            if fresh {
                writeln!(f, "{}", StepLog::CSV_HEADER).map_err(|e| Error::io(o.csv(), e))?;
            }
            Some(f)
        }
        None => None,
    };
    let (h, w) = (data.height, data.width);
    let half = (net.cfg.half(), h / 2, w / 2);
    let mut report = TrainReport { log: Vec::new(), wall_s: 0.0, rollbacks: Vec::new() };
    let mut good = snapshot(net, &opt, step, lr, &rng)?;
    let mut ema: Option<f64> = None;
    let start = Instant::now();
    let mut progress = show_progress.then(|| crate::progress::Progress::new("train", opts.steps, "step"));
    if let Some(p) = progress.as_mut() {
        p.inc(step);
    }
    while step < opts.steps {
        if opts.lr_decay_every > 0 {
            let decays = step / opts.lr_decay_every;
            opt.set_lr(lr * opts.lr_decay.powi(decays as i32));
        }
        let t0 = Instant::now();
        let idx: Vec<usize> = (0..opts.batch).map(|_| rng.below(data.len())).collect();
        let labels = data.batch_labels(&idx);
        let cover = data.batch(&idx)?.to_device(device)?;
        let items: Vec<(usize, usize)> = labels.iter().zip(&idx).map(|(&y, &i)| (y, i)).collect();
        let secret = pool.batch(&items)?.to_device(device)?;
        let z = match opts.z {
            ZMode::Zeros => Tensor::zeros(&[opts.batch, half.0, half.1, half.2], DType::F32),
            ZMode::Gaussian => Tensor::randn(&[opts.batch, half.0, half.1, half.2], 1.0, DType::F32, &mut rng),
        }
        .to_device(device)?;

        let hidden = net.hide(&cover, &secret)?;
        let stego = if opts.bound_eps > 0.0 { shortcut::bound_stego(&hidden.stego, &cover, opts.bound_eps)? } else { hidden.stego.clone() };
        let mut seen = stego.clone();
        if opts.train_quantize {
            seen = shortcut::quantize_st(&seen)?;
        }
        if let Some(d) = shortcut::pick(&opts.distort, &mut rng) {
            seen = d.apply(&seen)?;
        }
        let (_, revealed) = net.reveal(&seen, &z)?;
        let g = guide_loss(&stego, &cover)?;
        let r = reveal_loss(&revealed, &secret)?;
        let l = low_frequency_loss(&stego, &cover)?;
        let mut loss = g.mul_scalar(opts.w_guide)?.add(&r.mul_scalar(opts.w_reveal)?)?.add(&l.mul_scalar(opts.w_low)?)?;
        let delta = stego.sub(&cover)?;
        if opts.w_consistency > 0.0 {
            loss = loss.add(&shortcut::class_consistency_loss(&delta, &labels)?.mul_scalar(opts.w_consistency)?)?;
        }
        // As many Haar levels as asked for and the image size allows (28x28: 2, 30x30: 1).
        let hf_levels = (0..=opts.highfreq_levels).rev().find(|&l| h % (1 << l) == 0 && w % (1 << l) == 0).unwrap_or(0);
        if opts.w_highfreq > 0.0 && hf_levels > 0 {
            loss = loss.add(&shortcut::highfreq_loss(&delta, hf_levels)?.mul_scalar(opts.w_highfreq)?)?;
        }
        let budget = if opts.bound_eps > 0.0 { opts.bound_eps } else { 8.0 / 255.0 };
        if opts.w_fill > 0.0 {
            loss = loss.add(&shortcut::budget_fill_loss(&delta, budget)?.mul_scalar(opts.w_fill)?)?;
        }
        if opts.w_align > 0.0 {
            loss = loss.add(&shortcut::semantic_align_loss(&delta, &secret, budget, opts.align_target)?.mul_scalar(opts.w_align)?)?;
        }
        let (mut em_ce, mut em_acc) = (0.0, 0.0);
        if let Some(sur) = surrogate.as_mut() {
            if opts.em_reset_every > 0 && step > 0 && step % opts.em_reset_every == 0 && sur.born != step {
                *sur = Surrogate::new(data, opts, device, step)?;
            }
            sur.model.set_training(true);
            let logits = sur.model.forward(&seen)?;
            let ce = crate::nn::functional::cross_entropy(&logits, &labels, 0.0)?;
            em_ce = ce.item()?;
            let lv = logits.to_vec_f64()?;
            let k = data.classes;
            let hits = labels.iter().enumerate().filter(|&(i, &y)| {
                let row = &lv[i * k..(i + 1) * k];
                (0..k).all(|j| row[j] <= row[y])
            });
            em_acc = hits.count() as f64 / labels.len() as f64;
            loss = loss.add(&ce.mul_scalar(opts.w_em)?)?;
        }
        let mut adv_ce = 0.0;
        if opts.w_adv > 0.0 {
            let g = lfc.ok_or_else(|| Error::msg("the adversarial-poisoning loss needs a frozen classifier (--features)"))?;
            let k = data.classes;
            let next: Vec<usize> = labels.iter().map(|&y| (y + 1) % k).collect();
            let ce = crate::nn::functional::cross_entropy(&g.classify(&seen)?, &next, 0.0)?;
            adv_ce = ce.item()?;
            loss = loss.add(&ce.mul_scalar(opts.w_adv)?)?;
        }
        let mut lfc_v = 0.0;
        if let (Some(emb), true) = (lfc, opts.w_lfc > 0.0) {
            if let Some(lf) = lfc_loss(emb, &delta, &labels, opts.lfc_centred)? {
                lfc_v = lf.item()?;
                loss = loss.add(&lf.mul_scalar(opts.w_lfc)?)?;
            }
        }
        let loss_v = loss.item()?;
        let spike = ema.is_some_and(|m| loss_v > opts.spike_factor * m);
        if !loss_v.is_finite() || spike {
            drop((loss, hidden, revealed, stego, seen, delta));
            let why = if spike { format!("loss spike {loss_v:.4e} (running mean {:.4e})", ema.unwrap_or(0.0)) } else { format!("loss is {loss_v}") };
            restore(net, &mut opt, &good)?;
            lr = good.lr * 0.5;
            opt.set_lr(lr);
            step = good.step;
            rng = Rng::from_state(good.rng);
            good.lr = lr;
            let msg = format!("{why}: rolled back to step {step}, learning rate lowered to {lr:.3e}");
            eprintln!("\ndivergence guard: {msg}");
            report.rollbacks.push((step, msg));
            if lr < opts.lr * 1e-3 {
                return Err(Error::msg(format!("training keeps diverging (learning rate now {lr:.3e}); giving up")));
            }
            continue;
        }
        opt.zero_grad();
        if let Some(sur) = surrogate.as_mut() {
            sur.opt.zero_grad();
        }
        loss.backward()?;
        let grad_norm = if opts.clip > 0.0 { clip_grad_norm(&net.parameters(), opts.clip)? } else { 0.0 };
        opt.step()?;
        if let Some(sur) = surrogate.as_mut() {
            // The surrogate's gradient is w_em times that of its own mean cross-entropy: undo the weight.
            for p in sur.model.parameters() {
                if let Some(g) = p.grad() {
                    p.set_grad(Some(g.mul_scalar(1.0 / opts.w_em)?));
                }
            }
            sur.opt.step()?;
        }
        step += 1;
        ema = Some(match ema {
            None => loss_v,
            Some(m) => 0.95 * m + 0.05 * loss_v,
        });
        let n_img = cover.numel();
        let entry = StepLog {
            step,
            loss: loss_v,
            guide: g.item()?,
            reveal: r.item()?,
            low: l.item()?,
            lfc: lfc_v,
            cover_psnr: psnr_from_sum(g.item()?, n_img),
            secret_psnr: psnr_from_sum(r.item()?, n_img),
            grad_norm,
            lr: opt.lr(),
            ms: t0.elapsed().as_secs_f64() * 1e3,
            em_ce,
            em_acc,
            adv_ce,
        };
        if let Some(f) = csv.as_mut() {
            writeln!(f, "{}", entry.csv()).map_err(|e| Error::io("train_log.csv", e))?;
        }
        if let Some(p) = progress.as_mut() {
            p.set_message(format!(
                "loss {:.3e} cover {:.1} dB secret {:.1} dB",
                entry.loss, entry.cover_psnr, entry.secret_psnr
            ));
            p.inc(1);
        }
        report.log.push(entry);
        if opts.ckpt_every > 0 && step % opts.ckpt_every == 0 {
            good = snapshot(net, &opt, step, lr, &rng)?;
            if let Some(o) = out {
                save_checkpoint(&o.checkpoint(), net, &opt, step, lr, &rng)?;
            }
        }
    }
    if let Some(p) = progress.as_mut() {
        p.finish();
    }
    report.wall_s = start.elapsed().as_secs_f64();
    if let Some(o) = out {
        save_checkpoint(&o.checkpoint(), net, &opt, step, lr, &rng)?;
        let mut extra = BTreeMap::new();
        extra.insert("train.steps".into(), step.to_string());
        if opts.bound_eps > 0.0 {
            extra.insert(BOUND_EPS_KEY.into(), format!("{:e}", opts.bound_eps));
        }
        weights::save(net, &o.weights(), SaveDType::F32, &extra)?;
        plot_log(&o.csv(), &o.plot())?;
    }
    Ok(report)
}

/// Plot the loss curves and PSNRs of a training CSV log.
pub fn plot_log(csv: &Path, png: &Path) -> Result<()> {
    let text = std::fs::read_to_string(csv).map_err(|e| Error::io(csv, e))?;
    let mut cols: Vec<Vec<(f64, f64)>> = vec![Vec::new(); 7];
    for line in text.lines().skip(1) {
        let f: Vec<f64> = line.split(',').map(|v| v.parse().unwrap_or(f64::NAN)).collect();
        if f.len() < 8 {
            continue;
        }
        for (k, col) in [1usize, 2, 3, 4, 5, 6, 7].iter().enumerate() {
            cols[k].push((f[0], f[*col]));
        }
    }
    let names = ["loss", "guide", "reveal", "low", "lfc", "cover psnr", "secret psnr"];
    let losses: Vec<crate::plot::Series> = (0..4).map(|k| crate::plot::Series { name: names[k].into(), points: cols[k].clone() }).collect();
    crate::plot::line_chart(png, "hiding network training", "step", "loss", &losses, true)?;
    let psnr_png = png.with_file_name("psnr_curves.png");
    let psnrs: Vec<crate::plot::Series> = (5..7).map(|k| crate::plot::Series { name: names[k].into(), points: cols[k].clone() }).collect();
    crate::plot::line_chart(psnr_png, "hiding network PSNR", "step", "dB", &psnrs, false)
}
