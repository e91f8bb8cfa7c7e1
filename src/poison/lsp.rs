//! Linear-separable synthetic perturbations (Yu et al., KDD 2022): noise made of flat patches whose values
//! come from well-separated class clusters, so that the noise alone is linearly separable by class.
//!
//! As in the paper's code (and APBench): the image is split into a grid of `patch x patch` pixel patches
//! (8-pixel patches, a 4x4 grid, on 32x32 CIFAR; here a 4x4 grid on any size, i.e. 7-pixel patches on
//! 28x28); each image draws one value per patch and channel from its class's Gaussian cluster, built as
//! scikit-learn's `make_classification(class_sep=10, n_clusters_per_class=1)` builds them (centroid a
//! distinct hypercube vertex with coordinates +-10, points `N(0, I) A + centroid` with `A ~ U(-1, 1)`);
//! each value fills its patch, and the image's noise is scaled to the L2 budget (the paper's 6/255 RMS,
//! `6/255 sqrt(C H W)`). Published as u8 within that L2 norm.

use super::budget::{publish_l2, scale_to_l2};
use crate::data::Dataset;
use crate::rng::Rng;
use crate::{Error, Result};

/// The paper's grid is 4x4 patches: the patch side for an image of `h x w`.
pub fn default_patch(h: usize, w: usize) -> usize {
    h.max(w).div_ceil(4).max(1)
}

/// The class clusters: per class a centroid (dimension `d`) and a mixing matrix (d x d, row-major).
pub struct Clusters {
    pub dim: usize,
    pub centroids: Vec<Vec<f64>>,
    pub mixing: Vec<Vec<f64>>,
}

/// Class clusters in `dim` dimensions, with distinct hypercube vertices as centroids when there are enough.
pub fn clusters(classes: usize, dim: usize, rng: &mut Rng) -> Clusters {
    let mut vertices: Vec<u64> = Vec::new();
    let max_distinct = if dim >= 63 { u64::MAX } else { 1u64 << dim };
    while vertices.len() < classes {
        let v = rng.next_u64() & if dim >= 64 { u64::MAX } else { (1u64 << dim) - 1 };
        if !vertices.contains(&v) || vertices.len() as u64 >= max_distinct {
            vertices.push(v);
        }
    }
    let centroids = vertices
        .iter()
        .map(|&v| (0..dim).map(|j| if j < 64 && (v >> j) & 1 == 1 { 10.0 } else if j < 64 { -10.0 } else if rng.uniform() < 0.5 { 10.0 } else { -10.0 }).collect())
        .collect();
    let mixing = (0..classes).map(|_| (0..dim * dim).map(|_| 2.0 * rng.uniform() - 1.0).collect()).collect();
    Clusters { dim, centroids, mixing }
}

/// One draw of class `y`'s cluster.
pub fn draw(cl: &Clusters, y: usize, rng: &mut Rng) -> Vec<f64> {
    let d = cl.dim;
    let z: Vec<f64> = (0..d).map(|_| rng.normal()).collect();
    let a = &cl.mixing[y];
    (0..d).map(|j| cl.centroids[y][j] + (0..d).map(|i| z[i] * a[i * d + j]).sum::<f64>()).collect()
}

/// Tile a (C, gh, gw) grid of values into a C x h x w image of `patch`-pixel patches.
pub fn tile(v: &[f64], c: usize, h: usize, w: usize, patch: usize) -> Vec<f32> {
    let (gh, gw) = (h.div_ceil(patch), w.div_ceil(patch));
    let mut out = vec![0f32; c * h * w];
    for k in 0..c {
        for i in 0..h {
            for j in 0..w {
                out[k * h * w + i * w + j] = v[k * gh * gw + (i / patch) * gw + j / patch] as f32;
            }
        }
    }
    out
}

pub fn poison(ds: &Dataset, l2: f64, patch: Option<usize>, seed: u64) -> Result<Dataset> {
    let (c, h, w) = (ds.channels, ds.height, ds.width);
    let p = patch.unwrap_or_else(|| default_patch(h, w));
    if p == 0 || p > h.max(w) {
        return Err(Error::msg(format!("lsp: patch size {p} does not fit {h}x{w} images")));
    }
    let dim = c * h.div_ceil(p) * w.div_ceil(p);
    let mut rng = Rng::new(seed ^ 0x6c73_705f_6e6f);
    let cl = clusters(ds.classes, dim, &mut rng);
    let mut images = Vec::with_capacity(ds.images.len());
    for i in 0..ds.len() {
        let mut delta = tile(&draw(&cl, ds.labels[i], &mut rng), c, h, w, p);
        scale_to_l2(&mut delta, l2);
        publish_l2(ds.image(i), &delta, l2, &mut images);
    }
    Dataset::new(format!("{} [lsp]", ds.name), images, ds.labels.clone(), (c, h, w), ds.classes)
}
