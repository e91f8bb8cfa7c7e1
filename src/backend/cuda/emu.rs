//! The `cuda-emu` device: the CUDA kernels of `kernels/*.cu`, compiled as C++ by g++ against
//! `kernels/emu/cuda_emu.h` and run on the CPU with real threads per block (see that header for what is
//! emulated and what is not). Requires g++ (or `$DEEPHIDE_CXX`) with C++17 at run time.
//!
//! The emulator sits *below* the launch code: ops, the memory pool, launch configurations and kernel
//! arguments go through exactly the code that drives a GPU; only the final `cuLaunchKernel` and the
//! memory copies are replaced. Kernel arguments use the driver's convention (an array of pointers to
//! the values), which the header's `emu::entry` unpacks with the kernel's own parameter types.
//!
//! Global memory is host memory with red zones: every allocation is surrounded by canary floats, and the
//! canaries of every buffer passed to a launch are checked after it, so a kernel writing out of bounds is
//! an error naming the kernel and the argument. Reads out of bounds read the canary, a NaN, which poisons
//! the result the tests compare. Fresh (uninitialised) allocations are filled with NaN for the same
//! reason: a kernel that forgets to write an element shows up as a NaN.

use std::collections::HashMap;
use std::ffi::{CStr, c_char, c_void};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::{Error, Result};

/// The emulation header, compiled into every emulated kernel file.
pub const HEADER: &str = include_str!("../../../kernels/emu/cuda_emu.h");

/// Floats of canary on each side of every allocation.
pub(crate) const RED_ZONE: usize = 64;
/// Canary value: a quiet NaN with a recognisable payload, so out-of-bounds reads poison results.
const CANARY: u32 = 0x7fd1_ead5;
/// Uninitialised memory: a different NaN, so a report can tell "never written" from "read out of bounds".
const UNINIT: u32 = 0x7fc0_0bad;

type EntryFn = unsafe extern "C" fn(*const u32, *const u32, *mut *mut c_void, *mut c_char, usize) -> i32;

#[repr(C)]
struct KernelEntry {
    name: *const c_char,
    entry: Option<EntryFn>,
}

/// Host memory standing in for one device allocation of `cap` floats, with red zones.
pub(crate) struct EmuAlloc {
    base: *mut f32,
    cap: usize,
}

// SAFETY: a plain heap allocation; access is serialised by the backend (one stream).
unsafe impl Send for EmuAlloc {}
unsafe impl Sync for EmuAlloc {}

impl EmuAlloc {
    fn layout(cap: usize) -> std::alloc::Layout {
        std::alloc::Layout::array::<f32>(cap + 2 * RED_ZONE).expect("allocation size checked by the pool")
    }

    pub(crate) fn new(cap: usize) -> Result<EmuAlloc> {
        if cap.checked_add(2 * RED_ZONE).and_then(|n| n.checked_mul(4)).is_none_or(|b| b > isize::MAX as usize) {
            return Err(Error::Device(format!("cuda-emu: cannot allocate {cap} floats")));
        }
        // SAFETY: non-zero size (red zones), layout of f32s.
        let base = unsafe { std::alloc::alloc(Self::layout(cap)) } as *mut f32;
        if base.is_null() {
            return Err(Error::Device(format!("cuda-emu: out of host memory allocating {cap} floats")));
        }
        let a = EmuAlloc { base, cap };
        a.fill(0, RED_ZONE, CANARY);
        a.fill(RED_ZONE + cap, RED_ZONE, CANARY);
        Ok(a)
    }

    fn fill(&self, from: usize, n: usize, bits: u32) {
        // SAFETY: callers stay inside cap + 2 * RED_ZONE.
        unsafe { std::slice::from_raw_parts_mut(self.base.add(from), n) }.fill(f32::from_bits(bits));
    }

    /// The "device pointer": the first float after the front red zone.
    pub(crate) fn ptr(&self) -> *mut f32 {
        // SAFETY: inside the allocation.
        unsafe { self.base.add(RED_ZONE) }
    }

    /// Prepares the allocation for a buffer of `len <= cap` floats: the unused tail becomes red zone,
    /// the contents NaN (uninitialised) or zero.
    pub(crate) fn prepare(&self, len: usize, zero: bool) {
        self.fill(RED_ZONE, len, if zero { 0 } else { UNINIT });
        self.fill(RED_ZONE + len, self.cap - len, CANARY);
    }

    pub(crate) fn write(&self, data: &[f32]) {
        // SAFETY: the pool hands out allocations of at least data.len() floats.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr(), data.len()) }
    }

    pub(crate) fn read(&self, len: usize) -> Vec<f32> {
        // SAFETY: len <= cap.
        unsafe { std::slice::from_raw_parts(self.ptr(), len) }.to_vec()
    }

