//! CUDA back end: a context with one stream, pooled device buffers, and run-time compilation of
//! `kernels/*.cu`; or the same with the CPU emulation of CUDA (`cuda-emu`, see [`emu`]) standing in for
//! the driver below the launch code.
//!
//! Everything is loaded at run time (cudarc's `dynamic-loading`): the crate builds and runs on machines
//! without a driver, a GPU or a CUDA toolkit, and every entry point reports such absences as
//! [`Error::Device`] instead of panicking. Kernels are compiled by NVRTC on first use for the exact
//! architecture of the device, then cached in memory (per backend) and on disk (per machine, see
//! [`cache`]). [`compile_report`] runs the same compiler without a GPU to check register use and spills.
//!
//! The launch code of each op lives beside the op (`src/ops/<op>/cuda.rs`); it is re-exported here so
//! that callers outside the crate (tests, benchmarks) reach all CUDA entry points in one place.

pub mod cache;
pub mod emu;
pub mod launch;
pub mod nvrtc;
pub mod pool;
pub mod report;
pub mod table;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use std::ffi::c_void;

use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaStream, DevicePtr, DriverError, sys};
use cudarc::nvrtc::Ptx;

use self::emu::{Emu, EmuAlloc, EmuKernel, EmuModule};
pub use self::launch::{Arg, LAUNCHES, Launch, LaunchShape, occupancy, pod, shape_of};
use self::pool::{Block, Pool, RawMem, size_class};
pub use self::pool::PoolStats;

pub use self::nvrtc::Target;
pub use self::report::{KernelReport, compile_report, parse_ptxas_log};
pub use crate::ops::binary::cuda::{MAX_RANK, add_broadcast_cuda, add_cuda, binary_broadcast_cuda, binary_cuda};
pub use crate::ops::haar::cuda::{haar_dwt_cuda, haar_iwt_cuda};
use crate::{Error, Result};

/// Every CUDA source file of the crate, as `(file name, source)`. Adding a kernel file means adding
/// one line here; the tests compile and report every entry.
pub const KERNEL_SOURCES: &[(&str, &str)] = &[
    ("elementwise.cu", include_str!("../../../kernels/elementwise.cu")),
    ("haar.cu", include_str!("../../../kernels/haar.cu")),
    ("reduce.cu", include_str!("../../../kernels/reduce.cu")),
    ("layout.cu", include_str!("../../../kernels/layout.cu")),
    ("index.cu", include_str!("../../../kernels/index.cu")),
    ("gemm.cu", include_str!("../../../kernels/gemm.cu")),
    ("pool.cu", include_str!("../../../kernels/pool.cu")),
    ("batch_norm.cu", include_str!("../../../kernels/batch_norm.cu")),
    ("optim.cu", include_str!("../../../kernels/optim.cu")),
    ("softmax.cu", include_str!("../../../kernels/softmax.cu")),
];

/// The source of kernels/`file`, from [`KERNEL_SOURCES`].
pub fn kernel_source(file: &str) -> Result<&'static str> {
    KERNEL_SOURCES
        .iter()
        .find(|(name, _)| *name == file)
        .map(|&(_, source)| source)
        .ok_or_else(|| Error::msg(format!("no CUDA kernel file `{file}` in KERNEL_SOURCES")))
}

/// Says why CUDA cannot be used on this machine (no driver library, no device, no NVRTC), or `Ok`.
/// Never panics, so it is safe to call anywhere, including to decide whether to skip GPU tests.
pub fn probe() -> std::result::Result<(), String> {
    // cudarc panics on its first driver call when libcuda cannot be loaded; this check does not.
    // SAFETY: only tries to dlopen the candidate library names.
    if !unsafe { sys::is_culib_present() } {
        return Err(
            "the NVIDIA driver library (libcuda.so.1) cannot be loaded: no NVIDIA driver is installed".into(),
        );
    }
    // Defence in depth: a driver too old for the symbols cudarc resolves also panics.
    match std::panic::catch_unwind(CudaContext::device_count) {
        Ok(Ok(n)) if n > 0 => {}
        Ok(Ok(_)) => return Err("the NVIDIA driver is installed but reports no CUDA device".into()),
        Ok(Err(e)) => {
            return Err(format!("the NVIDIA driver reports no usable CUDA device: {}", describe(e)));
        }
        Err(_) => return Err("the NVIDIA driver library is too old for this build (missing symbols)".into()),
    }
    nvrtc::version()?;
    Ok(())
}

