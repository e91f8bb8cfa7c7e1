//! Image data sets: one in-memory form for every source (CIFAR binaries, IDX, image folders, the bundled
//! Fashion-MNIST subset), parsed from a SPEC string such as `idx:DIR` or `cifar10:DIR`.

pub mod bundled;
pub mod cifar;
pub mod folder;
pub mod idx;
pub mod publish;
pub mod source;
pub mod spec;

pub use source::{FloatDataset, ImageSource};
pub use spec::{balanced_subset, load, save, DataSpec, Split};

use crate::dtype::DType;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// Labelled images, stored as u8 (what the files hold and what protected data is published as):
/// image i occupies `images[i * c * h * w..(i + 1) * c * h * w]` in CHW order.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Where it came from (for messages and reports).
    pub name: String,
    pub images: Vec<u8>,
    pub labels: Vec<usize>,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub classes: usize,
}

impl Dataset {
    /// Check the invariants (sizes agree, labels in range) and build.
    pub fn new(name: impl Into<String>, images: Vec<u8>, labels: Vec<usize>, chw: (usize, usize, usize), classes: usize) -> Result<Dataset> {
        let name = name.into();
        let (c, h, w) = chw;
        let per = c * h * w;
        if per == 0 || images.len() != labels.len() * per {
            return Err(Error::msg(format!(
                "{name}: {} image bytes do not hold {} images of {c}x{h}x{w}",
                images.len(),
                labels.len()
            )));
        }
        if let Some((i, &l)) = labels.iter().enumerate().find(|(_, l)| **l >= classes) {
            return Err(Error::msg(format!("{name}: label {l} of image {i} is out of range for {classes} classes")));
        }
        Ok(Dataset { name, images, labels, channels: c, height: h, width: w, classes })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.images[i * n..(i + 1) * n]
    }

    /// Images `idx` as an f32 (N, C, H, W) tensor with values in [0, 1].
    pub fn batch(&self, idx: &[usize]) -> Result<Tensor> {
        let n = self.image_len();
        let mut v = Vec::with_capacity(idx.len() * n);
        for &i in idx {
            if i >= self.len() {
                return Err(Error::msg(format!("{}: image index {i} out of range ({} images)", self.name, self.len())));
            }
            v.extend(self.image(i).iter().map(|&b| b as f32 / 255.0));
        }
        let t = Tensor::from_vec(v, &[idx.len(), self.channels, self.height, self.width])?;
        debug_assert_eq!(t.dtype(), DType::F32);
        Ok(t)
    }

    pub fn batch_labels(&self, idx: &[usize]) -> Vec<usize> {
        idx.iter().map(|&i| self.labels[i]).collect()
    }

    /// The images `idx` (repeats allowed) as a new data set.
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        let mut images = Vec::with_capacity(idx.len() * self.image_len());
        for &i in idx {
            images.extend_from_slice(self.image(i));
        }
        Dataset { name: self.name.clone(), images, labels: self.batch_labels(idx), ..self.clone_meta() }
    }

    /// Same metadata, no images.
    fn clone_meta(&self) -> Dataset {
        Dataset { name: self.name.clone(), images: Vec::new(), labels: Vec::new(), ..*self }
    }

    /// Replace images from an f32 [0, 1] tensor (rounded and clamped to u8), keeping labels.
    pub fn with_images_from(&self, t: &Tensor) -> Result<Dataset> {
        let want = [self.len(), self.channels, self.height, self.width];
        if t.shape() != want {
            return Err(Error::shape("with_images_from", format!("expected {}, got {}", crate::shape::fmt_shape(&want), crate::shape::fmt_shape(t.shape()))));
        }
        let images = t.to_vec_f32()?.iter().map(|&v| to_u8(v)).collect();
        Ok(Dataset { images, labels: self.labels.clone(), ..self.clone_meta() })
    }
}

/// [0, 1] float to the nearest u8 (NaN -> 0): one conversion for every image writer.
pub use crate::image_io::to_u8;
