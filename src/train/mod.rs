//! Classifier training with the protocol of the field (PAPER.md): SGD lr 0.1, momentum 0.9, weight decay
//! 5e-4, cosine annealing to 0 (per step), batch 128, gradient clipping at norm 5, random crop (pad 4) and
//! horizontal flip for 32x32 colour images. Options: epochs, a per-mini-batch augmentation (a
//! countermeasure), PGD adversarial training, and a callback after every epoch with the clean test
//! accuracy.
//!
//! A non-finite loss or gradient norm stops training with an error that says where.

mod augment;
pub(crate) mod pgd;
mod progress;

use std::time::Instant;

pub use augment::crop_flip;
pub use pgd::{loss_for, pgd_attack, soft_cross_entropy, Pgd};
pub use progress::{fmt_duration, Progress};

use crate::autograd::no_grad;
use crate::countermeasures::{BatchAugment, Targets};
use crate::data::ImageSource;
use crate::device::Device;
use crate::nn::module::Module;
use crate::optim::{clip_grad_norm, CosineLr, LrSchedule, Optimizer, Sgd};
use crate::rng::Rng;
use crate::{Error, Result};

/// When to apply random crop + flip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Augment {
    /// For 3-channel 32x32 images only (the protocol's CIFAR setting).
    Auto,
    On,
    Off,
}

#[derive(Clone, Debug)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    /// Clip the global gradient norm to this (None: no clipping).
    pub grad_clip: Option<f64>,
    pub augment: Augment,
    /// PGD adversarial training: every mini-batch is replaced by its adversarial examples.
    pub adversarial: Option<Pgd>,
    pub seed: u64,
    /// Draw a progress line on stderr.
    pub progress: bool,
    /// Prefix of the progress line.
    pub label: String,
    /// Where the model runs (its parameters must already be there).
    pub device: Device,
    pub eval_batch_size: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 128,
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 5e-4,
            grad_clip: Some(5.0),
            augment: Augment::Auto,
            adversarial: None,
            seed: 0,
            progress: false,
            label: "train".into(),
            device: Device::Cpu,
            eval_batch_size: 500,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct EpochStats {
    /// Counting from 0.
    pub epoch: usize,
    pub train_loss: f64,
    /// Accuracy on the training mini-batches as seen (augmented / adversarial), against hard labels.
    pub train_acc: f64,
    /// Accuracy on the clean test set, when one was given.
    pub test_acc: Option<f64>,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Training time of the epoch (without the test evaluation).
    pub seconds: f64,
}

#[derive(Clone, Debug)]
pub struct TrainResult {
    pub epochs: Vec<EpochStats>,
    /// Wall time of the whole run, evaluations included.
    pub seconds: f64,
}

impl TrainResult {
    pub fn test_accs(&self) -> Vec<f64> {
        self.epochs.iter().filter_map(|e| e.test_acc).collect()
    }
    pub fn final_test_acc(&self) -> Option<f64> {
        self.epochs.last().and_then(|e| e.test_acc)
    }
}

/// Top-1 accuracy of `model` (in evaluation mode) on `data`.
pub fn accuracy(model: &dyn Module, data: &dyn ImageSource, batch_size: usize, device: &Device) -> Result<f64> {
    if data.is_empty() {
        return Err(Error::msg(format!("{}: cannot measure accuracy on an empty data set", data.name())));
    }
    model.set_training(false);
    let _g = crate::autograd::NoGradGuard::new();
    let mut correct = 0usize;
    let idx: Vec<usize> = (0..data.len()).collect();
    for chunk in idx.chunks(batch_size.max(1)) {
        let x = data.batch(chunk)?.to_device(device)?;
        let pred = model.forward(&x)?.argmax(1)?;
        correct += pred.iter().zip(chunk).filter(|(p, i)| **p == data.labels()[**i]).count();
    }
    Ok(correct as f64 / data.len() as f64)
}

fn check_compatible(train: &dyn ImageSource, test: Option<&dyn ImageSource>) -> Result<()> {
    if let Some(t) = test {
        if t.chw() != train.chw() {
            return Err(Error::msg(format!(
                "the test set {} has images of {:?} (C, H, W), the training set {} has {:?}",
                t.name(),
                t.chw(),
                train.name(),
                train.chw()
            )));
        }
        if t.classes() != train.classes() {
            return Err(Error::msg(format!(
                "the test set {} has {} classes, the training set {} has {}",
                t.name(),
                t.classes(),
                train.name(),
                train.classes()
            )));
        }
    }
    Ok(())
}