/// A driver error as `CUDA_ERROR_NAME: description`.
fn describe(e: DriverError) -> String {
    match e.error_string() {
        Ok(s) => format!("{:?}: {}", e.0, s.to_string_lossy()),
        Err(_) => format!("{:?}", e.0),
    }
}

/// Wraps a driver error with what we were doing, for `map_err`.
pub(crate) fn driver_error(what: impl Into<String>) -> impl FnOnce(DriverError) -> Error {
    let what = what.into();
    move |e| Error::Device(format!("CUDA: {what}: {}", describe(e)))
}

/// Grid-stride kernels need at most this many resident-block waves; more blocks only add scheduling.
const BLOCKS_PER_SM: u32 = 32;

/// What executes the kernels: the CUDA driver, or the CPU emulation.
enum Engine {
    Driver { ctx: Arc<CudaContext>, stream: Arc<CudaStream> },
    Emu(Emu),
}

/// A compiled kernel file.
#[derive(Clone)]
enum Module {
    Driver(Arc<CudaModule>),
    Emu(Arc<EmuModule>),
}

/// A kernel ready to launch.
#[derive(Clone)]
pub struct Kernel {
    name: String,
    file: &'static str,
    inner: KernelInner,
}

#[derive(Clone)]
enum KernelInner {
    Driver(CudaFunction),
    Emu(EmuKernel),
}

impl Kernel {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn file(&self) -> &str {
        self.file
    }
}

/// One CUDA device (or its emulation): the stream all work goes to, a memory pool, and the kernels
/// compiled for it.
pub struct CudaBackend {
    engine: Engine,
    pool: Arc<Pool>,
    /// Loaded modules keyed by kernel file name. The lock is held while compiling so that two threads
    /// asking for the same file compile it once.
    modules: Mutex<HashMap<&'static str, Module>>,
    /// Kernels already looked up, keyed by (file, kernel).
    kernels: Mutex<HashMap<(&'static str, String), Kernel>>,
    compute_capability: (u32, u32),
    target: Target,
    device_name: String,
    ordinal: usize,
    sm_count: u32,
}

impl std::fmt::Debug for CudaBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaBackend")
            .field("ordinal", &self.ordinal)
            .field("name", &self.name())
            .field("target", &self.target)
            .finish()
    }
}

impl CudaBackend {
    /// Opens CUDA device `ordinal`. Fails with [`Error::Device`] saying what is missing (driver, device,
    /// NVRTC) rather than panicking.
    pub fn new(ordinal: usize) -> Result<Arc<CudaBackend>> {
        probe().map_err(|why| Error::Device(format!("CUDA is unavailable: {why}")))?;
        let count = CudaContext::device_count().map_err(driver_error("counting devices"))?;
        if ordinal >= count.max(0) as usize {
            return Err(Error::Device(format!(
                "CUDA device {ordinal} does not exist ({count} device(s) present)"
            )));
        }
        let ctx = std::panic::catch_unwind(|| CudaContext::new(ordinal))
            .map_err(|_| Error::Device(format!("CUDA: creating a context on device {ordinal} panicked")))?
            .map_err(driver_error(format!("creating a context on device {ordinal}")))?;

        // All work goes to one stream, so stream order alone keeps buffers safe (this is also what makes
        // the memory pool's reuse safe); cudarc's per-buffer events would be pure overhead.
        // SAFETY: no buffer exists yet, and this backend never creates a second stream.
        unsafe { ctx.disable_event_tracking() };
        // A stream of our own, not the legacy default stream, so that other libraries in the process
        // using the default stream are not serialised with our work.
        let stream = ctx.new_stream().map_err(driver_error("creating a stream"))?;

        let (major, minor) =
            ctx.compute_capability().map_err(driver_error("reading the compute capability"))?;
        let compute_capability = (major as u32, minor as u32);
        let device_name = ctx.name().map_err(driver_error("reading the device name"))?;
        let sm_count = ctx
            .attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            .map_err(driver_error("reading the multiprocessor count"))?
            .max(1) as u32;
        let target = Target::for_device(compute_capability.0, compute_capability.1)?;

        Ok(Arc::new(CudaBackend {
            engine: Engine::Driver { ctx, stream },
            pool: Arc::new(Pool::default()),
            modules: Mutex::new(HashMap::new()),
            kernels: Mutex::new(HashMap::new()),
            compute_capability,
            target,
            device_name,
            ordinal,
            sm_count,
        }))
    }

