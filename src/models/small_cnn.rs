//! The small fast CNN of ../SCIENCE.md: three stages of 3x3 conv (padding 1, no bias) - BatchNorm - ReLU -
//! 2x2 max-pool with w, 2w, 4w channels (32, 64, 128 by default), then one linear layer on the flattened
//! features. On 28x28 inputs: 28 -> 14 -> 7 -> 3, so 128 * 3 * 3 = 1,152 features.

use crate::models::{Classifier, Embedder, ModelConfig};
use crate::nn::layers::{BatchNorm2d, Conv2d, Linear};
use crate::nn::module::{prefixed, Module};
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::Result;

pub struct SmallCnn {
    cfg: ModelConfig,
    convs: Vec<Conv2d>,
    bns: Vec<BatchNorm2d>,
    pub fc: Linear,
}

impl SmallCnn {
    pub fn new(cfg: ModelConfig, rng: &mut Rng) -> Result<SmallCnn> {
        cfg.validate()?;
        let w = cfg.width;
        let chans = [cfg.in_channels, w, 2 * w, 4 * w];
        let mut convs = Vec::new();
        let mut bns = Vec::new();
        for i in 0..3 {
            convs.push(Conv2d::new(chans[i], chans[i + 1], (3, 3), (1, 1), (1, 1), false, rng));
            bns.push(BatchNorm2d::new(chans[i + 1]));
        }
        let (h, wd) = cfg.image_size;
        let feat = 4 * w * (h / 8) * (wd / 8);
        let fc = Linear::new(feat, cfg.classes, true, rng);
        Ok(SmallCnn { cfg, convs, bns, fc })
    }

    /// Number of features `embed` returns.
    pub fn feature_dim(&self) -> usize {
        self.fc.in_features
    }
}

impl Module for SmallCnn {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.fc.forward(&self.embed(x)?)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut v = Vec::new();
        for i in 0..3 {
            v.extend(prefixed(&format!("conv{}", i + 1), self.convs[i].named_parameters()));
            v.extend(prefixed(&format!("bn{}", i + 1), self.bns[i].named_parameters()));
        }
        v.extend(prefixed("fc", self.fc.named_parameters()));
        v
    }
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        (0..3).flat_map(|i| prefixed(&format!("bn{}", i + 1), self.bns[i].named_buffers())).collect()
    }
    fn set_training(&self, on: bool) {
        self.bns.iter().for_each(|b| b.set_training(on));
    }
}

impl Classifier for SmallCnn {
    fn config(&self) -> &ModelConfig {
        &self.cfg
    }
}

impl Embedder for SmallCnn {
    fn classify(&self, x: &Tensor) -> Result<Tensor> {
        self.forward(x)
    }

    fn embed(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = x.clone();
        for (c, b) in self.convs.iter().zip(&self.bns) {
            // conv-BN-ReLU-pool, computed as conv-BN-pool-ReLU: ReLU is monotonic, so it commutes with the
            // max (values and gradients are the same) and runs on a quarter of the elements.
            y = b.forward(&c.forward(&y)?)?.max_pool2d((2, 2), (2, 2), (0, 0))?.relu()?;
        }
        y.flatten_from1()
    }
}
