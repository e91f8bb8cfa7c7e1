//! Per-op timers for `deephide profile`: each primitive op opens a [`scope`] with its FLOP and byte counts;
//! when profiling is on, the time until the scope ends is added to that op's totals. Off (the default),
//! a scope costs one relaxed atomic load.
//!
//! CPU ops are synchronous, so wall time is kernel time. GPU back ends record their own device timings
//! (CUDA events, wgpu timestamp queries) into the same table through [`record`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

static ENABLED: AtomicBool = AtomicBool::new(false);
static TABLE: Mutex<Option<HashMap<&'static str, OpStat>>> = Mutex::new(None);

#[derive(Clone, Debug, Default)]
pub struct OpStat {
    pub name: &'static str,
    pub calls: usize,
    pub seconds: f64,
    pub flops: f64,
    pub bytes: f64,
}

pub fn enable(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Forget everything recorded so far.
pub fn reset() {
    *TABLE.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

/// Add one call's numbers to an op's totals.
pub fn record(name: &'static str, seconds: f64, flops: f64, bytes: f64) {
    let mut t = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    let e = t.get_or_insert_with(HashMap::new).entry(name).or_insert(OpStat { name, ..OpStat::default() });
    e.calls += 1;
    e.seconds += seconds;
    e.flops += flops;
    e.bytes += bytes;
}

/// Everything recorded, most time first.
pub fn snapshot() -> Vec<OpStat> {
    let t = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    let mut v: Vec<OpStat> = t.as_ref().map(|m| m.values().cloned().collect()).unwrap_or_default();
    v.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    v
}

thread_local! {
    /// Device seconds reported by GPU back ends on this thread so far (monotonic).
    static DEVICE_TIME: std::cell::Cell<f64> = const { std::cell::Cell::new(0.0) };
}

/// Called by a GPU back end after timing a kernel (CUDA events): the op whose scope is open on this
/// thread is credited with device time instead of the host's wall time, which for asynchronous launches
/// only measures the launch.
pub fn add_device_time(seconds: f64) {
    DEVICE_TIME.with(|t| t.set(t.get() + seconds));
}

fn device_time() -> f64 {
    DEVICE_TIME.with(|t| t.get())
}

/// Times one op call while alive (when profiling is on).
pub struct Scope {
    name: &'static str,
    start: Instant,
    device_start: f64,
    flops: f64,
    bytes: f64,
}

impl Drop for Scope {
    fn drop(&mut self) {
        let device = device_time() - self.device_start;
        let seconds = if device > 0.0 { device } else { self.start.elapsed().as_secs_f64() };
        record(self.name, seconds, self.flops, self.bytes);
    }
}

/// Open a timing scope for op `name` doing `flops` floating-point operations and moving `bytes` bytes.
#[inline]
pub fn scope(name: &'static str, flops: f64, bytes: f64) -> Option<Scope> {
    is_enabled().then(|| Scope { name, start: Instant::now(), device_start: device_time(), flops, bytes })
}

/// Bytes of `n` elements of a tensor's dtype (for GB/s figures).
pub fn bytes_of(t: &crate::tensor::Tensor, n: usize) -> f64 {
    (n * t.dtype().size_in_bytes()) as f64
}

/// The profile as a table: op, calls, total ms, share, GFLOP/s, GB/s, share of `peak_gflops`.
pub fn format_table(stats: &[OpStat], total_s: f64, peak_gflops: f64) -> String {
    let mut s = format!(
        "{:<22} {:>7} {:>10} {:>7} {:>9} {:>8} {:>8}\n",
        "op", "calls", "total ms", "share", "GFLOP/s", "GB/s", "of peak"
    );
    let covered: f64 = stats.iter().map(|o| o.seconds).sum();
    for o in stats {
        let gf = if o.flops > 0.0 { format!("{:.1}", o.flops / o.seconds / 1e9) } else { "-".into() };
        let gb = if o.bytes > 0.0 { format!("{:.1}", o.bytes / o.seconds / 1e9) } else { "-".into() };
        let pk = if o.flops > 0.0 && peak_gflops > 0.0 { format!("{:.0}%", 100.0 * o.flops / o.seconds / 1e9 / peak_gflops) } else { "-".into() };
        s.push_str(&format!(
            "{:<22} {:>7} {:>10.2} {:>6.1}% {:>9} {:>8} {:>8}\n",
            o.name,
            o.calls,
            o.seconds * 1e3,
            100.0 * o.seconds / total_s.max(1e-12),
            gf,
            gb,
            pk
        ));
    }
    s.push_str(&format!(
        "{:<22} {:>7} {:>10.2} {:>6.1}%   (time outside timed ops: autograd bookkeeping, allocation, data)\n",
        "(other)",
        "",
        (total_s - covered).max(0.0) * 1e3,
        100.0 * (total_s - covered).max(0.0) / total_s.max(1e-12)
    ));
    s
}