    /// The CPU emulation of a CUDA device (`--device cuda-emu`): needs g++ but no GPU and no NVRTC.
    /// It poses as an sm_80 part with 2 SMs, so grid-stride launches stay small (each emulated thread is
    /// an OS thread) while every other launch is sized exactly as on a GPU.
    pub fn new_emulated() -> Result<Arc<CudaBackend>> {
        let emu = Emu::new()?;
        let version = emu::compiler_version().unwrap_or_default();
        Ok(Arc::new(CudaBackend {
            engine: Engine::Emu(emu),
            pool: Arc::new(Pool::default()),
            modules: Mutex::new(HashMap::new()),
            kernels: Mutex::new(HashMap::new()),
            compute_capability: (8, 0),
            target: Target::Cubin(80),
            device_name: format!("CPU emulation of CUDA, kernels built by {version}"),
            ordinal: 0,
            sm_count: 2,
        }))
    }

    /// True for the CPU emulation.
    pub fn is_emulated(&self) -> bool {
        matches!(self.engine, Engine::Emu(_))
    }

    /// The GPU name and architecture, like `NVIDIA A100-SXM4-40GB (sm_80)`.
    pub fn name(&self) -> String {
        let (major, minor) = self.compute_capability;
        format!("{} (sm_{major}{minor})", self.device_name)
    }

    pub fn ordinal(&self) -> usize {
        self.ordinal
    }

    /// `(major, minor)`, like `(8, 0)` for sm_80.
    pub fn compute_capability(&self) -> (u32, u32) {
        self.compute_capability
    }

    /// What NVRTC compiles for this device.
    pub fn target(&self) -> Target {
        self.target
    }

    /// Allocation counters of the memory pool.
    pub fn pool_stats(&self) -> PoolStats {
        self.pool.stats()
    }

    /// A buffer of `len` floats from the pool; `zero` clears it. Retries once after emptying the pool
    /// when the device is out of memory.
    fn alloc(&self, len: usize, zero: bool) -> Result<CudaBuffer> {
        if len == 0 {
            return Ok(CudaBuffer::empty());
        }
        let cap = size_class(len);
        let mem = match self.pool.take(cap) {
            Some(m) => m,
            None => {
                self.pool.count_fresh();
                match self.fresh(cap) {
                    Ok(m) => m,
                    Err(_) => {
                        self.pool.trim();
                        self.fresh(cap)?
                    }
                }
            }
        };
        let mut block = Block { mem: Some(mem), cap, pool: self.pool.clone() };
        match (&self.engine, block.mem.as_mut()) {
            (Engine::Driver { stream, .. }, Some(RawMem::Driver(s))) if zero => stream
                .memset_zeros(&mut s.slice_mut(0..len))
                .map_err(driver_error(format!("zeroing {len} floats")))?,
            (Engine::Emu(_), Some(RawMem::Emu(a))) => a.prepare(len, zero),
            _ => {}
        }
        Ok(CudaBuffer { block: Some(block), len })
    }

