//! Peer methods: the availability poisons people would pick instead of Deep Hiding, each at its paper's
//! settings adapted to small images, all publishing through the same writer as `hide` so that one protocol
//! (`deephide evaluate`) measures them side by side (`deephide poison --method NAME`).
//!
//! | method | file | budget (norm) |
//! | --- | --- | --- |
//! | `classwise-noise` | [`classwise_noise`] | L-inf |
//! | `em`, `em-classwise` | [`em`] | L-inf |
//! | `rem` | [`em`] (the robust variant of the same min-min loop) | L-inf |
//! | `tap` | [`tap`] | L-inf |
//! | `lsp` | [`lsp`] | L2 per image |
//! | `ar` | [`ar`] | L2 per image |
//! | `ops` | [`ops`] | one pixel (L0) per image |
//! | `dh` | [`dh`] (our Deep Hiding, as `hide`) | L-inf |
//!
//! Every method returns u8 images whose perturbation is checked against its budget, in its own norm, before
//! anything is written ([`Budget::check`]): rounding to u8 never pushes an image over it.

pub mod ar;
pub mod budget;
pub mod classwise_noise;
pub mod dh;
pub mod em;
pub mod lsp;
pub mod ops;
pub mod resume;
pub mod tap;

use std::path::PathBuf;

pub use budget::{Budget, BudgetReport};

use crate::data::Dataset;
use crate::device::Device;
use crate::{Error, Result};

/// The methods `deephide poison` knows, in the order `--list` prints them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    ClasswiseNoise,
    Em,
    EmClasswise,
    Rem,
    Tap,
    Lsp,
    Ar,
    Ops,
    Dh,
}

pub const ALL: [Method; 9] =
    [Method::ClasswiseNoise, Method::Em, Method::EmClasswise, Method::Rem, Method::Tap, Method::Lsp, Method::Ar, Method::Ops, Method::Dh];

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::ClasswiseNoise => "classwise-noise",
            Method::Em => "em",
            Method::EmClasswise => "em-classwise",
            Method::Rem => "rem",
            Method::Tap => "tap",
            Method::Lsp => "lsp",
            Method::Ar => "ar",
            Method::Ops => "ops",
            Method::Dh => "dh",
        }
    }

    pub fn parse(s: &str) -> Result<Method> {
        ALL.iter().copied().find(|m| m.name() == s).ok_or_else(|| {
            let names: Vec<&str> = ALL.iter().map(|m| m.name()).collect();
            Error::msg(format!("unknown --method `{s}`: expected one of {}", names.join(", ")))
        })
    }

    pub fn paper(self) -> &'static str {
        match self {
            Method::ClasswiseNoise => "class-wise uniform noise, the reference of Huang et al., ICLR 2021",
            Method::Em | Method::EmClasswise => "Huang et al., Unlearnable Examples: Making Personal Data Unexploitable, ICLR 2021",
            Method::Rem => "Fu et al., Robust Unlearnable Examples: Protecting Data Against Adversarial Learning, ICLR 2022",
            Method::Tap => "Fowl et al., Adversarial Examples Make Strong Poisons, NeurIPS 2021",
            Method::Lsp => "Yu et al., Availability Attacks Create Shortcuts, KDD 2022",
            Method::Ar => "Sandoval-Segura et al., Autoregressive Perturbations for Data Poisoning, NeurIPS 2022",
            Method::Ops => "Wu et al., One-Pixel Shortcut: On the Learning Preference of Deep Neural Networks, ICLR 2023",
            Method::Dh => "Meng et al., Semantic Deep Hiding for Robust Unlearnable Examples, IEEE TIFS 2024 (this tool)",
        }
    }

    /// Whether the method runs a long optimisation loop that `--resume` can continue.
    pub fn resumable(self) -> bool {
        matches!(self, Method::Em | Method::EmClasswise | Method::Rem | Method::Tap)
    }
}

