//! Losses of Deep Hiding (HiNet's, sum-reduced) and Latent Feature Concentration.

use crate::nn::functional::{mse, Reduction};
use crate::tensor::Tensor;
use crate::{Error, Result};

/// Concealing loss: sum (stego - cover)^2.
pub fn guide_loss(stego: &Tensor, cover: &Tensor) -> Result<Tensor> {
    mse(stego, cover, Reduction::Sum)
}

/// Revealing loss: sum (revealed - secret)^2.
pub fn reveal_loss(revealed: &Tensor, secret: &Tensor) -> Result<Tensor> {
    mse(revealed, secret, Reduction::Sum)
}

/// Low-frequency loss: sum (LL(DWT(stego)) - LL(DWT(cover)))^2, LL being the first C sub-band channels.
pub fn low_frequency_loss(stego: &Tensor, cover: &Tensor) -> Result<Tensor> {
    let c = stego.shape()[1];
    let ls = stego.haar_dwt()?.narrow(1, 0, c)?;
    let lc = cover.haar_dwt()?.narrow(1, 0, c)?;
    mse(&ls, &lc, Reduction::Sum)
}

/// A frozen feature extractor G: images (N, C, H, W) -> embeddings (N, D).
pub trait Embedder: Send + Sync {
    fn embed(&self, x: &Tensor) -> Result<Tensor>;
    /// Class logits (N, K), for extractors that are whole classifiers (the adversarial-poisoning loss).
    fn classify(&self, _x: &Tensor) -> Result<Tensor> {
        Err(Error::msg("this feature extractor has no classifier head"))
    }
}

/// Latent Feature Concentration: mean over same-class pairs (i != j) of 1 - cos(G(delta_i), G(delta_j)).
/// `centred` subtracts G's response to an all-zero map first, which closes the loophole of satisfying the
/// loss by shrinking the perturbation (a ReLU/BN network maps near-zero inputs to nearly one vector).
/// Returns `None` when the batch has no same-class pair.
pub fn lfc_loss(g: &dyn Embedder, delta: &Tensor, labels: &[usize], centred: bool) -> Result<Option<Tensor>> {
    let n = labels.len();
    if delta.shape().first() != Some(&n) {
        return Err(Error::shape("lfc_loss", format!("{} labels for perturbations of shape {}", n, crate::shape::fmt_shape(delta.shape()))));
    }
    let mut mask = vec![0.0; n * n];
    let mut pairs = 0usize;
    for i in 0..n {
        for j in 0..n {
            if i != j && labels[i] == labels[j] {
                mask[i * n + j] = 1.0;
                pairs += 1;
            }
        }
    }
    if pairs == 0 {
        return Ok(None);
    }
    let mut e = g.embed(delta)?;
    if centred {
        let zero = Tensor::zeros(&[1, delta.shape()[1], delta.shape()[2], delta.shape()[3]], delta.dtype()).to_device(&delta.device())?;
        let e0 = crate::no_grad(|| g.embed(&zero))?;
        e = e.sub(&e0)?;
    }
    // Rows normalised, then all pairwise cosines at once: S = E E^T.
    let norm = e.square()?.sum_axes(&[1], true)?.add_scalar(1e-12)?.sqrt()?;
    let en = e.div(&norm)?;
    let s = en.matmul(&en.transpose(0, 1)?)?;
    let m = Tensor::from_f64_vec(&mask, &[n, n], s.dtype())?.to_device(&s.device())?;
    let loss = s.neg()?.add_scalar(1.0)?.mul(&m)?.sum_all()?.mul_scalar(1.0 / pairs as f64)?;
    Ok(Some(loss))
}

/// Mean cosine similarity of same-class pairs of embeddings (the LFC ablation's measure; higher = more
/// concentrated).
pub fn intra_class_cosine(g: &dyn Embedder, delta: &Tensor, labels: &[usize], centred: bool) -> Result<Option<f64>> {
    crate::no_grad(|| Ok(lfc_loss(g, delta, labels, centred)?.map(|l| 1.0 - l.item().unwrap_or(f64::NAN))))
}
