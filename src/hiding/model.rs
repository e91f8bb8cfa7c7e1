//! The invertible hiding network (HiNet layout, PAPER.md): Haar DWT of cover and secret, 16 affine coupling
//! blocks on the 8C sub-band channels, IWT of the first 4C output channels as the stego image.
//!
//! Forward (hide):   x = [DWT(cover), DWT(secret)] -> blocks 1..K -> y = [y1 (4C), r (4C)],
//!                   stego = IWT(y1), r is the "lost" part.
//! Reverse (reveal): [DWT(stego), z] -> blocks K..1 reversed -> [cover', secret'], secret = IWT(secret').

use std::collections::BTreeMap;

use crate::dtype::DType;
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// Network configuration; stored in the weights' metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct HidingConfig {
    /// Image channels of cover and secret alike (1 or 3).
    pub channels: usize,
    pub blocks: usize,
    pub growth: usize,
    /// Bound of the coupling's log-scale: e(s) = exp(clamp * 2 * (sigmoid(s) - 0.5)).
    pub clamp: f64,
    pub slope: f64,
}

impl Default for HidingConfig {
    fn default() -> Self {
        HidingConfig { channels: 3, blocks: 16, growth: 32, clamp: 2.0, slope: 0.01 }
    }
}

impl HidingConfig {
    pub fn to_metadata(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert("deephide.model".into(), "invertible_hiding".into());
        m.insert("channels".into(), self.channels.to_string());
        m.insert("blocks".into(), self.blocks.to_string());
        m.insert("growth".into(), self.growth.to_string());
        m.insert("clamp".into(), self.clamp.to_string());
        m.insert("slope".into(), self.slope.to_string());
        m
    }

    /// Read the config from metadata; keys that are absent fall back to `fallback` (e.g. a config derived
    /// from tensor names and shapes for a converted HiNet checkpoint without metadata).
    pub fn from_metadata(meta: &BTreeMap<String, String>, fallback: &HidingConfig) -> Result<HidingConfig> {
        fn get<T: std::str::FromStr>(meta: &BTreeMap<String, String>, key: &str, default: T) -> Result<T> {
            match meta.get(key) {
                None => Ok(default),
                Some(v) => v.parse().map_err(|_| Error::msg(format!("weights metadata `{key}` = `{v}` is not a valid value"))),
            }
        }
        let c = HidingConfig {
            channels: get(meta, "channels", fallback.channels)?,
            blocks: get(meta, "blocks", fallback.blocks)?,
            growth: get(meta, "growth", fallback.growth)?,
            clamp: get(meta, "clamp", fallback.clamp)?,
            slope: get(meta, "slope", fallback.slope)?,
        };
        c.validate()?;
        Ok(c)
    }

    pub fn validate(&self) -> Result<()> {
        if self.channels == 0 || self.blocks == 0 || self.growth == 0 {
            return Err(Error::msg(format!("invalid hiding config: {self:?} (channels, blocks and growth must be positive)")));
        }
        if !(self.clamp > 0.0 && self.clamp.is_finite()) {
            return Err(Error::msg(format!("invalid hiding config: clamp must be positive, got {}", self.clamp)));
        }
        Ok(())
    }

    /// Channels of one half of the coupling input (the sub-bands of one image).
    pub fn half(&self) -> usize {
        4 * self.channels
    }
}

/// One 3x3 convolution's parameters (OIHW weight, bias).
#[derive(Clone)]
pub struct ConvParams {
    pub weight: Tensor,
    pub bias: Tensor,
}

impl ConvParams {
    fn new(cin: usize, cout: usize, std: f64, dtype: DType, rng: &mut Rng) -> Self {
        ConvParams {
            weight: Tensor::randn(&[cout, cin, 3, 3], std, dtype, rng).requires_grad_(true),
            bias: Tensor::randn(&[cout], std, dtype, rng).requires_grad_(true),
        }
    }
    /// The convolution of the concatenation of `parts` (channel axis), then LeakyReLU if `slope` is given;
    /// the concatenation is never written on the CPU (see `Tensor::conv2d_concat`).
    fn forward(&self, parts: &[&Tensor], slope: Option<f64>) -> Result<Tensor> {
        Tensor::conv2d_concat(parts, &self.weight, Some(&self.bias), (1, 1), (1, 1), slope)
    }
}