    fn fresh(&self, cap: usize) -> Result<RawMem> {
        match &self.engine {
            // SAFETY: any bit pattern is a valid f32; every buffer is written before it is read.
            Engine::Driver { stream, .. } => unsafe { stream.alloc::<f32>(cap) }
                .map(RawMem::Driver)
                .map_err(driver_error(format!("allocating {cap} floats"))),
            Engine::Emu(_) => EmuAlloc::new(cap).map(RawMem::Emu),
        }
    }

    /// Copies `data` to a new device buffer.
    pub fn upload(&self, data: &[f32]) -> Result<CudaBuffer> {
        let mut buf = self.alloc(data.len(), false)?;
        let len = data.len();
        match (&self.engine, buf.block.as_mut().and_then(|b| b.mem.as_mut())) {
            (Engine::Driver { stream, .. }, Some(RawMem::Driver(s))) => stream
                .memcpy_htod(data, &mut s.slice_mut(0..len))
                .map_err(driver_error(format!("uploading {len} floats")))?,
            (Engine::Emu(_), Some(RawMem::Emu(a))) => a.write(data),
            _ => {}
        }
        Ok(buf)
    }

    /// Copies a device buffer back to the host, waiting for all work queued before it (so this is also
    /// where errors of earlier asynchronous launches surface).
    pub fn download(&self, buf: &CudaBuffer) -> Result<Vec<f32>> {
        self.check_owned("download", &[buf])?;
        let Some(block) = &buf.block else { return Ok(Vec::new()) };
        match (&self.engine, block.mem()) {
            (Engine::Driver { stream, .. }, RawMem::Driver(s)) => {
                let mut out = vec![0f32; buf.len];
                stream
                    .memcpy_dtoh(&s.slice(0..buf.len), &mut out)
                    .map_err(driver_error(format!("downloading {} floats", buf.len)))?;
                // A copy into pageable memory already returns when done; synchronise anyway so that the
                // contract does not depend on that driver detail.
                self.synchronize()?;
                Ok(out)
            }
            (Engine::Emu(_), RawMem::Emu(a)) => Ok(a.read(buf.len)),
            _ => Err(Error::Device("buffer of another kind of CUDA device".into())),
        }
    }

    /// Downloads a buffer that kernels filled with 32-bit unsigned integers (indices).
    pub fn download_u32(&self, buf: &CudaBuffer) -> Result<Vec<u32>> {
        Ok(self.download(buf)?.into_iter().map(f32::to_bits).collect())
    }

    /// Uploads 32-bit unsigned integers (indices) into a buffer that kernels read as `unsigned int*`.
    pub fn upload_u32(&self, data: &[u32]) -> Result<CudaBuffer> {
        let bits: Vec<f32> = data.iter().map(|&u| f32::from_bits(u)).collect();
        self.upload(&bits)
    }

    /// A device buffer of `len` zeros.
    pub fn zeros(&self, len: usize) -> Result<CudaBuffer> {
        self.alloc(len, true)
    }

    /// A device buffer of `len` floats with unspecified content, for kernel outputs that write every
    /// element (skipping the memset of [`zeros`](Self::zeros)). The emulation fills it with NaN so that a
    /// kernel that misses an element is caught.
    pub fn alloc_uninit(&self, len: usize) -> Result<CudaBuffer> {
        self.alloc(len, false)
    }

    /// A copy of `src` in a new buffer (device to device).
    pub fn duplicate(&self, src: &CudaBuffer) -> Result<CudaBuffer> {
        self.check_owned("duplicate", &[src])?;
        let mut dst = self.alloc(src.len, false)?;
        let len = src.len;
        match (&self.engine, src.block.as_ref().map(|b| b.mem()), dst.block.as_mut().and_then(|b| b.mem.as_mut())) {
            (Engine::Driver { stream, .. }, Some(RawMem::Driver(s)), Some(RawMem::Driver(d))) => stream
                .memcpy_dtod(&s.slice(0..len), &mut d.slice_mut(0..len))
                .map_err(driver_error(format!("copying {len} floats")))?,
            (Engine::Emu(_), Some(RawMem::Emu(s)), Some(RawMem::Emu(d))) => d.copy_from(s, len),
            _ => {}
        }
        Ok(dst)
    }