    pub(crate) fn copy_from(&self, src: &EmuAlloc, len: usize) {
        // SAFETY: both hold at least len floats; distinct allocations never overlap.
        unsafe { std::ptr::copy(src.ptr(), self.ptr(), len) }
    }

    /// Where a canary was overwritten, as (offset relative to the buffer start, in floats), if anywhere.
    pub(crate) fn damaged(&self, len: usize) -> Option<isize> {
        // SAFETY: the whole allocation is readable.
        let all = unsafe { std::slice::from_raw_parts(self.base, self.cap + 2 * RED_ZONE) };
        let front = all[..RED_ZONE].iter().position(|v| v.to_bits() != CANARY);
        if let Some(i) = front {
            return Some(i as isize - RED_ZONE as isize);
        }
        all[RED_ZONE + len..].iter().position(|v| v.to_bits() != CANARY).map(|i| (len + i) as isize)
    }
}

impl Drop for EmuAlloc {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with the same layout.
        unsafe { std::alloc::dealloc(self.base as *mut u8, Self::layout(self.cap)) }
    }
}

/// One kernel file compiled into a shared library.
pub(crate) struct EmuModule {
    // Kept alive for as long as entries may be called.
    _lib: libloading::Library,
    entries: HashMap<String, EntryFn>,
}

/// A kernel of an emulated module, ready to launch.
#[derive(Clone)]
pub(crate) struct EmuKernel {
    module: Arc<EmuModule>,
    entry: EntryFn,
}

/// One emulated launch at a time in the whole process: a library's globals (`gridDim`, `blockDim`, the
/// launch state) and a kernel's `__shared__` statics belong to the running launch, and every backend
/// that loads the same kernel file shares one copy of the library (the loader returns the same handle).
static RUN: Mutex<()> = Mutex::new(());

/// The emulated device: compiles kernel files on first use and runs launches one at a time.
pub(crate) struct Emu {}

impl Emu {
    pub(crate) fn new() -> Result<Emu> {
        compiler_version().map_err(|e| Error::Device(format!("cuda-emu is unavailable: {e}")))?;
        Ok(Emu {})
    }

    pub(crate) fn load_module(&self, file: &str, source: &str) -> Result<Arc<EmuModule>> {
        let lib_path = build(file, source)?;
        // SAFETY: a library we just compiled from our own sources; its initialisers only set up statics.
        let lib = unsafe { libloading::Library::new(&lib_path) }
            .map_err(|e| Error::Device(format!("cuda-emu: loading {}: {e}", lib_path.display())))?;
        let mut entries = HashMap::new();
        // SAFETY: the wrapper defines `deephide_emu_kernels` as a null-terminated KernelEntry array.
        unsafe {
            let table: libloading::Symbol<*const KernelEntry> = lib
                .get(b"deephide_emu_kernels\0")
                .map_err(|e| Error::Device(format!("cuda-emu: {}: no kernel table: {e}", lib_path.display())))?;
            let mut p = *table;
            while !(*p).name.is_null() {
                let name = CStr::from_ptr((*p).name).to_string_lossy().into_owned();
                if let Some(f) = (*p).entry {
                    entries.insert(name, f);
                }
                p = p.add(1);
            }
        }
        Ok(Arc::new(EmuModule { _lib: lib, entries }))
    }

    pub(crate) fn kernel(&self, module: &Arc<EmuModule>, file: &str, name: &str) -> Result<EmuKernel> {
        let entry = *module.entries.get(name).ok_or_else(|| {
            Error::Device(format!("cuda-emu: no extern \"C\" __global__ kernel `{name}` in kernels/{file}"))
        })?;
        Ok(EmuKernel { module: module.clone(), entry })
    }

    /// Runs a whole grid now (the emulated stream is synchronous). `params` follows cuLaunchKernel.
    pub(crate) fn launch(&self, k: &EmuKernel, grid: (u32, u32, u32), block: (u32, u32, u32), params: &mut [*mut c_void]) -> std::result::Result<(), String> {
        let _one_at_a_time = RUN.lock().unwrap_or_else(PoisonError::into_inner);
        let _alive = &k.module;
        let g = [grid.0, grid.1, grid.2];
        let b = [block.0, block.1, block.2];
        let mut err = vec![0 as c_char; 1024];
        // SAFETY: the entry reads exactly the kernel's parameters from `params`, which the launch code
        // built for this kernel's signature; buffers outlive the (synchronous) call.
        let rc = unsafe { (k.entry)(g.as_ptr(), b.as_ptr(), params.as_mut_ptr(), err.as_mut_ptr(), err.len()) };
        if rc == 0 {
            return Ok(());
        }
        // SAFETY: the entry NUL-terminates what it writes (snprintf), and the buffer starts zeroed.
        Err(unsafe { CStr::from_ptr(err.as_ptr()) }.to_string_lossy().into_owned())
    }
}