/// Everything a method may use. Each method reads only its own fields; `settings` says which.
#[derive(Clone, Debug)]
pub struct PoisonOptions {
    /// L-inf budget of the L-inf methods (classwise-noise, em, rem, tap, dh), in [0, 1] pixel units.
    pub eps: f64,
    /// L2 budget per image of lsp and ar, in [0, 1] pixel units; `None`: the paper's value scaled to the
    /// image size (see [`default_l2`]).
    pub l2: Option<f64>,
    pub seed: u64,
    pub device: Device,
    /// em / rem: surrogate (small-cnn or resnet18) and its base width.
    pub surrogate: crate::models::Arch,
    pub surrogate_width: usize,
    /// em / rem: surrogate training steps (mini-batches) between two perturbation passes.
    pub train_steps: usize,
    /// em / rem: signed-gradient steps per perturbation update (APBench: 5).
    pub attack_steps: usize,
    /// em / rem / tap: size of one step (None: eps/5 for em and rem, eps/20 = 0.4/255 for tap).
    pub step_size: Option<f64>,
    /// tap: PGD iterations (the paper's 250 with 8 restarts cut to 50 with one, see `tap`).
    pub tap_steps: usize,
    /// em: stop once the surrogate's accuracy on the poisoned training set reaches this.
    pub stop_acc: f64,
    /// em / rem: most rounds (train steps + one perturbation pass) before giving up on the stop condition.
    pub max_rounds: usize,
    /// rem: radius of the adversarial inner maximisation.
    pub rem_radius: f64,
    /// rem: PGD steps of the inner maximisation.
    pub rem_adv_steps: usize,
    /// tap: a trained classifier to attack (`None`: train one on the clean data first).
    pub features: Option<PathBuf>,
    /// tap: epochs of the classifier it trains itself.
    pub tap_epochs: usize,
    /// lsp: patch grid (the image is split into `patch x patch` pixel patches).
    pub lsp_patch: Option<usize>,
    /// dh: the hiding network.
    pub weights: Option<PathBuf>,
    pub batch: usize,
    /// A file holding the state of an interrupted run (em, rem, tap), written after every round.
    pub resume: Option<PathBuf>,
}

impl Default for PoisonOptions {
    fn default() -> Self {
        PoisonOptions {
            eps: 8.0 / 255.0,
            l2: None,
            seed: 0,
            device: Device::Cpu,
            surrogate: crate::models::Arch::SmallCnn,
            surrogate_width: 32,
            train_steps: 10,
            attack_steps: 5,
            tap_steps: 50,
            step_size: None,
            stop_acc: 0.99,
            max_rounds: 30,
            rem_radius: 4.0 / 255.0,
            rem_adv_steps: 5,
            features: None,
            tap_epochs: 10,
            lsp_patch: None,
            weights: None,
            batch: 128,
            resume: None,
        }
    }
}

impl PoisonOptions {
    pub fn validate(&self) -> Result<()> {
        let unit = |name: &str, v: f64| -> Result<()> {
            if v.is_finite() && (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(Error::msg(format!("{name} must be in [0, 1], got {v}")))
            }
        };
        unit("--eps", self.eps)?;
        unit("--rem-radius", self.rem_radius)?;
        unit("--stop-acc", self.stop_acc)?;
        if let Some(l2) = self.l2 {
            if !(l2.is_finite() && l2 >= 0.0) {
                return Err(Error::msg(format!("--l2 must be a non-negative number, got {l2}")));
            }
        }
        if let Some(s) = self.step_size {
            if !(s.is_finite() && s > 0.0) {
                return Err(Error::msg(format!("--step-size must be positive, got {s}")));
            }
        }
        for (name, v) in [
            ("--surrogate-width", self.surrogate_width),
            ("--train-steps", self.train_steps),
            ("--attack-steps", self.attack_steps),
            ("--tap-steps", self.tap_steps),
            ("--max-rounds", self.max_rounds),
            ("--batch", self.batch),
            ("--tap-epochs", self.tap_epochs),
        ] {
            if v == 0 {
                return Err(Error::msg(format!("{name} must be at least 1")));
            }
        }
        if self.batch < 2 {
            return Err(Error::msg("--batch must be at least 2 (the surrogates use BatchNorm)"));
        }
        if self.lsp_patch == Some(0) {
            return Err(Error::msg("--lsp-patch must be at least 1"));
        }
        Ok(())
    }

