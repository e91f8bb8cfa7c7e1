//! Autoregressive perturbations (Sandoval-Segura et al., NeurIPS 2022): every class has its own 2-D
//! autoregressive process; each image gets a fresh sample of its class's process. A 3x3 filter separates
//! the classes perfectly (it maps the matching process to zero), so the noise is an easy shortcut that
//! needs no surrogate network.
//!
//! As in the paper's code (and APBench): a 3x3 window predicts its bottom-right value from the other 8
//! (`s[i+2][j+2] = sum b[u][v] s[i+u][j+v]`, coefficients summing to 1, no innovation noise), per
//! channel; each sample starts from N(0, 1) values on a canvas 4 pixels larger than the image, the
//! recurrence runs over it in raster order, the first 4 rows and columns are cropped off, and the noise is
//! scaled to the L2 budget (the paper's 1.0 on 3x32x32, i.e. the same RMS here).
//!
//! The paper ships coefficients found by a random search that keeps sets whose filters respond strongly to
//! the other classes' processes; deephide draws its own the same way from `--seed`: random normal
//! coefficients normalised to sum 1, rejected when the process explodes on the canvas or when a class's
//! filter leaves less than `MIN_RESPONSE` of another class's noise energy.

use super::budget::{publish_l2, scale_to_l2};
use crate::data::Dataset;
use crate::rng::Rng;
use crate::{Error, Result};

/// Extra canvas rows and columns, cropped off after the recurrence.
pub const CROP: usize = 4;
/// Largest |value| a filter's noise may reach, in units of its RMS (a stationary-looking texture).
pub const MAX_PEAK: f64 = 4.5;
/// Least relative energy a class's prediction-error filter must leave of another class's noise.
pub const MIN_RESPONSE: f64 = 0.1;

/// 9 coefficients (3x3, row-major), the last one 0.
pub type Filter = [f64; 9];

/// Run the recurrence on a fresh (h + CROP) x (w + CROP) Gaussian canvas and crop: one channel's noise.
pub fn sample(b: &Filter, h: usize, w: usize, rng: &mut Rng) -> Vec<f64> {
    let (hh, ww) = (h + CROP, w + CROP);
    let mut s: Vec<f64> = (0..hh * ww).map(|_| rng.normal()).collect();
    for i in 0..hh - 2 {
        for j in 0..ww - 2 {
            let mut v = 0.0;
            for u in 0..3 {
                for t in 0..3 {
                    if (u, t) != (2, 2) {
                        v += b[u * 3 + t] * s[(i + u) * ww + j + t];
                    }
                }
            }
            s[(i + 2) * ww + j + 2] = v;
        }
    }
    let mut out = Vec::with_capacity(h * w);
    for i in CROP..hh {
        out.extend_from_slice(&s[i * ww + CROP..(i + 1) * ww]);
    }
    out
}

/// The prediction error of filter `b` on noise `x` (h x w): zero wherever `x` follows `b`'s recurrence.
pub fn residual(b: &Filter, x: &[f64], h: usize, w: usize) -> Vec<f64> {
    let mut out = Vec::new();
    for i in 2..h {
        for j in 2..w {
            let mut v = x[i * w + j];
            for u in 0..3 {
                for t in 0..3 {
                    if (u, t) != (2, 2) {
                        v -= b[u * 3 + t] * x[(i - 2 + u) * w + j - 2 + t];
                    }
                }
            }
            out.push(v);
        }
    }
    out
}

fn energy(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum()
}

/// One filter per class and channel (index `class * channels + channel`), drawn from `rng`.
pub fn filters(count: usize, h: usize, w: usize, rng: &mut Rng) -> Result<Vec<Filter>> {
    let mut out: Vec<Filter> = Vec::with_capacity(count);
    let mut tries = 0;
    while out.len() < count {
        tries += 1;
        if tries > 100_000 {
            return Err(Error::msg(format!("ar: found only {} of {count} distinct stable filters", out.len())));
        }
        let mut b = [0f64; 9];
        for v in b.iter_mut().take(8) {
            *v = rng.normal();
        }
        let sum: f64 = b.iter().sum();
        if sum.abs() < 0.2 {
            continue;
        }
        for v in b.iter_mut() {
            *v /= sum;
        }
        // Stable on this canvas: finite, and spread over the image rather than a blow-up in the last rows
        // of the scan (no value above MAX_PEAK times the RMS, in a few samples).
        let x = sample(&b, h, w, &mut Rng::new(tries as u64));
        let e = energy(&x);
        if !e.is_finite() || e == 0.0 {
            continue;
        }
        let peaked = (0..4).any(|s| {
            let y = sample(&b, h, w, &mut Rng::new(tries as u64 ^ (s << 32)));
            let rms = (energy(&y) / y.len() as f64).sqrt();
            !rms.is_finite() || y.iter().any(|v| v.abs() > MAX_PEAK * rms)
        });
        if peaked {
            continue;
        }
        // Distinct: on average over a few samples, every earlier filter leaves enough of this noise, and
        // this one of theirs.
        let response = |f: &Filter, g: &Filter, s: u64| -> f64 {
            (0..3u64)
                .map(|t| {
                    let y = sample(g, h, w, &mut Rng::new(s ^ (t << 40)));
                    energy(&residual(f, &y, h, w)) / energy(&y)
                })
                .sum::<f64>()
                / 3.0
        };
        let distinct = out.iter().all(|o| response(o, &b, tries as u64) >= MIN_RESPONSE && response(&b, o, tries as u64 + 7) >= MIN_RESPONSE);
        if distinct {
            out.push(b);
        }
    }
    Ok(out)
}

pub fn poison(ds: &Dataset, l2: f64, seed: u64) -> Result<Dataset> {
    let (c, h, w) = (ds.channels, ds.height, ds.width);
    if h < 3 || w < 3 {
        return Err(Error::msg(format!("ar needs images of at least 3x3, got {h}x{w}")));
    }
    let mut rng = Rng::new(seed ^ 0x6172_5f6e_6f69);
    let fs = filters(ds.classes * c, h, w, &mut rng)?;
    let mut images = Vec::with_capacity(ds.images.len());
    for i in 0..ds.len() {
        let y = ds.labels[i];
        let mut delta: Vec<f32> = Vec::with_capacity(c * h * w);
        for k in 0..c {
            delta.extend(sample(&fs[y * c + k], h, w, &mut rng).iter().map(|&v| v as f32));
        }
        scale_to_l2(&mut delta, l2);
        publish_l2(ds.image(i), &delta, l2, &mut images);
    }
    Dataset::new(format!("{} [ar]", ds.name), images, ds.labels.clone(), (c, h, w), ds.classes)
}
