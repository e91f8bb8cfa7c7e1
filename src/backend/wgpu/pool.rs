//! Buffer pool: device buffers are recycled by (kind, size class) instead of being created and destroyed
//! on every op, because buffer creation (and the zeroing wgpu does on first use) dominates small ops.
//!
//! A buffer handed back while a submitted command still uses it is safe to reuse at once: later writes
//! and dispatches are queued after that command on the same queue, and wgpu orders them. A buffer handed
//! back while commands that use it are still only *recorded* (the backend's open batch, not yet
//! submitted) is not: a `queue.write_buffer` into it would run before those commands. So while a batch is
//! open the pool holds returned buffers in quarantine, and releases them when the batch is submitted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// What a pooled buffer is used for; each kind has its own usage flags and free lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// f32 storage buffer holding a tensor (`WgpuBuffer`).
    Storage,
    /// Host-mappable buffer for readback.
    Staging,
    /// Small uniform buffer for op parameters.
    Uniform,
}

impl Kind {
    pub(crate) fn usage(self) -> wgpu::BufferUsages {
        use wgpu::BufferUsages as U;
        match self {
            Kind::Storage => U::STORAGE | U::COPY_SRC | U::COPY_DST,
            Kind::Staging => U::MAP_READ | U::COPY_DST,
            Kind::Uniform => U::UNIFORM | U::COPY_DST,
        }
    }
    pub(crate) fn label(self) -> &'static str {
        match self {
            Kind::Storage => "deephide storage",
            Kind::Staging => "deephide staging",
            Kind::Uniform => "deephide uniform",
        }
    }
}

/// Smallest buffer the pool creates, in bytes.
const MIN_CLASS: u64 = 256;

/// Size class of a request of `bytes` bytes: powers of two split in quarters (…, 1024, 1280, 1536, 1792,
/// 2048, …), so a pooled buffer wastes at most 25% while same-shaped tensors of a training step share
/// classes. Always a multiple of 4 (wgpu's copy and binding granularity).
pub(crate) fn size_class(bytes: u64) -> u64 {
    let b = bytes.max(MIN_CLASS);
    if b.is_power_of_two() {
        return b;
    }
    let base = 1u64 << (63 - b.leading_zeros());
    let step = base / 4;
    b.div_ceil(step) * step
}

/// Counters of the pool, for tests and diagnostics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Requests served by a recycled buffer.
    pub hits: u64,
    /// Requests that created a new device buffer.
    pub misses: u64,
    /// Buffers currently idle in the pool.
    pub idle_buffers: u64,
    /// Bytes held by idle buffers.
    pub idle_bytes: u64,
}

#[derive(Default)]
struct Inner {
    free: HashMap<(Kind, u64), Vec<wgpu::Buffer>>,
    stats: PoolStats,
    /// Idle bytes above which returned buffers are destroyed instead of kept.
    limit: u64,
    /// True while recorded commands are not yet submitted: returned buffers wait in `quarantine`.
    hold: bool,
    quarantine: Vec<(Kind, wgpu::Buffer)>,
}

pub(crate) struct Pool {
    inner: Mutex<Inner>,
}

/// Default cap on idle pooled memory.
pub(crate) const DEFAULT_IDLE_LIMIT: u64 = 1 << 30;

impl Pool {
    pub(crate) fn new(limit: u64) -> Arc<Pool> {
        Arc::new(Pool { inner: Mutex::new(Inner { limit, ..Default::default() }) })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves the free lists consistent (every mutation is a
        // single push/pop), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An idle buffer of exactly this kind and class, if any (counted as a hit), else counts a miss.
    pub(crate) fn take(&self, kind: Kind, class: u64) -> Option<wgpu::Buffer> {
        let mut g = self.lock();
        let found = g.free.get_mut(&(kind, class)).and_then(Vec::pop);
        match &found {
            Some(b) => {
                g.stats.hits += 1;
                g.stats.idle_buffers -= 1;
                g.stats.idle_bytes -= b.size();
            }
            None => g.stats.misses += 1,
        }
        found
    }

    /// Return a buffer; it is destroyed instead when the pool already holds `limit` idle bytes.
    pub(crate) fn give(&self, kind: Kind, buffer: wgpu::Buffer) {
        let mut g = self.lock();
        if g.hold {
            g.quarantine.push((kind, buffer));
            return;
        }
        Self::give_locked(g, kind, buffer);
    }

    /// Start holding returned buffers (commands that may use them are being recorded).
    pub(crate) fn hold(&self) {
        self.lock().hold = true;
    }

    /// The recorded commands were submitted: quarantined buffers become reusable.
    pub(crate) fn release(&self) {
        let held = {
            let mut g = self.lock();
            g.hold = false;
            std::mem::take(&mut g.quarantine)
        };
        for (kind, b) in held {
            Self::give_locked(self.lock(), kind, b);
        }
    }

    fn give_locked(mut g: MutexGuard<'_, Inner>, kind: Kind, buffer: wgpu::Buffer) {
        let size = buffer.size();
        if g.stats.idle_bytes + size > g.limit {
            drop(g);
            buffer.destroy();
            return;
        }
        g.stats.idle_buffers += 1;
        g.stats.idle_bytes += size;
        g.free.entry((kind, size)).or_default().push(buffer);
    }

    pub(crate) fn stats(&self) -> PoolStats {
        self.lock().stats
    }

    pub(crate) fn set_limit(&self, limit: u64) {
        self.lock().limit = limit;
        if self.stats().idle_bytes > limit {
            self.clear();
        }
    }

    /// Destroy every idle buffer.
    pub(crate) fn clear(&self) {
        let free = {
            let mut g = self.lock();
            g.stats.idle_buffers = 0;
            g.stats.idle_bytes = 0;
            std::mem::take(&mut g.free)
        };
        for b in free.into_values().flatten() {
            b.destroy();
        }
    }
}

/// A pooled buffer on loan: goes back to its pool when dropped.
pub(crate) struct Lease {
    buffer: Option<wgpu::Buffer>,
    kind: Kind,
    pool: Arc<Pool>,
}

impl Lease {
    pub(crate) fn new(buffer: wgpu::Buffer, kind: Kind, pool: Arc<Pool>) -> Lease {
        Lease { buffer: Some(buffer), kind, pool }
    }
    pub(crate) fn buffer(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("lease holds its buffer until dropped")
    }
    pub(crate) fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }
    /// Destroy the buffer instead of pooling it (its state is unknown, e.g. left mapped by a failed readback).
    pub(crate) fn discard(mut self) {
        if let Some(b) = self.buffer.take() {
            b.destroy();
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(b) = self.buffer.take() {
            self.pool.give(self.kind, b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::size_class;

    #[test]
    fn classes() {
        assert_eq!(size_class(0), 256);
        assert_eq!(size_class(4), 256);
        assert_eq!(size_class(256), 256);
        assert_eq!(size_class(257), 320);
        assert_eq!(size_class(1025), 1280);
        assert_eq!(size_class(2048), 2048);
        assert_eq!(size_class(4_000_000), 4_194_304);
        for b in [1u64, 300, 777, 12345, 999_999, 123_456_789] {
            let c = size_class(b);
            assert!(
                c >= b && c.is_multiple_of(4) && c as f64 <= (b.max(256) as f64) * 1.25 + 4.0,
                "{b} -> {c}"
            );
        }
    }
}