    /// Step size of em and rem: the given one, or `eps / 5` (APBench's 1.6/255 at 8/255).
    pub fn step(&self) -> f64 {
        self.step_size.unwrap_or(self.eps / 5.0)
    }

    /// Step size of tap: the given one, or `eps / 20` (TAP's 0.4/255 at 8/255).
    pub fn tap_step(&self) -> f64 {
        self.step_size.unwrap_or(self.eps / 20.0)
    }
}

/// The paper's L2 budget for LSP and AR scaled to this image size: both papers use an L2 norm of
/// `sqrt(3 * 32 * 32) * r` on CIFAR-10, i.e. an RMS of `r` per pixel value (LSP: r = 6/255 as in
/// APBench; AR: 1.0 over 3,072 values, RMS 0.018 = 4.6/255). Keeping the RMS fixed keeps the perturbation
/// equally visible at any size: 1x28x28 gets `28 * r`.
pub fn default_l2(method: Method, values_per_image: usize) -> f64 {
    let rms = match method {
        Method::Ar => 1.0 / (3.0f64 * 32.0 * 32.0).sqrt(),
        _ => 6.0 / 255.0,
    };
    rms * (values_per_image as f64).sqrt()
}

/// What one run produced.
pub struct Poisoned {
    pub data: Dataset,
    pub budget: Budget,
    /// The settings as run (one line, also in perturbation.json).
    pub settings: String,
    /// How the set uses its budget.
    pub budget_report: BudgetReport,
    /// Method-specific results for perturbation.json, e.g. the rounds of EM or the surrogate's accuracy.
    pub extra: Vec<(String, crate::eval::json::Json)>,
    /// Extra rows for preview.png (e.g. DH's revealed secret), N x C x H x W like the preview's images.
    pub preview_rows: Vec<crate::tensor::Tensor>,
}

/// The settings line of `--list` and perturbation.json for `method` on images of `chw`.
pub fn settings(method: Method, o: &PoisonOptions, chw: (usize, usize, usize)) -> String {
    let (c, h, w) = chw;
    let l2 = o.l2.unwrap_or_else(|| default_l2(method, c * h * w));
    let eps = format!("L-inf {:.2}/255", o.eps * 255.0);
    let sur = format!("{} w{}", o.surrogate.name(), o.surrogate_width);
    match method {
        Method::ClasswiseNoise => format!("{eps}; one U(-eps, eps) pattern per class"),
        Method::Em => format!(
            "{eps}; sample-wise min-min from zero noise: {} surrogate steps (SGD 0.1, momentum 0.9, wd 5e-4, clip 5, batch {}) then {} PGD steps of {:.2}/255 on every image, until the surrogate's accuracy on the poisoned set >= {:.0}% (at most {} rounds); surrogate {sur}",
            o.train_steps, o.batch, o.attack_steps, o.step() * 255.0, 100.0 * o.stop_acc, o.max_rounds
        ),
        Method::EmClasswise => format!(
            "{eps}; class-wise min-min: {} surrogate steps then {} PGD steps of {:.2}/255 on one pattern per class (gradient summed over the class), until accuracy >= {:.0}% (at most {} rounds); surrogate {sur}",
            o.train_steps, o.attack_steps, o.step() * 255.0, 100.0 * o.stop_acc, o.max_rounds
        ),
        Method::Rem => format!(
            "{eps}; robust min-min: surrogate adversarially trained (PGD-{} of {:.2}/255 steps, radius {:.2}/255) on the poisoned images, {} surrogate steps then {} defensive-noise steps of {:.2}/255, each at the worst case of a fresh PGD-{} adversary of that radius (min over noise of max over attack), until accuracy >= {:.0}% (at most {} rounds); surrogate {sur}",
            o.rem_adv_steps, o.rem_radius / 5.0 * 255.0, o.rem_radius * 255.0, o.train_steps, o.attack_steps, o.step() * 255.0, o.rem_adv_steps, 100.0 * o.stop_acc, o.max_rounds
        ),
        Method::Tap => format!(
            "{eps}; targeted PGD towards class (y + 1) mod K: {} steps of {:.2}/255 from a random start, one restart, no differentiable augmentation, against {}",
            o.tap_steps,
            o.tap_step() * 255.0,
            match &o.features {
                Some(p) => format!("the classifier {}", p.display()),
                None => format!("a {sur} trained on the clean data for {} epochs", o.tap_epochs),
            }
        ),
        Method::Lsp => {
            let p = o.lsp_patch.unwrap_or_else(|| lsp::default_patch(h, w));
            format!(
                "L2 {l2:.4} per image (RMS {:.2}/255); {p}x{p}-pixel patches ({}x{} grid x {c} channels), one value per patch and channel drawn per image from its class's Gaussian cluster (hypercube vertices at +-10, as make_classification with class_sep 10), scaled to the L2 budget",
                255.0 * l2 / ((c * h * w) as f64).sqrt(),
                h.div_ceil(p),
                w.div_ceil(p)
            )
        }
        Method::Ar => format!(
            "L2 {l2:.4} per image (RMS {:.2}/255); one 3x3 autoregressive filter per class and channel (8 coefficients summing to 1), a fresh Gaussian start per image on a canvas 4 pixels larger, cropped, scaled to the L2 budget",
            255.0 * l2 / ((c * h * w) as f64).sqrt()
        ),
        Method::Ops => "one pixel per image (L0 = 1 position, all channels), replaced: per class the position and colour in {0,1}^C maximising mean/std of the absolute change over the class's images (pairs taken by earlier classes excluded)".into(),
        Method::Dh => format!(
            "{eps}; Deep Hiding with {} (one fixed semantic image per class)",
            o.weights.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| dh::SHIPPED_WEIGHTS.to_string())
        ),
    }
}

