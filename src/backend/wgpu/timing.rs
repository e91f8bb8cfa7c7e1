//! Device-side kernel times through timestamp queries, for `deephide profile --device wgpu`.
//!
//! Every dispatch of an open batch writes a timestamp at the beginning and end of its compute pass; when
//! the batch is submitted the queries are resolved into a buffer, read back, and each pass's duration is
//! added to the profile table under `gpu <shader entry point>`. Reading back waits for the device, so this
//! is only switched on while profiling.

use std::collections::HashSet;
use std::sync::Mutex;

/// Turn an entry-point label into the `&'static str` the profile table keys on; the set of labels is the
/// crate's fixed set of entry points, so the leaked memory is bounded.
fn intern(label: &str) -> &'static str {
    static SEEN: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut g = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    let set = g.get_or_insert_with(HashSet::new);
    if let Some(s) = set.get(label) {
        return s;
    }
    let s: &'static str = Box::leak(label.to_string().into_boxed_str());
    set.insert(s);
    s
}

pub(crate) struct Timer {
    set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    readback: wgpu::Buffer,
    labels: Vec<&'static str>,
    capacity: u32,
    period_ns: f64,
}

impl Timer {
    /// Room for one batch (`pairs` passes).
    pub(crate) fn new(device: &wgpu::Device, queue: &wgpu::Queue, pairs: u32) -> Timer {
        let count = 2 * pairs;
        let bytes = count as u64 * 8;
        Timer {
            set: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("deephide timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count,
            }),
            resolve: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("deephide timestamp resolve"),
                size: bytes,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
            readback: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("deephide timestamp readback"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            labels: Vec::new(),
            capacity: pairs,
            period_ns: queue.get_timestamp_period() as f64,
        }
    }

    /// Query indices (begin, end) for the next pass, labelled `label`; `None` once the batch's room is
    /// used up (the pass then runs untimed).
    pub(crate) fn next_pair(&mut self, label: &str) -> Option<(wgpu::QuerySet, u32, u32)> {
        let k = self.labels.len() as u32;
        if k >= self.capacity {
            return None;
        }
        self.labels.push(intern(label));
        Some((self.set.clone(), 2 * k, 2 * k + 1))
    }

    /// Before the batch's encoder is finished: resolve its queries into the readback buffer.
    pub(crate) fn encode_resolve(&self, enc: &mut wgpu::CommandEncoder) {
        let n = 2 * self.labels.len() as u32;
        if n == 0 {
            return;
        }
        enc.resolve_query_set(&self.set, 0..n, &self.resolve, 0);
        enc.copy_buffer_to_buffer(&self.resolve, 0, &self.readback, 0, n as u64 * 8);
    }

    /// After the submit: wait, read the timestamps and add each pass's duration to the profile table.
    pub(crate) fn after_submit(&mut self, device: &wgpu::Device) {
        let labels = std::mem::take(&mut self.labels);
        if labels.is_empty() {
            return;
        }
        let bytes = labels.len() as u64 * 16;
        let slice = self.readback.slice(0..bytes);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        // Profiling only: a failed wait or mapping loses this batch's times rather than failing the run.
        if device.poll(wgpu::PollType::wait_indefinitely()).is_err() {
            return;
        }
        let Ok(Ok(())) = rx.recv() else { return };
        if let Ok(view) = slice.get_mapped_range() {
            let mut ticks = vec![0u64; labels.len() * 2];
            bytemuck::cast_slice_mut::<u64, u8>(&mut ticks).copy_from_slice(&view);
            drop(view);
            for (k, label) in labels.iter().enumerate() {
                let dt = ticks[2 * k + 1].saturating_sub(ticks[2 * k]) as f64 * self.period_ns * 1e-9;
                crate::profile::record(label, dt, 0.0, 0.0);
            }
        }
        self.readback.unmap();
    }
}