/// A dense subnet (phi, rho or eta): five 3x3 convs, each seeing the input and every earlier output;
/// LeakyReLU after the first four, the fifth linear.
#[derive(Clone)]
pub struct DenseSubnet {
    pub convs: Vec<ConvParams>,
    pub slope: f64,
}

impl DenseSubnet {
    /// HiNet's init: every parameter 0.01 * N(0, 1), the last conv zero (so the block starts as identity).
    pub fn new(channels: usize, growth: usize, slope: f64, dtype: DType, rng: &mut Rng) -> Self {
        let mut convs: Vec<ConvParams> =
            (0..4).map(|i| ConvParams::new(channels + i * growth, growth, 0.01, dtype, rng)).collect();
        let mut last = ConvParams::new(channels + 4 * growth, channels, 0.01, dtype, rng);
        last.weight = Tensor::zeros(last.weight.shape(), dtype).requires_grad_(true);
        last.bias = Tensor::zeros(last.bias.shape(), dtype).requires_grad_(true);
        convs.push(last);
        DenseSubnet { convs, slope }
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut feats = vec![x.clone()];
        for conv in &self.convs[..4] {
            let f = conv.forward(&feats.iter().collect::<Vec<_>>(), Some(self.slope))?;
            feats.push(f);
        }
        self.convs[4].forward(&feats.iter().collect::<Vec<_>>(), None)
    }
}

/// One affine coupling block: y1 = x1 + phi(x2); y2 = x2 * e(rho(y1)) + eta(y1).
#[derive(Clone)]
pub struct AffineCoupling {
    pub phi: DenseSubnet,
    pub rho: DenseSubnet,
    pub eta: DenseSubnet,
    pub clamp: f64,
}

impl AffineCoupling {
    pub fn new(cfg: &HidingConfig, dtype: DType, rng: &mut Rng) -> Self {
        let h = cfg.half();
        AffineCoupling {
            phi: DenseSubnet::new(h, cfg.growth, cfg.slope, dtype, rng),
            rho: DenseSubnet::new(h, cfg.growth, cfg.slope, dtype, rng),
            eta: DenseSubnet::new(h, cfg.growth, cfg.slope, dtype, rng),
            clamp: cfg.clamp,
        }
    }

    /// e(s) = exp(clamp * 2 * (sigmoid(s) - 0.5)): a positive scale bounded in [e^-clamp, e^clamp].
    fn scale(&self, s: &Tensor) -> Result<Tensor> {
        s.sigmoid()?.add_scalar(-0.5)?.mul_scalar(2.0 * self.clamp)?.exp()
    }

    pub fn forward(&self, x1: &Tensor, x2: &Tensor) -> Result<(Tensor, Tensor)> {
        let y1 = x1.add(&self.phi.forward(x2)?)?;
        let y2 = x2.mul(&self.scale(&self.rho.forward(&y1)?)?)?.add(&self.eta.forward(&y1)?)?;
        Ok((y1, y2))
    }

    pub fn reverse(&self, y1: &Tensor, y2: &Tensor) -> Result<(Tensor, Tensor)> {
        let x2 = y2.sub(&self.eta.forward(y1)?)?.div(&self.scale(&self.rho.forward(y1)?)?)?;
        let x1 = y1.sub(&self.phi.forward(&x2)?)?;
        Ok((x1, x2))
    }
}

/// The whole invertible hiding network.
#[derive(Clone)]
pub struct InvertibleHiding {
    pub cfg: HidingConfig,
    pub blocks: Vec<AffineCoupling>,
}

/// Output of hiding: the stego image and the lost part r (4C sub-band channels at half resolution).
pub struct Hidden {
    pub stego: Tensor,
    pub lost: Tensor,
}

impl InvertibleHiding {
    pub fn new(cfg: HidingConfig, seed: u64) -> Result<Self> {
        Self::new_with_dtype(cfg, seed, DType::F32)
    }

    pub fn new_with_dtype(cfg: HidingConfig, seed: u64, dtype: DType) -> Result<Self> {
        cfg.validate()?;
        let mut rng = Rng::new(seed);
        let blocks = (0..cfg.blocks).map(|_| AffineCoupling::new(&cfg, dtype, &mut rng)).collect();
        Ok(InvertibleHiding { cfg, blocks })
    }

