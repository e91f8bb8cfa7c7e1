//! Levers that make the hidden perturbation a strong, robust shortcut (issue 9), used by `deephide train`
//! (and the bound also by `hide`):
//!
//! - `bound_stego`: the network's perturbation squashed into the L-inf budget, `delta = eps * tanh(raw / eps)`,
//!   so what is revealed in training is what will be published (no clip strips the secret afterwards).
//! - `quantize_st`: rounding to u8 levels with a straight-through gradient (the published images are u8).
//! - `Distortion`: differentiable stand-ins for the countermeasures, applied between hiding and revealing:
//!   u8 quantisation, 2-bit depth reduction (straight-through), 3x3 Gaussian blur, and a JPEG approximation
//!   (8x8 block DCT, IJG-scaled Annex K luminance table, cubic soft rounding of the quantised coefficients).
//! - `class_consistency_loss`: sum of squared deviations of each perturbation from its class mean in the batch.
//! - `highfreq_loss`: energy of the perturbation outside the low-low Haar band after `levels` levels
//!   (JPEG and blur keep the low band).
//! - `budget_fill_loss`: sum (eps - |delta|)^2, which pushes every pixel's perturbation to the budget.
//! - `semantic_align_loss`: sum (delta - target)^2: the perturbation should be the class's semantic image
//!   itself, mapped to [-eps, eps] linearly (`eps (2 secret - 1)`) or by sign (`eps sign(secret - mean)`,
//!   the full budget everywhere): class-consistent, separating the classes and low-frequency at once.

use crate::countermeasures::jpeg::tables::{scaled_table, LUMA_QUANT};
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// `cover + eps * tanh((stego - cover) / eps)`, clamped to [0, 1].
pub fn bound_stego(stego: &Tensor, cover: &Tensor, eps: f64) -> Result<Tensor> {
    if !(eps > 0.0 && eps.is_finite()) {
        return Err(Error::msg(format!("bound: eps must be positive, got {eps}")));
    }
    let d = stego.sub(cover)?.mul_scalar(1.0 / eps)?.tanh()?.mul_scalar(eps)?;
    cover.add(&d)?.clamp(0.0, 1.0)
}

/// Host-side bound of one value (what `hide` applies to published images).
pub fn bound_value(cover: f32, stego: f32, eps: f64) -> f32 {
    let e = eps as f32;
    (cover + e * ((stego - cover) / e).tanh()).clamp(0.0, 1.0)
}

/// `x + (f(x) - x).detach()`: the forward value of `f`, the gradient of the identity.
fn straight_through(x: &Tensor, f: impl Fn(f32) -> f32) -> Result<Tensor> {
    let v = x.to_vec_f32()?;
    let q: Vec<f32> = v.iter().map(|&a| f(a) - a).collect();
    let q = Tensor::from_vec(q, x.shape())?.to_dtype(x.dtype())?.to_device(&x.device())?;
    x.add(&q)
}

/// Round to the 256 u8 levels (forward), identity gradient.
pub fn quantize_st(x: &Tensor) -> Result<Tensor> {
    straight_through(x, |a| (a.clamp(0.0, 1.0) * 255.0).round() / 255.0)
}

/// A distortion applied to the stego image before revealing in training.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Distortion {
    /// u8 rounding (straight-through).
    Quant,
    /// `min(floor(4x), 3) / 4` (straight-through), as the bit-depth-2 countermeasure.
    BitDepth2,
    /// 3x3 Gaussian blur, sigma 1, zero padding.
    Blur,
    /// Differentiable JPEG approximation at this quality.
    Jpeg(u8),
}

impl Distortion {
    pub fn parse(s: &str) -> Result<Distortion> {
        match s.trim() {
            "quant" => Ok(Distortion::Quant),
            "bit2" | "bit-depth-2" => Ok(Distortion::BitDepth2),
            "blur" => Ok(Distortion::Blur),
            other => match other.strip_prefix("jpeg").map(|q| q.parse::<u8>()) {
                Some(Ok(q)) if (1..=100).contains(&q) => Ok(Distortion::Jpeg(q)),
                _ => Err(Error::msg(format!("unknown distortion `{other}`: expected quant, bit2, blur or jpegQ (Q in 1..=100, e.g. jpeg10)"))),
            },
        }
    }

    /// Comma-separated list; `none` or empty is no distortion.
    pub fn parse_list(s: &str) -> Result<Vec<Distortion>> {
        if s.trim().is_empty() || s.trim() == "none" {
            return Ok(Vec::new());
        }
        s.split(',').map(Distortion::parse).collect()
    }

    pub fn name(&self) -> String {
        match self {
            Distortion::Quant => "quant".into(),
            Distortion::BitDepth2 => "bit2".into(),
            Distortion::Blur => "blur".into(),
            Distortion::Jpeg(q) => format!("jpeg{q}"),
        }
    }

