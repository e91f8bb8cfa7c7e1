//! Class-wise random noise, the reference every protection is compared with (and the baseline of Huang et
//! al.): one uniform pattern `u_k ~ U(-eps, eps)` per class, the size of an image, added to every image of
//! that class and published as u8 within the L-inf budget. It is the simplest class-wise shortcut.

use super::budget::publish_linf;
use crate::data::Dataset;
use crate::rng::Rng;
use crate::{Error, Result};

/// The per-class patterns (in [0, 1] units) that [`poison`] adds, drawn from `seed`.
pub fn patterns(classes: usize, image_len: usize, eps: f64, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = Rng::new(seed ^ 0x006e_6f69_7365);
    (0..classes).map(|_| (0..image_len).map(|_| ((2.0 * rng.uniform() - 1.0) * eps) as f32).collect()).collect()
}

/// `ds` with class-wise uniform noise of L-inf radius `eps` (in [0, 1] units).
pub fn poison(ds: &Dataset, eps: f64, seed: u64) -> Result<Dataset> {
    if !(0.0..=1.0).contains(&eps) {
        return Err(Error::msg(format!("class-wise noise: eps must be in [0, 1], got {eps}")));
    }
    let patterns = patterns(ds.classes, ds.image_len(), eps, seed);
    let mut images = Vec::with_capacity(ds.images.len());
    for i in 0..ds.len() {
        publish_linf(ds.image(i), &patterns[ds.labels[i]], eps, &mut images);
    }
    let name = format!("{} [class-wise noise {:.1}/255]", ds.name, eps * 255.0);
    Dataset::new(name, images, ds.labels.clone(), (ds.channels, ds.height, ds.width), ds.classes)
}
