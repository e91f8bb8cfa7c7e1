//! Haar wavelet transforms as in HiNet: `haar_dwt` (N,C,H,W) -> (N,4C,H/2,W/2) with channels
//! [LL, HL, LH, HH], and `haar_iwt`, its exact inverse. The transform is orthonormal, so the gradient of
//! one is the other.

mod cpu;
#[cfg(feature = "cuda")]
pub(crate) mod cuda;
#[cfg(feature = "wgpu")]
pub(crate) mod wgpu;

use crate::autograd::Backward;
use crate::shape::fmt_shape;
use crate::storage::Storage;
use crate::tensor::Tensor;
use crate::{cpu_map, Error, Result};

struct DwtBackward;
impl Backward for DwtBackward {
    fn name(&self) -> &'static str {
        "haar_dwt"
    }
    fn backward(&self, _: &[Tensor], _: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.haar_iwt()?)])
    }
}

struct IwtBackward;
impl Backward for IwtBackward {
    fn name(&self) -> &'static str {
        "haar_iwt"
    }
    fn backward(&self, _: &[Tensor], _: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.haar_dwt()?)])
    }
}

impl Tensor {
    pub fn haar_dwt(&self) -> Result<Tensor> {
        let (n, c, h, w) = self.dims4("haar_dwt")?;
        if h % 2 != 0 || w % 2 != 0 {
            return Err(Error::shape("haar_dwt", format!("height and width must be even, got {}", fmt_shape(self.shape()))));
        }
        let _p = crate::profile::scope("haar_dwt", 2.0 * self.numel() as f64, crate::profile::bytes_of(self, 2 * self.numel()));
        let storage = match &*self.storage() {
            Storage::Cpu(s) => Storage::Cpu(cpu_map!(s, |v| cpu::haar_dwt(v, n, c, h, w))),
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => Storage::Cuda(crate::storage::CudaStorage {
                buf: cuda::haar_dwt_cuda(&s.backend, &s.buf, n, c, h, w)?,
                backend: s.backend.clone(),
            }),
            #[cfg(feature = "wgpu")]
            Storage::Wgpu(s) => Storage::Wgpu(crate::storage::WgpuStorage {
                buf: wgpu::haar_dwt_wgpu(&s.backend, &s.buf, n, c, h, w)?,
                backend: s.backend.clone(),
            }),
            #[allow(unreachable_patterns)]
            other => return Err(Error::Unsupported { op: "haar_dwt", device: other.device_name() }),
        };
        Ok(Tensor::from_op(storage, vec![n, 4 * c, h / 2, w / 2], &[self], DwtBackward))
    }

    pub fn haar_iwt(&self) -> Result<Tensor> {
        let (n, c4, h, w) = self.dims4("haar_iwt")?;
        if c4 % 4 != 0 {
            return Err(Error::shape("haar_iwt", format!("channels must be a multiple of 4, got {}", fmt_shape(self.shape()))));
        }
        let _p = crate::profile::scope("haar_iwt", 2.0 * self.numel() as f64, crate::profile::bytes_of(self, 2 * self.numel()));
        let storage = match &*self.storage() {
            Storage::Cpu(s) => Storage::Cpu(cpu_map!(s, |v| cpu::haar_iwt(v, n, c4, h, w))),
            #[cfg(feature = "wgpu")]
            Storage::Wgpu(s) => crate::backend::wgpu::storage(&s.backend, wgpu::haar_iwt_wgpu(&s.backend, &s.buf, n, c4, h, w)?),
            #[allow(unreachable_patterns)]
            other => return Err(Error::Unsupported { op: "haar_iwt", device: other.device_name() }),
        };
        Ok(Tensor::from_op(storage, vec![n, c4 / 4, 2 * h, 2 * w], &[self], IwtBackward))
    }
}
