//! Targeted adversarial poisoning (Fowl et al., NeurIPS 2021): every training image becomes a targeted
//! adversarial example, towards class `(y + 1) mod K`, of a classifier trained on the clean data; a victim
//! trained on them learns features that point to the wrong class.
//!
//! The paper (and APBench) attacks a ResNet-18 trained for 40 epochs with 250 PGD steps of 0.4/255, 8
//! restarts and differentiable flip + shift augmentation. Adapted to 2 CPU cores: the classifier is the
//! victims' small CNN trained for `tap_epochs` epochs with the victims' recipe (or any classifier given
//! with `--features`), 50 steps of 0.4/255 (so a pixel can still cross the whole budget twice and more)
//! from a random start, one restart, no augmentation in the loop (the victims of the Fashion-MNIST
//! protocol train without augmentation).

use super::budget::publish_linf;
use super::em::{input_grad, perturbed, sign};
use super::resume;
use super::{Method, OnProgress, PoisonOptions};
use crate::data::Dataset;
use crate::eval::json::Json;
use crate::models::{self, Classifier};
use crate::nn::module::Module;
use crate::rng::Rng;
use crate::train::{self, TrainConfig};
use crate::{Error, Result};

/// Batches attacked between two saves of the resumable state.
const SAVE_EVERY: usize = 16;

fn classifier(clean: &Dataset, o: &PoisonOptions, rng: &mut Rng) -> Result<(Box<dyn Classifier>, bool)> {
    if let Some(p) = &o.features {
        let (m, _) = models::load(p)?;
        let cfg = m.config();
        if cfg.in_channels != clean.channels || cfg.image_size != (clean.height, clean.width) || cfg.classes != clean.classes {
            return Err(Error::msg(format!(
                "--features {}: a classifier of {}x{}x{} images and {} classes, the data has {}x{}x{} and {}",
                p.display(),
                cfg.in_channels,
                cfg.image_size.0,
                cfg.image_size.1,
                cfg.classes,
                clean.channels,
                clean.height,
                clean.width,
                clean.classes
            )));
        }
        m.to_device(&o.device)?;
        return Ok((m, true));
    }
    Ok((super::em::build_surrogate(clean, o, rng)?, false))
}

/// The fraction of `images` (host, N x per) that `model` assigns to each image's target class.
fn target_rate(model: &dyn Module, images: &[f32], targets: &[usize], chw: (usize, usize, usize), device: &crate::device::Device) -> Result<f64> {
    // The accuracy against the targets is the share classified as the target.
    let (acc, _) = super::em::evaluate(model, images, targets, chw, 500, device)?;
    Ok(acc)
}