    fn check_images(&self, op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
        let (n, c, h, w) = a.dims4(op)?;
        if c != self.cfg.channels {
            return Err(Error::shape(op, format!("the network hides {}-channel images, got {}", self.cfg.channels, crate::shape::fmt_shape(a.shape()))));
        }
        if h % 2 != 0 || w % 2 != 0 {
            return Err(Error::shape(op, format!("image height and width must be even, got {}", crate::shape::fmt_shape(a.shape()))));
        }
        if b.shape() != a.shape() {
            return Err(Error::shape(op, format!("images differ in shape: {} vs {}", crate::shape::fmt_shape(a.shape()), crate::shape::fmt_shape(b.shape()))));
        }
        let _ = n;
        Ok(())
    }

    /// Run the coupling blocks forward on the sub-band halves.
    pub fn forward_bands(&self, x1: &Tensor, x2: &Tensor) -> Result<(Tensor, Tensor)> {
        let (mut a, mut b) = (x1.clone(), x2.clone());
        for blk in &self.blocks {
            (a, b) = blk.forward(&a, &b)?;
        }
        Ok((a, b))
    }

    /// Run the coupling blocks in reverse order, each inverted.
    pub fn reverse_bands(&self, y1: &Tensor, y2: &Tensor) -> Result<(Tensor, Tensor)> {
        let (mut a, mut b) = (y1.clone(), y2.clone());
        for blk in self.blocks.iter().rev() {
            (a, b) = blk.reverse(&a, &b)?;
        }
        Ok((a, b))
    }

    /// Hide `secret` in `cover` (both (N, C, H, W), H and W even).
    pub fn hide(&self, cover: &Tensor, secret: &Tensor) -> Result<Hidden> {
        self.check_images("hide", cover, secret)?;
        let (y1, lost) = self.forward_bands(&cover.haar_dwt()?, &secret.haar_dwt()?)?;
        Ok(Hidden { stego: y1.haar_iwt()?, lost })
    }

    /// Recover the secret from a stego image, with `z` standing in for the lost part (zeros or N(0,1)).
    pub fn reveal(&self, stego: &Tensor, z: &Tensor) -> Result<(Tensor, Tensor)> {
        let (n, c, h, w) = stego.dims4("reveal")?;
        if c != self.cfg.channels || h % 2 != 0 || w % 2 != 0 {
            return Err(Error::shape("reveal", format!("expected ({n}, {}, even, even) stego images, got {}", self.cfg.channels, crate::shape::fmt_shape(stego.shape()))));
        }
        let want = [n, self.cfg.half(), h / 2, w / 2];
        if z.shape() != want {
            return Err(Error::shape("reveal", format!("z must have shape {}, got {}", crate::shape::fmt_shape(&want), crate::shape::fmt_shape(z.shape()))));
        }
        let (c1, s1) = self.reverse_bands(&stego.haar_dwt()?, z)?;
        Ok((c1.haar_iwt()?, s1.haar_iwt()?))
    }

    /// Parameters with HiNet's PyTorch names: `inv{k}.{f,r,y}.conv{1..5}.{weight,bias}`, k from 1.
    pub fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (k, blk) in self.blocks.iter().enumerate() {
            for (tag, sub) in [("f", &blk.phi), ("r", &blk.rho), ("y", &blk.eta)] {
                for (i, conv) in sub.convs.iter().enumerate() {
                    out.push((format!("inv{}.{}.conv{}.weight", k + 1, tag, i + 1), conv.weight.clone()));
                    out.push((format!("inv{}.{}.conv{}.bias", k + 1, tag, i + 1), conv.bias.clone()));
                }
            }
        }
        out
    }

    pub fn parameters(&self) -> Vec<Tensor> {
        self.named_parameters().into_iter().map(|(_, t)| t).collect()
    }

    pub fn num_parameters(&self) -> usize {
        self.parameters().iter().map(|t| t.numel()).sum()
    }

    /// Move every parameter to `device` in place (the same tensors, so optimizers keep tracking them).
    pub fn to_device(&self, device: &crate::device::Device) -> Result<()> {
        for p in self.parameters() {
            p.move_to_device_(device)?;
        }
        Ok(())
    }
}