    /// Waits for all work queued on this backend's stream; reports errors of earlier launches.
    pub fn synchronize(&self) -> Result<()> {
        match &self.engine {
            Engine::Driver { stream, .. } => stream.synchronize().map_err(driver_error("synchronising the stream")),
            Engine::Emu(_) => Ok(()),
        }
    }

    /// Fails with [`Error::Mismatch`] if a buffer was allocated by another backend: its pointer would be
    /// meaningless here.
    pub(crate) fn check_owned(&self, op: &'static str, bufs: &[&CudaBuffer]) -> Result<()> {
        for buf in bufs {
            if let Some(block) = &buf.block
                && !Arc::ptr_eq(&block.pool, &self.pool)
            {
                return Err(Error::Mismatch {
                    op,
                    msg: format!("a buffer belongs to another CUDA device than {}", self.name()),
                });
            }
        }
        Ok(())
    }

    /// A 1-D launch of `kernel` (block size from [`LAUNCHES`]) for a grid-stride loop over `n` items:
    /// one thread per item up to a few waves of the whole GPU, after which each thread loops.
    pub fn stride_launch(&self, kernel: &str, n: u64) -> Launch {
        let block = shape_of(kernel).map(|s| s.block).unwrap_or((256, 1, 1));
        let threads = (block.0 * block.1 * block.2) as u64;
        let max_blocks = self.sm_count.saturating_mul(BLOCKS_PER_SM) as u64;
        let blocks = n.div_ceil(threads).clamp(1, max_blocks) as u32;
        Launch { grid: (blocks, 1, 1), block }
    }

    /// Blocks in a few waves of the whole GPU: the grid cap of kernels that loop over their work.
    pub fn max_resident_blocks(&self) -> u64 {
        self.sm_count.saturating_mul(BLOCKS_PER_SM) as u64
    }

    /// A launch of `kernel` (block size from [`LAUNCHES`]) with the given grid.
    pub fn grid_launch(&self, kernel: &str, grid: (u32, u32, u32)) -> Launch {
        let block = shape_of(kernel).map(|s| s.block).unwrap_or((256, 1, 1));
        Launch { grid, block }
    }

    /// Kernel `kernel` of kernels/`file`, compiling and loading the file on first use.
    pub fn function(&self, file: &str, kernel: &str) -> Result<Kernel> {
        let (key, module) = self.module(file)?;
        let mut kernels = self.kernels.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(k) = kernels.get(&(key, kernel.to_string())) {
            return Ok(k.clone());
        }
        let inner = match (&self.engine, &module) {
            (Engine::Driver { .. }, Module::Driver(m)) => KernelInner::Driver(
                m.load_function(kernel)
                    .map_err(driver_error(format!("looking up kernel `{kernel}` in kernels/{file}")))?,
            ),
            (Engine::Emu(e), Module::Emu(m)) => KernelInner::Emu(e.kernel(m, file, kernel)?),
            _ => return Err(Error::Device("module of another kind of CUDA device".into())),
        };
        let k = Kernel { name: kernel.to_string(), file: key, inner };
        kernels.insert((key, kernel.to_string()), k.clone());
        Ok(k)
    }

    fn module(&self, file: &str) -> Result<(&'static str, Module)> {
        let &(key, source) = KERNEL_SOURCES
            .iter()
            .find(|(name, _)| *name == file)
            .ok_or_else(|| Error::msg(format!("no CUDA kernel file `{file}` in KERNEL_SOURCES")))?;
        // A panic while compiling cannot leave the map half-updated, so a poisoned lock is still usable.
        let mut modules = self.modules.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(module) = modules.get(key) {
            return Ok((key, module.clone()));
        }
        let module = match &self.engine {
            Engine::Driver { ctx, .. } => Module::Driver(self.compile_and_load(ctx, key, source)?),
            Engine::Emu(e) => Module::Emu(e.load_module(key, source)?),
        };
        modules.insert(key, module.clone());
        Ok((key, module))
    }

