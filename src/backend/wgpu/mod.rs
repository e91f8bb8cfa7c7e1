//! wgpu (WGSL) back end: device context, f32 storage buffers (pooled), a pipeline cache and one dispatch
//! helper that every op's launch code (`src/ops/<op>/wgpu.rs`) goes through.
//!
//! Runs on any wgpu adapter; on machines without a GPU, Mesa's lavapipe (software Vulkan) is the target
//! (`scripts/install-lavapipe.sh`). `WGPU_BACKEND` (vulkan, gl, metal, dx12), `WGPU_ADAPTER_NAME` (substring
//! of the adapter name) and `WGPU_POWER_PREF` (low, high) select the adapter.
//!
//! Errors never panic: adapter/device absence is `Error::Device`, and every wgpu call that can raise a
//! validation/out-of-memory error runs inside error scopes that turn it into `Error::Device`.

mod pool;
mod shaders;
mod timing;

pub use pool::PoolStats;
pub use shaders::{SHADER_SOURCES, entry_points, shader_source, validate_all_shaders, validate_wgsl};

// The launch functions live beside their ops in `pub(crate)` modules; re-exported here so that code
// outside the crate (integration tests, benches) can call them.
pub use crate::ops::binary::wgpu::{add_broadcast_wgpu, add_wgpu};
pub use crate::ops::haar::wgpu::haar_dwt_wgpu;

use crate::{Error, Result};
use pool::{Kind, Lease, Pool};
use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::{Arc, Mutex, MutexGuard};

/// Wrap a buffer of `be` as a tensor storage (what every op's wgpu arm returns).
pub(crate) fn storage(be: &Arc<WgpuBackend>, buf: WgpuBuffer) -> crate::storage::Storage {
    crate::storage::Storage::Wgpu(crate::storage::WgpuStorage { buf, backend: be.clone() })
}

/// Threads per workgroup used by the crate's 1-D shaders (`@workgroup_size(64)`).
pub const WORKGROUP_SIZE: u32 = 64;

/// Number of workgroups of `group_size` threads that cover `items` items.
pub fn workgroups_for(items: usize, group_size: u32) -> u64 {
    (items as u64).div_ceil(group_size as u64)
}

/// Dispatches recorded per submit at most: submitting is what costs on the host (a few tens of µs per
/// submit on lavapipe), while a longer batch keeps more freed buffers in quarantine (see `pool.rs`).
pub const BATCH_MAX: usize = 256;

/// Commands recorded but not yet submitted. Submitting once per batch instead of once per dispatch is
/// the "one command encoder per step" of the design: a training step's few hundred dispatches go out in
/// a handful of submits; downloads and `synchronize` submit whatever is open first.
#[derive(Default)]
struct Batch {
    encoder: Option<wgpu::CommandEncoder>,
    dispatches: usize,
    /// Last recorded work, for the error message if the submit fails validation.
    last: String,
}

/// A cached compute pipeline with the bind-group layout derived from its shader.
struct Kernel {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Caches stay consistent under a panic elsewhere (single insert per update), so poisoning is ignored.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A wgpu device with its queue, pipeline cache and buffer pool. Shared as `Arc<WgpuBackend>`; all methods
/// take `&self` and may be called from several threads.
pub struct WgpuBackend {
    // Kept so the instance outlives everything created from it.
    _instance: wgpu::Instance,
    _adapter: wgpu::Adapter,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    device: wgpu::Device,
    queue: wgpu::Queue,
    modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
    kernels: Mutex<HashMap<(String, String), Arc<Kernel>>>,
    pool: Arc<Pool>,
    /// The open command encoder: dispatches are recorded into it and submitted together (see [`Batch`]).
    batch: Mutex<Batch>,
    /// Timestamp-query profiling, when enabled and the adapter supports it.
    timing: Mutex<Option<timing::Timer>>,
    /// Constant u32 tables (index tables of conv2d), built once per key.
    tables: Mutex<HashMap<String, Arc<WgpuBuffer>>>,
    /// Submit and wait after every dispatch (profiling without timestamp queries: host timers around an
    /// op then measure its device time).
    serialize: std::sync::atomic::AtomicBool,
    /// Errors raised outside any error scope (the device reports them asynchronously); the next call that
    /// checks returns the first one instead of letting wgpu's default handler panic.
    uncaptured: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for WgpuBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WgpuBackend").field("adapter", &self.name()).finish_non_exhaustive()
    }
}