    /// Apply to images (N, C, H, W) in [0, 1].
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Distortion::Quant => quantize_st(x),
            Distortion::BitDepth2 => straight_through(x, |a| (a.clamp(0.0, 1.0) * 4.0).floor().min(3.0) / 4.0),
            Distortion::Blur => blur3(x),
            Distortion::Jpeg(q) => jpeg_approx(x, *q),
        }
    }
}

/// Pick one distortion of the list for this step (None when the list is empty).
pub fn pick<'a>(list: &'a [Distortion], rng: &mut Rng) -> Option<&'a Distortion> {
    if list.is_empty() { None } else { Some(&list[rng.below(list.len())]) }
}

fn blur3(x: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4("blur")?;
    let g = [(-0.5f64).exp(), 1.0, (-0.5f64).exp()];
    let s: f64 = g.iter().sum();
    let k: Vec<f64> = (0..9).map(|i| g[i / 3] * g[i % 3] / (s * s)).collect();
    let k = Tensor::from_f64_vec(&k, &[1, 1, 3, 3], x.dtype())?.to_device(&x.device())?;
    x.reshape(&[n * c, 1, h, w])?.conv2d(&k, None, (1, 1), (1, 1))?.reshape(&[n, c, h, w])
}

/// Orthonormal 8-point DCT-II matrix D (row k = basis k): coefficients = D x D^T.
fn dct_matrix() -> Vec<f64> {
    let mut d = vec![0.0; 64];
    for k in 0..8 {
        let a = if k == 0 { (1.0f64 / 8.0).sqrt() } else { (2.0f64 / 8.0).sqrt() };
        for i in 0..8 {
            d[k * 8 + i] = a * (std::f64::consts::PI * (2 * i + 1) as f64 * k as f64 / 16.0).cos();
        }
    }
    d
}

/// Pad the last two dims to multiples of 8 by repeating the last row / column (as JPEG encoders do).
fn pad8(x: &Tensor) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4("jpeg_approx")?;
    let (ph, pw) = (h.div_ceil(8) * 8 - h, w.div_ceil(8) * 8 - w);
    let mut y = x.clone();
    if ph > 0 {
        let last = y.narrow(2, h - 1, 1)?;
        let reps: Vec<&Tensor> = std::iter::once(&y).chain(std::iter::repeat_n(&last, ph)).collect();
        y = Tensor::concat(&reps, 2)?;
    }
    if pw > 0 {
        let last = y.narrow(3, w - 1, 1)?;
        let reps: Vec<&Tensor> = std::iter::once(&y).chain(std::iter::repeat_n(&last, pw)).collect();
        y = Tensor::concat(&reps, 3)?;
    }
    Ok(y)
}

/// Differentiable JPEG approximation, each channel coded as luminance: level shift, 8x8 block DCT,
/// division by the quality-scaled table, soft rounding `r + (y - r)^3` (r = round(y), held constant),
/// de-quantisation, inverse DCT, crop and clamp.
pub fn jpeg_approx(x: &Tensor, quality: u8) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4("jpeg_approx")?;
    let dt = x.dtype();
    let dev = x.device();
    let p = pad8(x)?.mul_scalar(255.0)?.add_scalar(-128.0)?;
    let (hp, wp) = (h.div_ceil(8) * 8, w.div_ceil(8) * 8);
    let (bh, bw) = (hp / 8, wp / 8);
    // (N, C, bh, 8, bw, 8) -> (N, C, bh, bw, 8, 8)
    let blocks = p.reshape(&[n, c, bh, 8, bw, 8])?.permute(&[0, 1, 2, 4, 3, 5])?;
    let d = Tensor::from_f64_vec(&dct_matrix(), &[8, 8], dt)?.to_device(&dev)?;
    let dt_ = d.transpose(0, 1)?;
    // rows: B D^T gives (B D^T); coefficients = D B D^T = (B^T D^T)^T D^T ... computed as two right products.
    // Only right products with a shared matrix: t1 = B D^T, then (t1^T D^T)^T = D B D^T.
    let t1 = blocks.matmul(&dt_)?;
    let coef = t1.transpose(-1, -2)?.matmul(&dt_)?.transpose(-1, -2)?;
    let table = scaled_table(&LUMA_QUANT, quality);
    let qv: Vec<f64> = table.iter().map(|&v| v as f64).collect();
    let qt = Tensor::from_f64_vec(&qv, &[8, 8], dt)?.to_device(&dev)?;
    let y = coef.div(&qt)?;
    let yv = y.to_vec_f32()?;
    let r = Tensor::from_vec(yv.iter().map(|v| v.round()).collect::<Vec<f32>>(), y.shape())?.to_dtype(dt)?.to_device(&dev)?;
    let e = y.sub(&r)?;
    let soft = r.add(&e.mul(&e)?.mul(&e)?)?;
    let deq = soft.mul(&qt)?;
    // Inverse: u1 = C D, then (u1^T D)^T = D^T C D.
    let u1 = deq.matmul(&d)?;
    let back = u1.transpose(-1, -2)?.matmul(&d)?.transpose(-1, -2)?;
    let img = back.permute(&[0, 1, 2, 4, 3, 5])?.reshape(&[n, c, hp, wp])?;
    img.add_scalar(128.0)?.mul_scalar(1.0 / 255.0)?.narrow(2, 0, h)?.narrow(3, 0, w)?.clamp(0.0, 1.0)
}