/// Train `model` on `data`. After every epoch the clean `test` accuracy is measured (if given) and
/// `on_epoch` is called; an error from it stops training.
pub fn train(
    model: &dyn Module,
    data: &dyn ImageSource,
    test: Option<&dyn ImageSource>,
    cfg: &TrainConfig,
    batch_aug: Option<&dyn BatchAugment>,
    on_epoch: &mut dyn FnMut(&EpochStats) -> Result<()>,
) -> Result<TrainResult> {
    check_compatible(data, test)?;
    if data.len() < 2 {
        return Err(Error::msg(format!("{}: training needs at least 2 images, got {}", data.name(), data.len())));
    }
    if cfg.batch_size < 2 {
        return Err(Error::msg(format!("batch size must be at least 2 (BatchNorm), got {}", cfg.batch_size)));
    }
    let start = Instant::now();
    // Parameters and running statistics live on the training device for the whole run.
    model.to_device(&cfg.device)?;
    let (c, h, w) = data.chw();
    let augment = match cfg.augment {
        Augment::On => true,
        Augment::Off => false,
        Augment::Auto => (c, h, w) == (3, 32, 32),
    };
    let classes = data.classes();
    let mut rng = Rng::new(cfg.seed ^ 0x7472_6169_6e00);
    let n = data.len();
    // A last mini-batch of one image would break BatchNorm: drop it.
    let steps_per_epoch = n / cfg.batch_size + usize::from(n % cfg.batch_size >= 2);
    let total = steps_per_epoch * cfg.epochs;
    let sched = CosineLr { total, min_lr: 0.0 };
    let mut opt = Sgd::new(model.parameters(), cfg.lr).momentum(cfg.momentum).weight_decay(cfg.weight_decay);
    let mut progress = Progress::new(&cfg.label, total, cfg.progress);
    let mut stats = Vec::with_capacity(cfg.epochs);
    let mut step = 0usize;
    for epoch in 0..cfg.epochs {
        let t0 = Instant::now();
        let mut order: Vec<usize> = (0..n).collect();
        rng.shuffle(&mut order);
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        for (b, idx) in order.chunks(cfg.batch_size).enumerate() {
            if idx.len() < 2 {
                continue;
            }
            opt.set_lr(sched.lr(cfg.lr, step));
            let labels: Vec<usize> = idx.iter().map(|&i| data.labels()[i]).collect();
            let mut x = data.batch(idx)?;
            if augment {
                x = crop_flip(&x, 4, &mut rng)?;
            }
            let (x, targets) = match batch_aug {
                Some(a) => a.apply(&x, &labels, classes, &mut rng)?,
                None => (x, Targets::Hard(labels.clone())),
            };
            let mut x = x.to_device(&cfg.device)?;
            if let Some(p) = &cfg.adversarial {
                x = pgd_attack(model, &x, &targets, p, &mut rng)?;
            }
            model.set_training(true);
            opt.zero_grad();
            let logits = model.forward(&x)?;
            let loss = loss_for(&logits, &targets)?;
            let lv = loss.item()?;
            if !lv.is_finite() {
                return Err(Error::msg(format!(
                    "training diverged: the loss is {lv} at epoch {}, mini-batch {} (learning rate {:.4}); lower the learning rate or check the data",
                    epoch + 1,
                    b + 1,
                    opt.lr()
                )));
            }
            loss.backward()?;
            drop(loss);
            if let Some(max) = cfg.grad_clip {
                let norm = clip_grad_norm(opt.params(), max)?;
                if !norm.is_finite() {
                    return Err(Error::msg(format!(
                        "training diverged: the gradient norm is {norm} at epoch {}, mini-batch {} (learning rate {:.4})",
                        epoch + 1,
                        b + 1,
                        opt.lr()
                    )));
                }
            }
            opt.step()?;
            let pred = no_grad(|| logits.argmax(1))?;
            correct += pred.iter().zip(&labels).filter(|(p, l)| p == l).count();
            loss_sum += lv * idx.len() as f64;
            seen += idx.len();
            step += 1;
            progress.step(epoch, cfg.epochs, idx.len(), loss_sum / seen as f64, correct as f64 / seen as f64);
        }
        opt.zero_grad();
        let seconds = t0.elapsed().as_secs_f64();
        let test_acc = match test {
            Some(t) => Some(accuracy(model, t, cfg.eval_batch_size, &cfg.device)?),
            None => None,
        };
        let s = EpochStats {
            epoch,
            train_loss: loss_sum / seen.max(1) as f64,
            train_acc: correct as f64 / seen.max(1) as f64,
            test_acc,
            lr: opt.lr(),
            seconds,
        };
        progress.epoch_done(epoch, cfg.epochs, s.train_loss, s.train_acc, s.test_acc, seconds);
        on_epoch(&s)?;
        stats.push(s);
    }
    model.set_training(false);
    Ok(TrainResult { epochs: stats, seconds: start.elapsed().as_secs_f64() })
}