    /// Loads kernels/`file` from the disk cache, or compiles it with NVRTC and fills the cache.
    fn compile_and_load(&self, ctx: &Arc<CudaContext>, file: &str, source: &str) -> Result<Arc<CudaModule>> {
        const OPTIONS: &[&str] = &[];
        let path = cache::image_path(file, source, self.target, OPTIONS);
        if let Some(image) = path.as_deref().and_then(cache::load) {
            // A file the driver rejects (damaged, or written by an incompatible setup) is recompiled
            // and replaced below rather than reported: the cache must never be the reason a run fails.
            if let Ok(module) = ctx.load_module(Ptx::from_binary(image)) {
                return Ok(module);
            }
        }
        let compiled = nvrtc::compile(file, source, self.target, OPTIONS)?;
        if let Some(path) = &path {
            // Not fatal: a read-only or full disk only costs a recompile next time.
            let _ = cache::store(path, &compiled.image);
        }
        ctx.load_module(Ptx::from_binary(compiled.image))
            .map_err(driver_error(format!("loading kernels/{file} compiled for {}", self.target.arch())))
    }

    /// Launches `kernel` of kernels/`file` on the stream. Every launch of every op comes through here.
    ///
    /// The arguments must match the kernel's parameters in order and type; buffers must belong to this
    /// backend (checked). Under profiling, the launch is timed with CUDA events (or the host clock under
    /// emulation) and the device time is credited to the op that is running.
    pub fn launch(&self, file: &str, kernel: &str, cfg: Launch, args: &[Arg]) -> Result<()> {
        let k = self.function(file, kernel)?;
        self.launch_kernel(&k, cfg, args)
    }

    /// Kernel `kernel` of a CUDA source that is not one of [`KERNEL_SOURCES`], under the emulation only:
    /// for tests of the emulator itself (kernels with deliberate bugs it must catch). Not cached.
    pub fn emulated_kernel(&self, file: &'static str, source: &str, kernel: &str) -> Result<Kernel> {
        let Engine::Emu(e) = &self.engine else {
            return Err(Error::Device("emulated_kernel needs the cuda-emu device".into()));
        };
        let module = e.load_module(file, source)?;
        Ok(Kernel { name: kernel.to_string(), file, inner: KernelInner::Emu(e.kernel(&module, file, kernel)?) })
    }