/// Sum over the batch of ||delta_i - mean of delta over the batch's images of class y_i||^2.
pub fn class_consistency_loss(delta: &Tensor, labels: &[usize]) -> Result<Tensor> {
    let n = labels.len();
    if delta.shape().first() != Some(&n) {
        return Err(Error::shape("class_consistency_loss", format!("{} labels for perturbations of shape {}", n, crate::shape::fmt_shape(delta.shape()))));
    }
    let mut m = vec![0.0; n * n];
    for i in 0..n {
        let same = labels.iter().filter(|&&l| l == labels[i]).count() as f64;
        for j in 0..n {
            if labels[j] == labels[i] {
                m[i * n + j] = 1.0 / same;
            }
        }
    }
    let flat = delta.reshape(&[n, usize::MAX])?;
    let mt = Tensor::from_f64_vec(&m, &[n, n], delta.dtype())?.to_device(&delta.device())?;
    let mean = mt.matmul(&flat)?;
    flat.sub(&mean)?.square()?.sum_all()
}

/// Energy of `delta` in every Haar band except the low-low band of level `levels`.
pub fn highfreq_loss(delta: &Tensor, levels: usize) -> Result<Tensor> {
    let (_, c, h, w) = delta.dims4("highfreq_loss")?;
    let f = 1usize << levels;
    if levels == 0 || h % f != 0 || w % f != 0 {
        return Err(Error::msg(format!("highfreq_loss: {h}x{w} images do not split into {levels} Haar level(s)")));
    }
    let mut ll = delta.clone();
    let mut total: Option<Tensor> = None;
    for _ in 0..levels {
        let b = ll.haar_dwt()?;
        let hf = b.narrow(1, c, 3 * c)?.square()?.sum_all()?;
        total = Some(match total {
            None => hf,
            Some(t) => t.add(&hf)?,
        });
        ll = b.narrow(1, 0, c)?;
    }
    Ok(total.expect("levels >= 1"))
}

/// Sum (eps - |delta|)^2: zero only when every pixel's perturbation is at the budget.
pub fn budget_fill_loss(delta: &Tensor, eps: f64) -> Result<Tensor> {
    delta.abs()?.neg()?.add_scalar(eps)?.square()?.sum_all()
}

/// What the perturbation is aligned with (`--align-target`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlignTarget {
    /// `eps (2 s - 1)`: the semantic image mapped linearly to [-eps, eps] (mid-grey maps to 0, so most
    /// pixels of a shape on a grey background ask for little of the budget).
    Linear,
    /// `eps sign(s - mean(s))`, the mean over each image: the same shape at full budget everywhere.
    Sign,
}

impl AlignTarget {
    pub fn parse(s: &str) -> Result<AlignTarget> {
        match s {
            "linear" => Ok(AlignTarget::Linear),
            "sign" => Ok(AlignTarget::Sign),
            other => Err(Error::msg(format!("unknown align target `{other}`: expected linear or sign"))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            AlignTarget::Linear => "linear",
            AlignTarget::Sign => "sign",
        }
    }
}

/// The alignment target of each secret (N, C, H, W), a constant (no gradient flows to the secrets).
pub fn semantic_align_target(secret: &Tensor, eps: f64, kind: AlignTarget) -> Result<Tensor> {
    match kind {
        AlignTarget::Linear => secret.detach().mul_scalar(2.0 * eps)?.add_scalar(-eps),
        AlignTarget::Sign => {
            let (n, c, h, w) = secret.dims4("semantic_align_target")?;
            let per = c * h * w;
            let v = secret.to_vec_f32()?;
            let mut t = Vec::with_capacity(v.len());
            for img in v.chunks(per.max(1)).take(n) {
                let mean = img.iter().map(|&a| a as f64).sum::<f64>() / per as f64;
                t.extend(img.iter().map(|&a| if (a as f64) < mean { -eps as f32 } else { eps as f32 }));
            }
            Tensor::from_vec(t, secret.shape())?.to_dtype(secret.dtype())?.to_device(&secret.device())
        }
    }
}

/// Sum (delta - target)^2 with the target of [`semantic_align_target`] (`Linear`: eps (2 secret - 1)).
pub fn semantic_align_loss(delta: &Tensor, secret: &Tensor, eps: f64, kind: AlignTarget) -> Result<Tensor> {
    if delta.shape() != secret.shape() {
        return Err(Error::shape("semantic_align_loss", format!("perturbations {} vs secrets {}", crate::shape::fmt_shape(delta.shape()), crate::shape::fmt_shape(secret.shape()))));
    }
    delta.sub(&semantic_align_target(secret, eps, kind)?)?.square()?.sum_all()
}
