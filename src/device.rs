//! Device selection: `cpu`, `cuda[:N]`, `cuda-emu` (CUDA kernels emulated on the CPU), `wgpu`, or `auto` (CUDA, then wgpu, then CPU, saying which).
//!
//! GPU back ends are created once per process and shared, so every `--device wgpu` tensor lives on the same
//! wgpu device (buffers from two devices could not meet in one op).

#[cfg(any(feature = "cuda", feature = "wgpu"))]
use std::sync::Arc;

use crate::{Error, Result};

#[derive(Clone)]
pub enum Device {
    Cpu,
    #[cfg(feature = "cuda")]
    Cuda(Arc<crate::backend::cuda::CudaBackend>),
    #[cfg(feature = "wgpu")]
    Wgpu(Arc<crate::backend::wgpu::WgpuBackend>),
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl PartialEq for Device {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Device::Cpu, Device::Cpu) => true,
            #[cfg(feature = "cuda")]
            (Device::Cuda(a), Device::Cuda(b)) => Arc::ptr_eq(a, b),
            #[cfg(feature = "wgpu")]
            (Device::Wgpu(a), Device::Wgpu(b)) => Arc::ptr_eq(a, b),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }
}

#[cfg(feature = "cuda")]
fn cuda_backend(ordinal: usize) -> Result<Arc<crate::backend::cuda::CudaBackend>> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static CACHE: Mutex<Option<HashMap<usize, Arc<crate::backend::cuda::CudaBackend>>>> = Mutex::new(None);
    let mut guard = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    if let Some(be) = map.get(&ordinal) {
        return Ok(be.clone());
    }
    let be = crate::backend::cuda::CudaBackend::new(ordinal)?;
    map.insert(ordinal, be.clone());
    Ok(be)
}

/// The one CUDA emulation backend of the process.
#[cfg(feature = "cuda")]
fn cuda_emu_backend() -> Result<Arc<crate::backend::cuda::CudaBackend>> {
    use std::sync::Mutex;
    static CACHE: Mutex<Option<Arc<crate::backend::cuda::CudaBackend>>> = Mutex::new(None);
    let mut guard = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(be) = guard.as_ref() {
        return Ok(be.clone());
    }
    let be = crate::backend::cuda::CudaBackend::new_emulated()?;
    *guard = Some(be.clone());
    Ok(be)
}

#[cfg(feature = "wgpu")]
fn wgpu_backend() -> Result<Arc<crate::backend::wgpu::WgpuBackend>> {
    use std::sync::Mutex;
    static CACHE: Mutex<Option<Arc<crate::backend::wgpu::WgpuBackend>>> = Mutex::new(None);
    let mut guard = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(be) = guard.as_ref() {
        return Ok(be.clone());
    }
    let be = crate::backend::wgpu::WgpuBackend::new()?;
    *guard = Some(be.clone());
    Ok(be)
}

impl Device {
    /// Short name: `cpu`, `cuda:0`, `wgpu`.
    pub fn name(&self) -> String {
        match self {
            Device::Cpu => "cpu".to_string(),
            #[cfg(feature = "cuda")]
            Device::Cuda(be) if be.is_emulated() => "cuda-emu".to_string(),
            #[cfg(feature = "cuda")]
            Device::Cuda(be) => format!("cuda:{}", be.ordinal()),
            #[cfg(feature = "wgpu")]
            Device::Wgpu(_) => "wgpu".to_string(),
        }
    }

    /// Name plus what the hardware is (GPU model, adapter, SIMD level).
    pub fn describe(&self) -> String {
        match self {
            Device::Cpu => format!("cpu ({} threads, {})", rayon::current_num_threads(), crate::cpu::SimdLevel::detect().name()),
            #[cfg(feature = "cuda")]
            Device::Cuda(be) => format!("{} ({})", self.name(), be.name()),
            #[cfg(feature = "wgpu")]
            Device::Wgpu(be) => format!("wgpu ({})", be.name()),
        }
    }

    /// Wait until all work queued on the device has finished (GPU work is asynchronous; the CPU's is
    /// not). For timings.
    pub fn synchronize(&self) -> Result<()> {
        match self {
            #[cfg(feature = "wgpu")]
            Device::Wgpu(be) => be.synchronize(),
            _ => Ok(()),
        }
    }

    pub fn is_cpu(&self) -> bool {
        matches!(self, Device::Cpu)
    }

    /// A CUDA device (a GPU or the emulation).
    pub fn is_cuda(&self) -> bool {
        #[cfg(feature = "cuda")]
        return matches!(self, Device::Cuda(_));
        #[cfg(not(feature = "cuda"))]
        false
    }

    /// Parse a `--device` value. Unknown names and absent devices are errors that say what is wrong.
    pub fn parse(spec: &str) -> Result<Device> {
        match spec {
            "cpu" => Ok(Device::Cpu),
            "auto" => Ok(Self::auto()),
            "wgpu" => Self::wgpu(),
            "cuda-emu" => Self::cuda_emu(),
            s if s == "cuda" || s.starts_with("cuda:") => {
                let ordinal = match s.strip_prefix("cuda:") {
                    None => 0,
                    Some(n) => n.parse::<usize>().map_err(|_| {
                        Error::Device(format!("bad device `{s}`: expected cuda:N with N a GPU number"))
                    })?,
                };
                Self::cuda(ordinal)
            }
            other => Err(Error::Device(format!("unknown device `{other}`: expected cpu, cuda, cuda:N, cuda-emu, wgpu or auto"))),
        }
    }

    #[allow(unused_variables)]
    pub fn cuda(ordinal: usize) -> Result<Device> {
        #[cfg(feature = "cuda")]
        return Ok(Device::Cuda(cuda_backend(ordinal)?));
        #[cfg(not(feature = "cuda"))]
        Err(Error::Device("this deephide was built without the `cuda` feature".into()))
    }

    /// The CPU emulation of CUDA: the CUDA kernels compiled by g++ and run on CPU threads (for checking
    /// kernels without a GPU; slow).
    pub fn cuda_emu() -> Result<Device> {
        #[cfg(feature = "cuda")]
        return Ok(Device::Cuda(cuda_emu_backend()?));
        #[cfg(not(feature = "cuda"))]
        Err(Error::Device("this deephide was built without the `cuda` feature".into()))
    }

    pub fn wgpu() -> Result<Device> {
        #[cfg(feature = "wgpu")]
        return Ok(Device::Wgpu(wgpu_backend()?));
        #[cfg(not(feature = "wgpu"))]
        Err(Error::Device("this deephide was built without the `wgpu` feature".into()))
    }

    /// CUDA if a GPU is usable, else wgpu if an adapter exists, else the CPU; says on stderr what it chose
    /// and why the better ones were passed over.
    pub fn auto() -> Device {
        let mut why = Vec::new();
        match Self::cuda(0) {
            Ok(d) => {
                eprintln!("device auto: {}", d.describe());
                return d;
            }
            Err(e) => why.push(format!("cuda: {e}")),
        }
        match Self::wgpu() {
            Ok(d) => {
                eprintln!("device auto: {} (no CUDA: {})", d.describe(), why.join("; "));
                return d;
            }
            Err(e) => why.push(format!("wgpu: {e}")),
        }
        eprintln!("device auto: {} ({})", Device::Cpu.describe(), why.join("; "));
        Device::Cpu
    }
}
