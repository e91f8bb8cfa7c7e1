//! Budgets in each method's own norm, and the u8 publishing that never leaves them.
//!
//! Clean pixels are u8 levels, so a perturbed pixel is published as the level nearest to `clean + delta`,
//! then pulled back inside the budget: for L-inf the box `clean +- floor(255 eps)` levels; for L2 the
//! image's rounded perturbation is kept only if its norm is within the budget, else every value is rounded
//! towards the clean level (which can only shrink each |delta|, and clipping to [0, 255] can only shrink it
//! further), so the continuous perturbation's norm bounds the published one.

use crate::data::Dataset;
use crate::{Error, Result};

/// Slack for float comparisons of norms (in [0, 1] pixel units).
const TOL: f64 = 1e-9;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Budget {
    /// Largest |delta| of any pixel value.
    Linf(f64),
    /// Euclidean norm of each image's perturbation.
    L2(f64),
    /// Number of pixel positions (all channels of one position count once) that may change.
    Pixels(usize),
}

/// How the published set uses its budget.
#[derive(Clone, Debug, PartialEq)]
pub struct BudgetReport {
    pub budget: Budget,
    /// Largest per-image norm found (in the budget's norm).
    pub max: f64,
    /// Mean per-image norm.
    pub mean: f64,
}

impl Budget {
    pub fn name(&self) -> &'static str {
        match self {
            Budget::Linf(_) => "linf",
            Budget::L2(_) => "l2",
            Budget::Pixels(_) => "l0",
        }
    }

    pub fn value(&self) -> f64 {
        match *self {
            Budget::Linf(v) | Budget::L2(v) => v,
            Budget::Pixels(n) => n as f64,
        }
    }

    pub fn describe(&self) -> String {
        match *self {
            Budget::Linf(e) => format!("L-inf {:.2}/255", e * 255.0),
            Budget::L2(r) => format!("L2 {r:.4} per image"),
            Budget::Pixels(n) => format!("{n} pixel(s) per image"),
        }
    }

    /// This norm of one image's perturbation (u8 images of `c` channels, CHW).
    pub fn norm(&self, clean: &[u8], poisoned: &[u8], c: usize) -> f64 {
        match self {
            Budget::Linf(_) => clean.iter().zip(poisoned).map(|(&a, &b)| (a as i32 - b as i32).unsigned_abs()).max().unwrap_or(0) as f64 / 255.0,
            Budget::L2(_) => clean.iter().zip(poisoned).map(|(&a, &b)| ((a as f64 - b as f64) / 255.0).powi(2)).sum::<f64>().sqrt(),
            Budget::Pixels(_) => {
                let hw = clean.len() / c.max(1);
                (0..hw).filter(|&p| (0..c).any(|k| clean[k * hw + p] != poisoned[k * hw + p])).count() as f64
            }
        }
    }

    /// Every image of `poisoned` within the budget around the same image of `clean` (same order, labels and
    /// size), or an error naming the first image over it.
    pub fn check(&self, clean: &Dataset, poisoned: &Dataset) -> Result<BudgetReport> {
        if clean.len() != poisoned.len() || clean.image_len() != poisoned.image_len() || clean.labels != poisoned.labels {
            return Err(Error::msg("budget check: the poisoned set does not match the clean set (count, size or labels differ)"));
        }
        let limit = match *self {
            // The L-inf box is whole levels: floor(255 eps) levels, which is eps itself at k/255.
            Budget::Linf(e) => linf_levels(e) as f64 / 255.0,
            Budget::L2(r) => r,
            Budget::Pixels(n) => n as f64,
        };
        let (mut max, mut sum) = (0.0f64, 0.0f64);
        for i in 0..clean.len() {
            let v = self.norm(clean.image(i), poisoned.image(i), clean.channels);
            if v > limit + TOL {
                return Err(Error::msg(format!(
                    "image {i} is outside the budget ({}): its perturbation has norm {v:.6}; nothing was written",
                    self.describe()
                )));
            }
            max = max.max(v);
            sum += v;
        }
        Ok(BudgetReport { budget: *self, max, mean: sum / clean.len().max(1) as f64 })
    }
}