pub fn poison(clean: &Dataset, o: &PoisonOptions, on_progress: &mut OnProgress) -> Result<(Dataset, Vec<(String, Json)>)> {
    let (c, h, w) = (clean.channels, clean.height, clean.width);
    let per = c * h * w;
    let n = clean.len();
    let k = clean.classes;
    let eps = o.eps as f32;
    let step = o.tap_step() as f32;
    let targets: Vec<usize> = clean.labels.iter().map(|&y| (y + 1) % k).collect();
    let x0: Vec<f32> = clean.images.iter().map(|&b| b as f32 / 255.0).collect();
    let mut rng = Rng::new(o.seed ^ 0x7461_705f_706f);
    let (model, given) = classifier(clean, o, &mut rng)?;
    let settings = super::settings(Method::Tap, o, (c, h, w));
    let fp = resume::fingerprint("tap", &settings, o.seed, clean);
    let mut delta = vec![0f32; n * per];
    // `done` counts attacked batches; a state with the classifier trained and no batch done has done = 0.
    let mut done: Option<usize> = None;
    if let Some(path) = &o.resume {
        if path.is_file() {
            let (d, dl) = resume::load(path, &fp, delta.len(), model.as_ref(), None)?;
            eprintln!("resumed tap from {} after {d} batches", path.display());
            done = Some(d);
            delta = dl;
        }
    }
    let mut clean_train_acc = None;
    if done.is_none() && !given {
        let cfg = TrainConfig { epochs: o.tap_epochs, seed: o.seed, device: o.device.clone(), label: "tap classifier".into(), ..TrainConfig::default() };
        let mut bar = crate::progress::Progress::new("tap classifier", o.tap_epochs, "epoch");
        let r = train::train(model.as_ref(), clean, None, &cfg, None, &mut |e| {
            bar.set_message(format!("loss {:.4} acc {:.1}%", e.train_loss, 100.0 * e.train_acc));
            bar.inc(1);
            Ok(())
        })?;
        bar.finish();
        clean_train_acc = r.epochs.last().map(|e| e.train_acc);
        if let Some(path) = &o.resume {
            resume::save(path, &fp, 0, &delta, model.as_ref(), None)?;
        }
    }
    model.set_training(false);
    let first = done.unwrap_or(0);
    let order: Vec<usize> = (0..n).collect();
    let chunks: Vec<&[usize]> = order.chunks(o.batch).collect();
    for (b, chunk) in chunks.iter().enumerate().skip(first) {
        // Each batch's random start derives from the seed and its index: a resumed run is identical.
        let mut rb = Rng::new(o.seed ^ 0x7374_6172_7400 ^ (b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let tgt: Vec<usize> = chunk.iter().map(|&i| targets[i]).collect();
        let xc: Vec<f32> = chunk.iter().flat_map(|&i| x0[i * per..(i + 1) * per].iter().copied()).collect();
        let mut db: Vec<f32> = xc.iter().map(|&cl| (((2.0 * rb.uniform() - 1.0) as f32) * eps).clamp(-cl, 1.0 - cl)).collect();
        let shape = [chunk.len(), c, h, w];
        for _ in 0..o.tap_steps {
            let (g, _) = input_grad(model.as_ref(), perturbed(&xc, &db), &shape, &tgt, &o.device, None)?;
            for ((d, &gi), &cl) in db.iter_mut().zip(&g).zip(&xc) {
                // Down the cross-entropy towards the target class.
                *d = (*d - step * sign(gi)).clamp(-eps, eps).clamp(-cl, 1.0 - cl);
            }
        }
        for (r, &i) in chunk.iter().enumerate() {
            delta[i * per..(i + 1) * per].copy_from_slice(&db[r * per..(r + 1) * per]);
        }
        on_progress(chunk.len(), n, "targeted PGD");
        if let Some(path) = &o.resume {
            if (b + 1) % SAVE_EVERY == 0 && b + 1 < chunks.len() {
                resume::save(path, &fp, b + 1, &delta, model.as_ref(), None)?;
            }
        }
    }
    let mut images = Vec::with_capacity(clean.images.len());
    for i in 0..n {
        publish_linf(clean.image(i), &delta[i * per..(i + 1) * per], o.eps, &mut images);
    }
    let out = Dataset::new(clean.name.clone(), images, clean.labels.clone(), (c, h, w), k)?;
    // The method's property: the classifier now sees the target class in the published images.
    let pub_f: Vec<f32> = out.images.iter().map(|&b| b as f32 / 255.0).collect();
    let before = target_rate(model.as_ref(), &x0, &targets, (c, h, w), &o.device)?;
    let after = target_rate(model.as_ref(), &pub_f, &targets, (c, h, w), &o.device)?;
    let (acc_clean, _) = super::em::evaluate(model.as_ref(), &x0, &clean.labels, (c, h, w), 500, &o.device)?;
    let mut cls = vec![
        ("accuracy_on_clean_training_set", Json::Num(acc_clean)),
        ("target_rate_clean", Json::Num(before)),
        ("target_rate_published", Json::Num(after)),
    ];
    if let Some(a) = clean_train_acc {
        cls.push(("last_epoch_train_acc", Json::Num(a)));
    }
    Ok((out, vec![("classifier".to_string(), Json::obj(cls))]))
}