    /// Launches a kernel obtained from [`function`](Self::function) (see [`launch`](Self::launch)).
    pub fn launch_kernel(&self, k: &Kernel, cfg: Launch, args: &[Arg]) -> Result<()> {
        let (file, kernel) = (k.file, k.name.as_str());
        let what = || format!("kernel `{kernel}` (kernels/{file})");
        let (g, b) = (cfg.grid, cfg.block);
        if g.0 == 0 || g.1 == 0 || g.2 == 0 || g.1 > 65535 || g.2 > 65535 || b.0 * b.1 * b.2 == 0 || cfg.threads() > 1024 {
            return Err(Error::Device(format!("{}: invalid launch configuration {cfg:?}", what())));
        }
        let bufs: Vec<&CudaBuffer> = args.iter().filter_map(|a| if let Arg::Buf(b) = a { Some(*b) } else { None }).collect();
        self.check_owned("launch", &bufs)?;

        // cuLaunchKernel's convention: one pointer per parameter, pointing at the parameter's value.
        // `values` holds the scalars (and device pointers) at stable addresses while `params` points into it.
        let mut values: Vec<u64> = Vec::with_capacity(args.len());
        for a in args {
            values.push(match a {
                Arg::Buf(buf) => self.device_ptr(buf),
                Arg::U32(v) => *v as u64,
                Arg::I32(v) => *v as u32 as u64,
                Arg::U64(v) => *v,
                Arg::F32(v) => v.to_bits() as u64,
                Arg::Pod(_) => 0,
            });
        }
        // Little-endian: a u32/f32 stored in the low half of a u64 sits at the u64's address.
        let mut params: Vec<*mut c_void> = args
            .iter()
            .zip(values.iter_mut())
            .map(|(a, v)| match a {
                Arg::Pod(bytes) => bytes.as_ptr() as *mut c_void,
                _ => v as *mut u64 as *mut c_void,
            })
            .collect();

        let profiling = crate::profile::is_enabled();
        match (&self.engine, &k.inner) {
            (Engine::Driver { ctx, stream }, KernelInner::Driver(f)) => {
                let events = if profiling {
                    let flags = Some(sys::CUevent_flags::CU_EVENT_DEFAULT);
                    let start = ctx.new_event(flags).map_err(driver_error("creating a timing event"))?;
                    let end = ctx.new_event(flags).map_err(driver_error("creating a timing event"))?;
                    start.record(stream).map_err(driver_error("recording a timing event"))?;
                    Some((start, end))
                } else {
                    None
                };
                ctx.bind_to_thread().map_err(driver_error("binding the context"))?;
                // SAFETY: `params` matches the kernel's signature (the op code's contract, mirrored by
                // the emulation tests), every pointer in it lives until the call returns (the driver
                // copies the values at launch), and every buffer belongs to this context (checked).
                unsafe { cudarc::driver::result::launch_kernel(f.cu_function(), g, b, 0, stream.cu_stream(), &mut params) }
                    .map_err(driver_error(format!("launching {} with {cfg:?}", what())))?;
                if let Some((start, end)) = events {
                    end.record(stream).map_err(driver_error("recording a timing event"))?;
                    let ms = start.elapsed_ms(&end).map_err(driver_error(format!("timing {}", what())))?;
                    crate::profile::add_device_time(ms as f64 / 1e3);
                }
            }
            (Engine::Emu(e), KernelInner::Emu(ek)) => {
                let t0 = std::time::Instant::now();
                e.launch(ek, g, b, &mut params).map_err(|m| Error::Device(format!("cuda-emu: {}: {m}", what())))?;
                if profiling {
                    crate::profile::add_device_time(t0.elapsed().as_secs_f64());
                }
                // Red zones: did the kernel write outside any buffer it was given?
                for (i, a) in args.iter().enumerate() {
                    if let Arg::Buf(buf) = a
                        && let Some(block) = &buf.block
                        && let RawMem::Emu(alloc) = block.mem()
                        && let Some(off) = alloc.damaged(buf.len)
                    {
                        return Err(Error::Device(format!(
                            "cuda-emu: {} wrote outside argument #{i} (a buffer of {} floats), at element {off}",
                            what(),
                            buf.len
                        )));
                    }
                }
            }
            _ => return Err(Error::Device("kernel of another kind of CUDA device".into())),
        }
        Ok(())
    }

    fn device_ptr(&self, buf: &CudaBuffer) -> u64 {
        match (&self.engine, buf.block.as_ref().map(|b| b.mem())) {
            (Engine::Driver { stream, .. }, Some(RawMem::Driver(s))) => s.device_ptr(stream).0,
            (_, Some(RawMem::Emu(a))) => a.ptr() as u64,
            // Empty buffers have no memory; kernels never dereference them (n = 0).
            _ => 0,
        }
    }
}

/// A contiguous f32 array on one CUDA device (from its pool). Empty buffers hold no allocation.
pub struct CudaBuffer {
    block: Option<Block>,
    len: usize,
}

impl std::fmt::Debug for CudaBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaBuffer").field("len", &self.len).finish()
    }
}

impl CudaBuffer {
    fn empty() -> Self {
        CudaBuffer { block: None, len: 0 }
    }

    /// Number of f32 elements.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}
