//! Where a tensor's numbers live. One enum over devices: every op matches on it, so a missing kernel for
//! a device is a visible, named error rather than a silent fallback.

use crate::device::Device;
use crate::dtype::DType;

/// Host memory, tagged by element type.
#[derive(Clone, Debug)]
pub enum CpuStorage {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl CpuStorage {
    pub fn dtype(&self) -> DType {
        match self {
            CpuStorage::F32(_) => DType::F32,
            CpuStorage::F64(_) => DType::F64,
        }
    }
    pub fn len(&self) -> usize {
        match self {
            CpuStorage::F32(v) => v.len(),
            CpuStorage::F64(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn zeros(dtype: DType, n: usize) -> Self {
        match dtype {
            DType::F32 => CpuStorage::F32(vec![0.0; n]),
            DType::F64 => CpuStorage::F64(vec![0.0; n]),
        }
    }
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match self {
            CpuStorage::F32(v) => v.iter().map(|&x| x as f64).collect(),
            CpuStorage::F64(v) => v.clone(),
        }
    }
    pub fn to_f32_vec(&self) -> Vec<f32> {
        match self {
            CpuStorage::F32(v) => v.clone(),
            CpuStorage::F64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }
    pub fn cast(&self, dtype: DType) -> CpuStorage {
        match dtype {
            DType::F32 => CpuStorage::F32(self.to_f32_vec()),
            DType::F64 => CpuStorage::F64(self.to_f64_vec()),
        }
    }
}

/// Run a generic CPU expression on a storage of either dtype, producing a storage of the same dtype:
/// `cpu_map!(s, |v| kernel(v, ...))` where `v: &Vec<T>` and the body returns `Vec<T>`.
#[macro_export]
macro_rules! cpu_map {
    ($s:expr, |$v:ident| $body:expr) => {
        match $s {
            $crate::storage::CpuStorage::F32($v) => $crate::storage::CpuStorage::F32($body),
            $crate::storage::CpuStorage::F64($v) => $crate::storage::CpuStorage::F64($body),
        }
    };
}

/// Like `cpu_map!` for two storages that must share a dtype; `None` if they do not.
#[macro_export]
macro_rules! cpu_map2 {
    ($a:expr, $b:expr, |$x:ident, $y:ident| $body:expr) => {
        match ($a, $b) {
            ($crate::storage::CpuStorage::F32($x), $crate::storage::CpuStorage::F32($y)) => {
                Some($crate::storage::CpuStorage::F32($body))
            }
            ($crate::storage::CpuStorage::F64($x), $crate::storage::CpuStorage::F64($y)) => {
                Some($crate::storage::CpuStorage::F64($body))
            }
            _ => None,
        }
    };
}

/// A device buffer of f32 together with the back end that owns it.
#[cfg(feature = "cuda")]
pub struct CudaStorage {
    pub buf: crate::backend::cuda::CudaBuffer,
    pub backend: std::sync::Arc<crate::backend::cuda::CudaBackend>,
}

#[cfg(feature = "wgpu")]
pub struct WgpuStorage {
    pub buf: crate::backend::wgpu::WgpuBuffer,
    pub backend: std::sync::Arc<crate::backend::wgpu::WgpuBackend>,
}

/// GPU storages hold f32 only: f64 exists for gradient checks, which run on the CPU.
pub enum Storage {
    Cpu(CpuStorage),
    #[cfg(feature = "cuda")]
    Cuda(CudaStorage),
    #[cfg(feature = "wgpu")]
    Wgpu(WgpuStorage),
}

impl Storage {
    pub fn dtype(&self) -> DType {
        match self {
            Storage::Cpu(s) => s.dtype(),
            #[cfg(feature = "cuda")]
            Storage::Cuda(_) => DType::F32,
            #[cfg(feature = "wgpu")]
            Storage::Wgpu(_) => DType::F32,
        }
    }
    pub fn device(&self) -> Device {
        match self {
            Storage::Cpu(_) => Device::Cpu,
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => Device::Cuda(s.backend.clone()),
            #[cfg(feature = "wgpu")]
            Storage::Wgpu(s) => Device::Wgpu(s.backend.clone()),
        }
    }
    pub fn len(&self) -> usize {
        match self {
            Storage::Cpu(s) => s.len(),
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => s.buf.len(),
            #[cfg(feature = "wgpu")]
            Storage::Wgpu(s) => s.buf.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Device name for error messages.
    pub fn device_name(&self) -> String {
        self.device().name()
    }

    /// Copy to host memory (a download for GPU storages).
    pub fn to_cpu(&self) -> crate::Result<CpuStorage> {
        match self {
            Storage::Cpu(s) => Ok(s.clone()),
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => Ok(CpuStorage::F32(s.backend.download(&s.buf)?)),
            #[cfg(feature = "wgpu")]
            Storage::Wgpu(s) => Ok(CpuStorage::F32(s.backend.download(&s.buf)?)),
        }
    }

    /// Put host data on a device (GPU devices take f32; other dtypes are converted).
    pub fn from_cpu(cpu: CpuStorage, device: &Device) -> crate::Result<Storage> {
        match device {
            Device::Cpu => Ok(Storage::Cpu(cpu)),
            #[cfg(feature = "cuda")]
            Device::Cuda(be) => {
                let buf = be.upload(&cpu.to_f32_vec())?;
                Ok(Storage::Cuda(CudaStorage { buf, backend: be.clone() }))
            }
            #[cfg(feature = "wgpu")]
            Device::Wgpu(be) => {
                let buf = be.upload(&cpu.to_f32_vec())?;
                Ok(Storage::Wgpu(WgpuStorage { buf, backend: be.clone() }))
            }
        }
    }

    /// A copy of this storage on the same device.
    pub fn duplicate(&self) -> crate::Result<Storage> {
        match self {
            Storage::Cpu(s) => Ok(Storage::Cpu(s.clone())),
            // On the device: optimizers assign every step, and a host round trip would stall each one.
            #[cfg(feature = "wgpu")]
            Storage::Wgpu(s) => Ok(Storage::Wgpu(WgpuStorage { buf: s.backend.copy(&s.buf)?, backend: s.backend.clone() })),
            #[allow(unreachable_patterns)]
            other => Storage::from_cpu(other.to_cpu()?, &other.device()),
        }
    }
}
