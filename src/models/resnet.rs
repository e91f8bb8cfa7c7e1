//! ResNet-18, CIFAR variant (as in the unlearnable-examples literature): a 3x3 stride-1 stem conv with
//! BatchNorm and ReLU and no max-pool, four stages of two BasicBlocks with w, 2w, 4w, 8w channels (strides
//! 1, 2, 2, 2), global average pooling and a linear layer. Parameter names follow the common CIFAR
//! implementation (`conv1`, `bn1`, `layer{1..4}.{0,1}.{conv1,bn1,conv2,bn2,shortcut.0,shortcut.1}`,
//! `linear`).

use crate::models::{Classifier, Embedder, ModelConfig};
use crate::nn::layers::{BatchNorm2d, Conv2d, Linear};
use crate::nn::module::{prefixed, Module};
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::Result;

pub struct BasicBlock {
    conv1: Conv2d,
    bn1: BatchNorm2d,
    conv2: Conv2d,
    bn2: BatchNorm2d,
    /// 1x1 conv + BN when the shape changes.
    shortcut: Option<(Conv2d, BatchNorm2d)>,
}

impl BasicBlock {
    pub fn new(cin: usize, cout: usize, stride: usize, rng: &mut Rng) -> BasicBlock {
        let s = (stride, stride);
        let conv1 = Conv2d::new(cin, cout, (3, 3), s, (1, 1), false, rng);
        let conv2 = Conv2d::new(cout, cout, (3, 3), (1, 1), (1, 1), false, rng);
        let shortcut = (stride != 1 || cin != cout)
            .then(|| (Conv2d::new(cin, cout, (1, 1), s, (0, 0), false, rng), BatchNorm2d::new(cout)));
        BasicBlock { conv1, bn1: BatchNorm2d::new(cout), conv2, bn2: BatchNorm2d::new(cout), shortcut }
    }
}

impl Module for BasicBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.bn1.forward(&self.conv1.forward(x)?)?.relu()?;
        let y = self.bn2.forward(&self.conv2.forward(&y)?)?;
        let s = match &self.shortcut {
            Some((c, b)) => b.forward(&c.forward(x)?)?,
            None => x.clone(),
        };
        y.add(&s)?.relu()
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut v = prefixed("conv1", self.conv1.named_parameters());
        v.extend(prefixed("bn1", self.bn1.named_parameters()));
        v.extend(prefixed("conv2", self.conv2.named_parameters()));
        v.extend(prefixed("bn2", self.bn2.named_parameters()));
        if let Some((c, b)) = &self.shortcut {
            v.extend(prefixed("shortcut.0", c.named_parameters()));
            v.extend(prefixed("shortcut.1", b.named_parameters()));
        }
        v
    }
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        let mut v = prefixed("bn1", self.bn1.named_buffers());
        v.extend(prefixed("bn2", self.bn2.named_buffers()));
        if let Some((_, b)) = &self.shortcut {
            v.extend(prefixed("shortcut.1", b.named_buffers()));
        }
        v
    }
    fn set_training(&self, on: bool) {
        self.bn1.set_training(on);
        self.bn2.set_training(on);
        if let Some((_, b)) = &self.shortcut {
            b.set_training(on);
        }
    }
}

pub struct ResNet18 {
    cfg: ModelConfig,
    conv1: Conv2d,
    bn1: BatchNorm2d,
    layers: Vec<Vec<BasicBlock>>,
    pub linear: Linear,
}

impl ResNet18 {
    pub fn new(cfg: ModelConfig, rng: &mut Rng) -> Result<ResNet18> {
        cfg.validate()?;
        let w = cfg.width;
        let conv1 = Conv2d::new(cfg.in_channels, w, (3, 3), (1, 1), (1, 1), false, rng);
        let mut layers = Vec::new();
        let mut cin = w;
        for (i, mult) in [1, 2, 4, 8].into_iter().enumerate() {
            let cout = w * mult;
            let stride = if i == 0 { 1 } else { 2 };
            layers.push(vec![BasicBlock::new(cin, cout, stride, rng), BasicBlock::new(cout, cout, 1, rng)]);
            cin = cout;
        }
        let linear = Linear::new(8 * w, cfg.classes, true, rng);
        Ok(ResNet18 { cfg, conv1, bn1: BatchNorm2d::new(w), layers, linear })
    }

    /// Number of features `embed` returns (8w).
    pub fn feature_dim(&self) -> usize {
        8 * self.cfg.width
    }
}

impl Module for ResNet18 {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.linear.forward(&self.embed(x)?)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut v = prefixed("conv1", self.conv1.named_parameters());
        v.extend(prefixed("bn1", self.bn1.named_parameters()));
        for (i, l) in self.layers.iter().enumerate() {
            for (j, b) in l.iter().enumerate() {
                v.extend(prefixed(&format!("layer{}.{j}", i + 1), b.named_parameters()));
            }
        }
        v.extend(prefixed("linear", self.linear.named_parameters()));
        v
    }
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        let mut v = prefixed("bn1", self.bn1.named_buffers());
        for (i, l) in self.layers.iter().enumerate() {
            for (j, b) in l.iter().enumerate() {
                v.extend(prefixed(&format!("layer{}.{j}", i + 1), b.named_buffers()));
            }
        }
        v
    }
    fn set_training(&self, on: bool) {
        self.bn1.set_training(on);
        self.layers.iter().flatten().for_each(|b| b.set_training(on));
    }
}

impl Classifier for ResNet18 {
    fn config(&self) -> &ModelConfig {
        &self.cfg
    }
}

impl Embedder for ResNet18 {
    fn classify(&self, x: &Tensor) -> Result<Tensor> {
        self.forward(x)
    }

    fn embed(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = self.bn1.forward(&self.conv1.forward(x)?)?.relu()?;
        for b in self.layers.iter().flatten() {
            y = b.forward(&y)?;
        }
        let n = y.shape()[0];
        y.global_avg_pool()?.reshape(&[n, 8 * self.cfg.width])
    }
}