/// Progress reports: (images done in this stage, total of this stage, stage message).
pub type OnProgress<'a> = dyn FnMut(usize, usize, &str) + 'a;

/// Poison `clean` with `method`. The result's images are within the budget (checked).
pub fn poison(method: Method, clean: &Dataset, o: &PoisonOptions, on_progress: &mut OnProgress) -> Result<Poisoned> {
    o.validate()?;
    if clean.len() < 2 {
        return Err(Error::msg(format!("{}: poisoning needs at least 2 images, got {}", clean.name, clean.len())));
    }
    let chw = (clean.channels, clean.height, clean.width);
    let settings = settings(method, o, chw);
    let l2 = o.l2.unwrap_or_else(|| default_l2(method, clean.image_len()));
    let (data, budget, extra, preview_rows) = match method {
        Method::ClasswiseNoise => (classwise_noise::poison(clean, o.eps, o.seed)?, Budget::Linf(o.eps), vec![], vec![]),
        Method::Em | Method::EmClasswise | Method::Rem => {
            let (d, rep) = em::poison(method, clean, o, on_progress)?;
            (d, Budget::Linf(o.eps), rep, vec![])
        }
        Method::Tap => {
            let (d, rep) = tap::poison(clean, o, on_progress)?;
            (d, Budget::Linf(o.eps), rep, vec![])
        }
        Method::Lsp => (lsp::poison(clean, l2, o.lsp_patch, o.seed)?, Budget::L2(l2), vec![], vec![]),
        Method::Ar => (ar::poison(clean, l2, o.seed)?, Budget::L2(l2), vec![], vec![]),
        Method::Ops => {
            let (d, rep) = ops::poison(clean)?;
            (d, Budget::Pixels(1), rep, vec![])
        }
        Method::Dh => {
            let (d, rep, rows) = dh::poison(clean, o, on_progress)?;
            (d, Budget::Linf(o.eps), rep, rows)
        }
    };
    let budget_report = budget.check(clean, &data)?;
    Ok(Poisoned { data, budget, settings, budget_report, extra, preview_rows })
}