/// An f32 storage buffer on a [`WgpuBackend`]'s device, holding `len` elements. The device buffer may be
/// larger (pool size class); only the first `len` elements are bound to shaders. Dropping it returns the
/// device buffer to the backend's pool.
pub struct WgpuBuffer {
    lease: Lease,
    len: usize,
}

impl WgpuBuffer {
    /// Number of f32 elements.
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The underlying wgpu buffer (possibly larger than `len * 4` bytes).
    pub fn raw(&self) -> &wgpu::Buffer {
        self.lease.buffer()
    }
    /// Bytes of the logical content, `len * 4`.
    pub fn size_bytes(&self) -> u64 {
        self.len as u64 * 4
    }
    /// Binding range for a shader: exactly the logical content, so `arrayLength` sees `len`. An empty
    /// buffer binds 4 bytes because a zero-sized binding is invalid.
    fn binding(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: self.raw(),
            offset: 0,
            size: NonZeroU64::new(self.size_bytes().max(4)),
        })
    }
}

impl std::fmt::Debug for WgpuBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WgpuBuffer {{ len: {}, capacity_bytes: {} }}", self.len, self.raw().size())
    }
}

impl WgpuBackend {
    /// Open the adapter chosen by the environment (see module docs) and create a device with the adapter's
    /// full limits. No adapter, or a device request that fails, is `Error::Device` with the reason.
    pub fn new() -> Result<Arc<WgpuBackend>> {
        private_runtime_dir();
        let desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        let backends = desc.backends;
        let instance = wgpu::Instance::new(desc);
        let adapter = pollster::block_on(Self::pick_adapter(&instance, backends))?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("deephide"),
            // Timestamp queries only feed `deephide profile`; asked for when the adapter has them.
            required_features: adapter.features() & wgpu::Features::TIMESTAMP_QUERY,
            // Ask for everything the adapter offers: large tensors need its real storage-binding limit,
            // not WebGPU's portable 128 MiB default.
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| {
            Error::Device(format!(
                "wgpu: adapter {} ({:?}, {:?}) refused to create a device: {e}",
                info.name, info.backend, info.device_type
            ))
        })?;
        let uncaptured: Arc<Mutex<Option<String>>> = Arc::default();
        let slot = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut s = lock(&slot);
            if s.is_none() {
                *s = Some(e.to_string());
            }
        }));
        Ok(Arc::new(WgpuBackend {
            _instance: instance,
            _adapter: adapter,
            info,
            limits,
            device,
            queue,
            modules: Mutex::default(),
            kernels: Mutex::default(),
            pool: Pool::new(pool::DEFAULT_IDLE_LIMIT),
            batch: Mutex::default(),
            timing: Mutex::new(None),
            serialize: Default::default(),
            tables: Mutex::default(),
            uncaptured,
        }))
    }

    async fn pick_adapter(instance: &wgpu::Instance, backends: wgpu::Backends) -> Result<wgpu::Adapter> {
        // WGPU_ADAPTER_NAME is handled here rather than with wgpu::util::initialize_adapter_from_env,
        // which panics when no adapter matches.
        if let Ok(wanted) = std::env::var("WGPU_ADAPTER_NAME") {
            let wanted_lc = wanted.to_lowercase();
            let adapters = instance.enumerate_adapters(backends).await;
            let names: Vec<String> = adapters
                .iter()
                .map(|a| format!("{} ({:?})", a.get_info().name, a.get_info().backend))
                .collect();
            return adapters
                .into_iter()
                .find(|a| a.get_info().name.to_lowercase().contains(&wanted_lc))
                .ok_or_else(|| {
                    Error::Device(format!(
                        "wgpu: WGPU_ADAPTER_NAME={wanted:?} matches no adapter (available on backends {backends:?}: {})",
                        if names.is_empty() { "none".to_string() } else { names.join(", ") }
                    ))
                });
        }
        instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::from_env().unwrap_or_default(),
                ..Default::default()
            })
            .await
            .map_err(|e| {
                Error::Device(format!(
                    "wgpu: no adapter found on backends {backends:?} (WGPU_BACKEND={}): {e}. Without a GPU, install \
                     Mesa's software Vulkan driver lavapipe (scripts/install-lavapipe.sh)",
                    std::env::var("WGPU_BACKEND").unwrap_or_else(|_| "<unset>".into())
                ))
            })
    }

    /// Adapter name, backend and device type, e.g. `llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, Cpu)`.
    pub fn name(&self) -> String {
        format!("{} ({:?}, {:?})", self.info.name, self.info.backend, self.info.device_type)
    }
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }
    /// Limits of the device (the adapter's full limits).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }
    /// Largest storage-buffer binding in bytes: the largest tensor a shader can see.
    pub fn max_storage_buffer_binding_size(&self) -> u64 {
        self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size)
    }
    /// Largest f32 element count of a [`WgpuBuffer`].
    pub fn max_buffer_len(&self) -> usize {
        (self.max_storage_buffer_binding_size() / 4) as usize
    }
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }
    pub fn pool_stats(&self) -> PoolStats {
        self.pool.stats()
    }
    /// Cap on memory kept by idle pooled buffers (default 1 GiB); lowering it frees idle buffers.
    pub fn set_pool_idle_limit(&self, bytes: u64) {
        self.pool.set_limit(bytes);
    }
    /// Free every idle pooled buffer.
    pub fn clear_pool(&self) {
        self.pool.clear();
    }
    /// Time every dispatch on the device with timestamp queries (for profiling) and add the times to the
    /// profile table as `gpu <entry point>`. Returns false, changing nothing, when the adapter has no
    /// timestamp queries; then the caller should time ops on the host with [`Self::synchronize`].
    pub fn enable_timestamps(&self, on: bool) -> Result<bool> {
        self.flush()?;
        if !on {
            *lock(&self.timing) = None;
            return Ok(true);
        }
        if !self.device.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
            return Ok(false);
        }
        let t = self.scoped(
            || "creating the timestamp query set".to_string(),
            || timing::Timer::new(&self.device, &self.queue, BATCH_MAX as u32),
        )?;
        *lock(&self.timing) = Some(t);
        Ok(true)
    }

    /// Submit and wait after every dispatch (see the field); for profiling on adapters without timestamp
    /// queries. Slows everything down.
    pub fn set_serialize(&self, on: bool) -> Result<()> {
        self.serialize.store(on, std::sync::atomic::Ordering::Relaxed);
        self.synchronize()
    }

    /// Number of compute pipelines built so far (each (shader, entry point) is built once).
    pub fn cached_pipelines(&self) -> usize {
        lock(&self.kernels).len()
    }

    // ---- buffers ----------------------------------------------------------------------------------

    fn check_len(&self, len: usize) -> Result<u64> {
        let bytes = (len as u64).saturating_mul(4);
        let max_binding = self.limits.max_storage_buffer_binding_size;
        if bytes > max_binding {
            return Err(Error::Device(format!(
                "wgpu: a buffer of {len} f32 ({bytes} bytes) exceeds max_storage_buffer_binding_size = {max_binding} \
                 bytes of {}",
                self.name()
            )));
        }
        if bytes > self.limits.max_buffer_size {
            return Err(Error::Device(format!(
                "wgpu: a buffer of {len} f32 ({bytes} bytes) exceeds max_buffer_size = {} bytes of {}",
                self.limits.max_buffer_size,
                self.name()
            )));
        }
        Ok(bytes)
    }

    /// A pooled device buffer of at least `bytes` bytes.
    fn lease(&self, kind: Kind, bytes: u64) -> Result<Lease> {
        let mut class = pool::size_class(bytes);
        if class > self.limits.max_buffer_size {
            // Rounding up to the class would cross the limit: use the exact (4-aligned) size instead.
            class = bytes.div_ceil(4) * 4;
        }
        if let Some(b) = self.pool.take(kind, class) {
            return Ok(Lease::new(b, kind, self.pool.clone()));
        }
        let buffer = self.scoped(
            || format!("creating a {class}-byte {} buffer", kind.label()),
            || {
                self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(kind.label()),
                    size: class,
                    usage: kind.usage(),
                    mapped_at_creation: false,
                })
            },
        )?;
        Ok(Lease::new(buffer, kind, self.pool.clone()))
    }

    /// A buffer of `len` elements whose content is unspecified (recycled memory): for outputs that a
    /// kernel overwrites entirely.
    pub fn alloc(&self, len: usize) -> Result<WgpuBuffer> {
        let bytes = self.check_len(len)?;
        Ok(WgpuBuffer { lease: self.lease(Kind::Storage, bytes)?, len })
    }

    /// A buffer of `len` zeros.
    pub fn zeros(&self, len: usize) -> Result<WgpuBuffer> {
        let buf = self.alloc(len)?;
        if len > 0 {
            let bytes = buf.size_bytes();
            self.record(format!("zeroing a buffer of {len} f32"), |enc| enc.clear_buffer(buf.raw(), 0, Some(bytes)))?;
        }
        Ok(buf)
    }

    /// Copy host data to a new device buffer. The copy is queued; it is complete before any later
    /// dispatch or download runs.
    pub fn upload(&self, data: &[f32]) -> Result<WgpuBuffer> {
        let buf = self.alloc(data.len())?;
        if !data.is_empty() {
            self.scoped(
                || format!("uploading {} f32", data.len()),
                || self.queue.write_buffer(buf.raw(), 0, bytemuck::cast_slice(data)),
            )?;
        }
        Ok(buf)
    }

    /// A device-side copy of `buf` (recorded into the open batch; no host round trip).
    pub fn copy(&self, buf: &WgpuBuffer) -> Result<WgpuBuffer> {
        self.check_owner("copy", buf)?;
        let out = self.alloc(buf.len())?;
        if !buf.is_empty() {
            let bytes = buf.size_bytes();
            self.record(format!("copying a buffer of {} f32", buf.len()), |enc| {
                enc.copy_buffer_to_buffer(buf.raw(), 0, out.raw(), 0, bytes)
            })?;
        }
        Ok(out)
    }

    /// A constant table of u32 on the device, built by `make` the first time `key` is asked for and kept
    /// for the life of the backend (index tables that depend only on a shape: a training run meets the
    /// same few shapes every step). At most 512 tables are kept; beyond that the cache starts over.
    pub fn cached_u32(&self, key: String, make: impl FnOnce() -> Vec<u32>) -> Result<Arc<WgpuBuffer>> {
        if let Some(b) = lock(&self.tables).get(&key) {
            return Ok(b.clone());
        }
        let buf = Arc::new(self.upload_u32(&make())?);
        let mut t = lock(&self.tables);
        if t.len() >= 512 {
            t.clear();
        }
        Ok(t.entry(key).or_insert(buf).clone())
    }

    /// Copy u32 values (indices for gather kernels) to a new buffer; its `len` counts u32 elements, and
    /// shaders bind it as `array<u32>` (a storage buffer is untyped bytes to the device).
    pub fn upload_u32(&self, data: &[u32]) -> Result<WgpuBuffer> {
        let buf = self.alloc(data.len())?;
        if !data.is_empty() {
            self.scoped(
                || format!("uploading {} u32", data.len()),
                || self.queue.write_buffer(buf.raw(), 0, bytemuck::cast_slice(data)),
            )?;
        }
        Ok(buf)
    }

    /// Read a buffer back to the host; waits for all queued work on the device.
    pub fn download(&self, buf: &WgpuBuffer) -> Result<Vec<f32>> {
        self.check_owner("download", buf)?;
        if buf.is_empty() {
            return self.take_uncaptured().map(|_| Vec::new());
        }
        self.flush()?;
        let bytes = buf.size_bytes();
        let staging = self.lease(Kind::Staging, bytes)?;
        self.scoped(
            || format!("copying {} f32 to a staging buffer", buf.len),
            || {
                let mut enc = self.device.create_command_encoder(&Default::default());
                enc.copy_buffer_to_buffer(buf.raw(), 0, staging.buffer(), 0, bytes);
                self.queue.submit([enc.finish()]);
            },
        )?;
        let slice = staging.buffer().slice(0..bytes);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        let mut out = vec![0f32; buf.len];
        let read = (|| {
            // The map callback runs in whichever thread's poll sees the copy complete: with several threads
            // on one device, another thread may have picked it up and not yet run it when our poll
            // returns. So wait for the callback itself, polling again meanwhile.
            let mapped = loop {
                self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| {
                    Error::Device(format!("wgpu: waiting for the device during readback: {e}"))
                })?;
                match rx.recv_timeout(std::time::Duration::from_millis(20)) {
                    Ok(r) => break r,
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                        return Err(Error::Device(
                            "wgpu: the readback mapping was dropped without completing (device lost?)".into(),
                        ));
                    }
                }
            };
            mapped.map_err(|e| Error::Device(format!("wgpu: mapping the readback buffer failed: {e}")))?;
            let view = slice
                .get_mapped_range()
                .map_err(|e| Error::Device(format!("wgpu: reading the mapped readback buffer: {e}")))?;
            // Copy bytes into an f32 Vec rather than casting the view: the mapping's alignment is not
            // guaranteed to suit f32 on every backend.
            bytemuck::cast_slice_mut::<f32, u8>(&mut out).copy_from_slice(&view);
            Ok(())
        })();
        if let Err(e) = read {
            // The staging buffer may be left mapped or pending: never hand it out again.
            staging.discard();
            return Err(e);
        }
        staging.buffer().unmap();
        self.take_uncaptured()?;
        Ok(out)
    }

    /// Wait until all submitted work has finished (for timing; downloads wait on their own).
    pub fn synchronize(&self) -> Result<()> {
        self.flush()?;
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Device(format!("wgpu: waiting for the device: {e}")))?;
        self.take_uncaptured()
    }

    fn check_owner(&self, op: &'static str, buf: &WgpuBuffer) -> Result<()> {
        if Arc::ptr_eq(buf.lease.pool(), &self.pool) {
            Ok(())
        } else {
            Err(Error::Mismatch {
                op,
                msg: format!("buffer belongs to another wgpu device than {}", self.name()),
            })
        }
    }

    // ---- errors -----------------------------------------------------------------------------------

    /// Run `f` inside validation, out-of-memory and internal error scopes; a captured error becomes
    /// `Error::Device` naming what was being done.
    fn scoped<T>(&self, what: impl FnOnce() -> String, f: impl FnOnce() -> T) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let internal = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        // Scopes pop in reverse order of pushing.
        let e_val = pollster::block_on(validation.pop());
        let e_int = pollster::block_on(internal.pop());
        let e_oom = pollster::block_on(oom.pop());
        match e_val.or(e_int).or(e_oom) {
            Some(e) => Err(Error::Device(format!("wgpu: {} on {}: {e}", what(), self.name()))),
            None => Ok(out),
        }
    }

    fn take_uncaptured(&self) -> Result<()> {
        match lock(&self.uncaptured).take() {
            Some(e) => Err(Error::Device(format!("wgpu: error reported by {}: {e}", self.name()))),
            None => Ok(()),
        }
    }

    // ---- pipelines and dispatch -------------------------------------------------------------------

    fn module(&self, shader: &str) -> Result<wgpu::ShaderModule> {
        let mut modules = lock(&self.modules);
        if let Some(m) = modules.get(shader) {
            return Ok(m.clone());
        }
        let (name, source) = shaders::lookup(shader)?;
        let module = self.scoped(
            || format!("compiling shader {name}"),
            || {
                self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(name),
                    source: wgpu::ShaderSource::Wgsl(source.into()),
                })
            },
        )?;
        modules.insert(name, module.clone());
        Ok(module)
    }

    fn kernel(&self, shader: &str, entry: &str) -> Result<Arc<Kernel>> {
        let key = (shader.to_string(), entry.to_string());
        if let Some(k) = lock(&self.kernels).get(&key) {
            return Ok(k.clone());
        }
        // Built outside the cache lock so that a slow pipeline compile does not stall dispatches of other
        // kernels; two threads racing on the same new kernel both build it and one copy wins.
        let module = self.module(shader)?;
        let entries = entry_points(shader)?;
        if !entries.iter().any(|e| e == entry) {
            return Err(Error::msg(format!(
                "wgpu: shader {shader} has no compute entry point `{entry}` (it has: {})",
                entries.join(", ")
            )));
        }
        let label = format!("{shader}:{entry}");
        let kernel = self.scoped(
            || format!("creating the pipeline {label}"),
            || {
                let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(&label),
                    // Derived from the entry point's own bindings, so the layout always matches the WGSL.
                    layout: None,
                    module: &module,
                    entry_point: Some(entry),
                    compilation_options: Default::default(),
                    cache: None,
                });
                let layout = pipeline.get_bind_group_layout(0);
                Kernel { pipeline, layout }
            },
        )?;
        let kernel = Arc::new(kernel);
        Ok(lock(&self.kernels).entry(key).or_insert(kernel).clone())
    }

    /// Split a 1-D count of workgroups into a grid within `max_compute_workgroups_per_dimension` per axis.
    /// Shaders rebuild the linear workgroup index as `(z * ny + y) * nx + x` and skip the tail.
    pub fn grid(&self, workgroups: u64) -> Result<[u32; 3]> {
        let max = self.limits.max_compute_workgroups_per_dimension.max(1) as u64;
        let x = workgroups.min(max);
        let rest = workgroups.div_ceil(x.max(1));
        let y = rest.min(max);
        let z = rest.div_ceil(y.max(1));
        if z > max {
            return Err(Error::Device(format!(
                "wgpu: {workgroups} workgroups exceed max_compute_workgroups_per_dimension^3 ({max}^3) of {}",
                self.name()
            )));
        }
        Ok([x as u32, y as u32, z as u32])
    }

    /// Run one compute dispatch of `entry` from shader file `shader` (a [`SHADER_SOURCES`] name).
    ///
    /// Binding convention (group 0): `buffers[i]` at binding `i`, then, if `params` is not empty, a uniform
    /// buffer holding `params` at binding `buffers.len()`. `params` is the bytes of a `#[repr(C)]` Pod
    /// struct (`bytemuck::bytes_of`) laid out like the shader's uniform struct; it is zero-padded to a
    /// multiple of 16 bytes. `workgroups` is a 1-D count, spread over a 2-D/3-D grid by [`Self::grid`].
    /// The work is recorded into the open batch (submitted by [`Self::flush`], a download, or when the
    /// batch is full), not waited for.
    pub fn dispatch(
        &self,
        shader: &str,
        entry: &str,
        buffers: &[&WgpuBuffer],
        params: &[u8],
        workgroups: u64,
    ) -> Result<()> {
        let bound: Vec<(u32, &WgpuBuffer)> = buffers.iter().enumerate().map(|(i, b)| (i as u32, *b)).collect();
        self.dispatch_at(shader, entry, &bound, buffers.len() as u32, params, workgroups)
    }

    /// [`Self::dispatch`] with explicit binding numbers: for shader files whose entry points use different
    /// subsets of the file's bindings (e.g. pooling, where only max pooling binds the argmax indices).
    pub fn dispatch_at(
        &self,
        shader: &str,
        entry: &str,
        buffers: &[(u32, &WgpuBuffer)],
        uniform_binding: u32,
        params: &[u8],
        workgroups: u64,
    ) -> Result<()> {
        for (_, b) in buffers {
            self.check_owner("dispatch", b)?;
        }
        if workgroups == 0 {
            return Ok(());
        }
        let kernel = self.kernel(shader, entry)?;
        let [x, y, z] = self.grid(workgroups)?;
        let uniform = if params.is_empty() {
            None
        } else {
            let mut padded = params.to_vec();
            padded.resize(params.len().div_ceil(16) * 16, 0);
            let lease = self.lease(Kind::Uniform, padded.len() as u64)?;
            Some((lease, padded))
        };
        let what = format!("dispatching {shader}:{entry} over {workgroups} workgroups ({x}x{y}x{z})");
        // The bind group is built and validated before anything goes into the shared batch: a command
        // with an invalid bind group would invalidate the whole encoder, and with it the commands other
        // threads recorded into the same batch (their outputs would silently keep stale pool data).
        let bind_group = self.scoped(
            || format!("binding the buffers of {shader}:{entry}"),
            || {
                let mut entries: Vec<wgpu::BindGroupEntry> = buffers
                    .iter()
                    .map(|(i, b)| wgpu::BindGroupEntry { binding: *i, resource: b.binding() })
                    .collect();
                if let Some((lease, bytes)) = &uniform {
                    entries.push(wgpu::BindGroupEntry {
                        binding: uniform_binding,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: lease.buffer(),
                            offset: 0,
                            size: NonZeroU64::new(bytes.len() as u64),
                        }),
                    });
                }
                self.device.create_bind_group(&wgpu::BindGroupDescriptor { label: Some(entry), layout: &kernel.layout, entries: &entries })
            },
        )?;
        let timer = lock(&self.timing).as_mut().and_then(|t| t.next_pair(&format!("gpu {entry}")));
        self.record(what, |enc| {
            if let Some((lease, bytes)) = &uniform {
                self.queue.write_buffer(lease.buffer(), 0, bytes);
            }
            let timestamp_writes = timer.as_ref().map(|(set, a, b)| wgpu::ComputePassTimestampWrites {
                query_set: set,
                beginning_of_pass_write_index: Some(*a),
                end_of_pass_write_index: Some(*b),
            });
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(entry), timestamp_writes });
            pass.set_pipeline(&kernel.pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(x, y, z);
        })
    }

    /// Record commands into the open batch (creating it), inside error scopes; submits when the batch is
    /// full.
    fn record(&self, what: String, f: impl FnOnce(&mut wgpu::CommandEncoder)) -> Result<()> {
        let mut b = lock(&self.batch);
        // From here until the submit, freed buffers may still be used by recorded commands.
        self.pool.hold();
        let res = self.scoped(
            || what.clone(),
            || {
                let enc = b.encoder.get_or_insert_with(|| self.device.create_command_encoder(&Default::default()));
                f(enc);
            },
        );
        b.dispatches += 1;
        b.last = what;
        if self.serialize.load(std::sync::atomic::Ordering::Relaxed) && res.is_ok() {
            self.submit_locked(&mut b)?;
            drop(b);
            return self.synchronize();
        }
        if res.is_err() || b.dispatches >= BATCH_MAX {
            let sub = self.submit_locked(&mut b);
            res?;
            return sub;
        }
        res
    }

    /// Submit every recorded command (no wait). Called by downloads and [`Self::synchronize`]; call it
    /// to bound latency when nothing will be read back soon.
    pub fn flush(&self) -> Result<()> {
        let mut b = lock(&self.batch);
        self.submit_locked(&mut b)
    }

    fn submit_locked(&self, b: &mut Batch) -> Result<()> {
        let Some(enc) = b.encoder.take() else {
            self.pool.release();
            return Ok(());
        };
        let n = std::mem::take(&mut b.dispatches);
        let last = std::mem::take(&mut b.last);
        let mut enc = enc;
        let mut timing = lock(&self.timing);
        if let Some(t) = timing.as_ref() {
            t.encode_resolve(&mut enc);
        }
        let res = self.scoped(
            || format!("submitting a batch of {n} commands (the last: {last})"),
            || {
                self.queue.submit([enc.finish()]);
            },
        );
        // Submitted: queue order now protects buffers the batch used, so they may be reused.
        self.pool.release();
        if let Some(t) = timing.as_mut() {
            t.after_submit(&self.device);
        }
        res
    }
}

/// Mesa complains on every run ("XDG_RUNTIME_DIR is invalid") when the variable is unset or names no
/// directory; give the process a private 0700 directory then, as a desktop session would.
fn private_runtime_dir() {
    let ok = std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| std::path::Path::new(&d).is_dir());
    if ok {
        return;
    }
    // One directory shared by this user's runs (not one per process: nothing would remove them).
    let dir = std::env::temp_dir().join("deephide-runtime");
    if std::fs::create_dir_all(&dir).is_ok() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        }
        // SAFETY: set before wgpu and Mesa start their threads; this process's other threads (rayon's
        // workers) never read the environment.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
    }
}