impl BudgetReport {
    /// The `budget` object of perturbation.json.
    pub fn to_json(&self) -> crate::eval::json::Json {
        use crate::eval::json::Json;
        Json::obj(vec![
            ("norm", Json::str(self.budget.name())),
            ("value", Json::Num(self.budget.value())),
            ("max_used", Json::Num(self.max)),
            ("mean_used", Json::Num(self.mean)),
        ])
    }
}

/// A budget given as a number or a fraction of two numbers (`8/255`, `0.03`, `0`), in [0, 1]; `what` names
/// the option in errors. NaN, infinities, a zero denominator and anything outside [0, 1] are refused.
pub fn parse_budget(s: &str, what: &str) -> Result<f64> {
    let bad = || Error::msg(format!("bad {what} `{s}`: expected a number or a fraction like 8/255"));
    let num = |t: &str| -> Result<f64> {
        let v: f64 = t.trim().parse().map_err(|_| bad())?;
        if v.is_finite() { Ok(v) } else { Err(bad()) }
    };
    let v = match s.split_once('/') {
        Some((a, b)) => {
            let d = num(b)?;
            if d == 0.0 {
                return Err(bad());
            }
            num(a)? / d
        }
        None => num(s)?,
    };
    if !(0.0..=1.0).contains(&v) {
        return Err(Error::msg(format!("{what} {s} is outside [0, 1]")));
    }
    Ok(v)
}

/// Whole u8 levels an L-inf budget allows (8/255 -> 8; a hair below a level counts as that level).
pub fn linf_levels(eps: f64) -> i32 {
    (eps * 255.0 + 1e-6).floor().max(0.0) as i32
}

/// Publish `clean + delta` (delta in [0, 1] units, one image) as u8 within L-inf `eps` of `clean`.
pub fn publish_linf(clean: &[u8], delta: &[f32], eps: f64, out: &mut Vec<u8>) {
    let k = linf_levels(eps);
    out.extend(clean.iter().zip(delta).map(|(&c, &d)| {
        let c = c as i32;
        let v = if d.is_finite() { (c as f32 + d * 255.0).round() as i32 } else { c };
        v.clamp(c - k, c + k).clamp(0, 255) as u8
    }));
}

/// Publish `clean + delta` as u8 with `||published - clean||_2 <= l2` (given `||delta||_2 <= l2`): the
/// nearest levels of `s * delta` for the largest `s` in 1, 0.99, 0.98, ... that stays within the budget,
/// and as a last resort every value rounded towards the clean level.
pub fn publish_l2(clean: &[u8], delta: &[f32], l2: f64, out: &mut Vec<u8>) {
    let level = |c: u8, d: f32, round: fn(f32) -> f32| -> u8 {
        if !d.is_finite() {
            return c;
        }
        (c as f32 + round(d * 255.0)).clamp(0.0, 255.0) as u8
    };
    let norm = |img: &[u8]| clean.iter().zip(img).map(|(&a, &b)| ((a as f64 - b as f64) / 255.0).powi(2)).sum::<f64>().sqrt();
    for k in 0..20 {
        let s = 1.0 - 0.01 * k as f32;
        let img: Vec<u8> = clean.iter().zip(delta).map(|(&c, &d)| level(c, s * d, f32::round)).collect();
        if norm(&img) <= l2 + TOL {
            out.extend(img);
            return;
        }
    }
    out.extend(clean.iter().zip(delta).map(|(&c, &d)| level(c, d, f32::trunc)));
}

/// Scale `delta` in place to L2 norm `l2` (an all-zero delta stays zero). It aims a millionth below `l2`
/// so that f32 rounding of the scaled values cannot land above the budget.
pub fn scale_to_l2(delta: &mut [f32], l2: f64) {
    let n = delta.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
    if n > 0.0 {
        let s = (l2 * (1.0 - 1e-6) / n) as f32;
        for v in delta.iter_mut() {
            *v *= s;
        }
    }
}