/// The C++ compiler: `$DEEPHIDE_CXX`, else `g++`.
fn compiler() -> String {
    std::env::var("DEEPHIDE_CXX").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "g++".into())
}

/// The compiler's `--version` first line, or why it cannot be run. Computed once.
pub fn compiler_version() -> std::result::Result<String, String> {
    static V: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    V.get_or_init(|| {
        let cxx = compiler();
        match Command::new(&cxx).arg("--version").output() {
            Ok(o) if o.status.success() => {
                Ok(String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").trim().to_string())
            }
            Ok(o) => Err(format!("`{cxx} --version` failed: {}", String::from_utf8_lossy(&o.stderr).trim())),
            Err(e) => Err(format!(
                "the C++ compiler `{cxx}` cannot be run ({e}); the CUDA emulation compiles kernels/*.cu with it \
                 (install g++, or set DEEPHIDE_CXX)"
            )),
        }
    })
    .clone()
}

/// Flags for the emulation build. -O1: the kernels' arithmetic is cheap next to the thread switches, and
/// it halves compile time against -O2.
const FLAGS: &[&str] = &["-std=c++17", "-O1", "-fPIC", "-shared", "-pthread", "-Wno-unknown-pragmas", "-w"];

/// Names of the `extern "C" __global__` kernels a CUDA source declares, in file order.
pub fn declared_kernels(source: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or("");
        let Some(pos) = code.find("__global__") else { continue };
        if !code[..pos].contains("extern \"C\"") {
            continue;
        }
        let mut rest = code[pos + "__global__".len()..].trim_start();
        rest = rest.strip_prefix("void").unwrap_or(rest).trim_start();
        if let Some(after) = rest.strip_prefix("__launch_bounds__") {
            rest = after.split_once(')').map(|(_, r)| r).unwrap_or("").trim_start();
        }
        let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if !name.is_empty() {
            names.push(name);
        }
    }
    names
}

/// The translation unit g++ compiles: the header, the kernel file unchanged, and the kernel table.
pub fn wrapper_source(file: &str, source: &str) -> String {
    let mut s = String::with_capacity(HEADER.len() + source.len() + 1024);
    s.push_str("#line 1 \"kernels/emu/cuda_emu.h\"\n");
    s.push_str(HEADER);
    s.push_str(&format!("\n#line 1 \"kernels/{file}\"\n"));
    s.push_str(source);
    s.push_str("\n#line 1 \"deephide-emu-kernel-table\"\nextern \"C\" const emu::Kernel deephide_emu_kernels[] = {\n");
    for k in declared_kernels(source) {
        s.push_str(&format!("    {{\"{k}\", &emu::entry<&{k}>}},\n"));
    }
    s.push_str("    {nullptr, nullptr},\n};\n");
    s
}

fn emu_dir() -> PathBuf {
    match super::cache::cache_dir() {
        Some(d) => d.join("emu"),
        None => std::env::temp_dir().join("deephide-cuda-emu"),
    }
}

/// Compiles kernels/`file` for the emulator (or finds it in the on-disk cache); returns the library path.
fn build(file: &str, source: &str) -> Result<PathBuf> {
    let version = compiler_version().map_err(Error::Device)?;
    let wrapper = wrapper_source(file, source);
    let mut parts: Vec<&[u8]> = vec![b"deephide-cuda-emu-v1", wrapper.as_bytes(), version.as_bytes()];
    parts.extend(FLAGS.iter().map(|f| f.as_bytes()));
    let hash = super::cache::fnv1a64(&parts);
    let dir = emu_dir();
    let stem = file.strip_suffix(".cu").unwrap_or(file);
    let lib = dir.join(format!("{stem}-{hash:016x}.so"));
    if lib.exists() {
        return Ok(lib);
    }
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let tag = format!("{}-{:x}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    let cpp = dir.join(format!("{stem}-{hash:016x}.{tag}.cpp"));
    let tmp_lib = dir.join(format!("{stem}-{hash:016x}.{tag}.so.tmp"));
    std::fs::write(&cpp, &wrapper).map_err(|e| Error::io(&cpp, e))?;
    let out = Command::new(compiler()).args(FLAGS).arg("-o").arg(&tmp_lib).arg(&cpp).output();
    let _ = std::fs::remove_file(&cpp);
    let out = out.map_err(|e| Error::Device(format!("cuda-emu: running {}: {e}", compiler())))?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&tmp_lib);
        return Err(Error::msg(format!(
            "cuda-emu: {} could not compile kernels/{file} as C++:\n{}",
            compiler(),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    // Rename into place: concurrent processes see the whole library or none.
    std::fs::rename(&tmp_lib, &lib).map_err(|e| Error::io(&lib, e))?;
    Ok(lib)
}

