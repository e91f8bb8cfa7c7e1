//! Device memory pool. A training step allocates and frees the same few hundred buffer sizes every
//! iteration; `cuMemAlloc`/`cuMemFree` synchronise the device and cost tens of microseconds each, so
//! freed buffers are kept by size class and handed out again.
//!
//! Sizes are rounded up to a class (at most 12.5% larger), so that buffers of nearly equal size share a
//! class. Reuse is safe with one stream: a buffer freed on the host may still be read by queued kernels,
//! but any kernel that reuses it is queued after them on the same stream.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use cudarc::driver::CudaSlice;

use super::emu::EmuAlloc;

/// Past this many cached bytes, freed buffers go back to the driver instead of the pool.
const MAX_CACHED_BYTES: usize = 2 << 30;

/// Device memory of one allocation.
pub(crate) enum RawMem {
    Driver(CudaSlice<f32>),
    Emu(EmuAlloc),
}

/// The capacity (in floats) a request of `n` floats is served with.
pub(crate) fn size_class(n: usize) -> usize {
    if n <= 256 {
        return 256;
    }
    // Granularity: an eighth of the largest power of two not above n.
    let step = 1usize << (usize::BITS - 1 - n.leading_zeros()).saturating_sub(3);
    n.div_ceil(step) * step
}

/// Counters for tests and reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Allocations served by the driver (or the emulator's allocator).
    pub fresh: u64,
    /// Allocations served from the pool.
    pub reused: u64,
    /// Bytes currently held free in the pool.
    pub cached_bytes: usize,
}

#[derive(Default)]
pub(crate) struct Pool {
    free: Mutex<HashMap<usize, Vec<RawMem>>>,
    cached_bytes: AtomicUsize,
    fresh: AtomicU64,
    reused: AtomicU64,
}

impl Pool {
    /// A cached allocation of capacity `cap`, if any.
    pub(crate) fn take(&self, cap: usize) -> Option<RawMem> {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        let mem = free.get_mut(&cap)?.pop()?;
        self.cached_bytes.fetch_sub(cap * 4, Ordering::Relaxed);
        self.reused.fetch_add(1, Ordering::Relaxed);
        Some(mem)
    }

    pub(crate) fn count_fresh(&self) {
        self.fresh.fetch_add(1, Ordering::Relaxed);
    }

    fn put(&self, cap: usize, mem: RawMem) {
        if self.cached_bytes.load(Ordering::Relaxed) + cap * 4 > MAX_CACHED_BYTES {
            return; // dropping `mem` frees it
        }
        self.cached_bytes.fetch_add(cap * 4, Ordering::Relaxed);
        self.free.lock().unwrap_or_else(PoisonError::into_inner).entry(cap).or_default().push(mem);
    }

    /// Frees every cached allocation (after an out-of-memory error, before retrying).
    pub(crate) fn trim(&self) {
        let drained: Vec<RawMem> =
            self.free.lock().unwrap_or_else(PoisonError::into_inner).drain().flat_map(|(_, v)| v).collect();
        self.cached_bytes.store(0, Ordering::Relaxed);
        drop(drained);
    }

    pub(crate) fn stats(&self) -> PoolStats {
        PoolStats {
            fresh: self.fresh.load(Ordering::Relaxed),
            reused: self.reused.load(Ordering::Relaxed),
            cached_bytes: self.cached_bytes.load(Ordering::Relaxed),
        }
    }
}

/// An allocation on loan from the pool; returns to it when dropped.
pub(crate) struct Block {
    pub(crate) mem: Option<RawMem>,
    pub(crate) cap: usize,
    pub(crate) pool: Arc<Pool>,
}

impl Drop for Block {
    fn drop(&mut self) {
        if let Some(mem) = self.mem.take() {
            self.pool.put(self.cap, mem);
        }
    }
}

impl Block {
    pub(crate) fn mem(&self) -> &RawMem {
        self.mem.as_ref().expect("a live block always holds its memory")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_classes_waste_little_and_cover_the_request() {
        for n in [1, 255, 256, 257, 1000, 1024, 1025, 4097, 123_457, 1 << 20, (1 << 20) + 1] {
            let c = size_class(n);
            assert!(c >= n, "{n} -> {c}");
            assert!(n <= 256 || (c - n) * 8 <= n, "{n} -> {c} wastes too much");
        }
        assert_eq!(size_class(1000), size_class(1010));
    }
}
