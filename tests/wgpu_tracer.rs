//! Tracer tests of the wgpu back end: shader validation (no device needed), then add, add_broadcast and
//! haar_dwt against CPU references on whatever adapter wgpu finds (lavapipe on machines without a GPU).
//! Without an adapter the GPU tests print `skipped: <reason>` and return.
//!
//! Run with `cargo test --release --no-default-features --features wgpu --test wgpu_tracer -- --nocapture`
//! to see the adapter name and timings.

#![cfg(feature = "wgpu")]

use deephide::Error;
use deephide::backend::wgpu::{
    SHADER_SOURCES, WgpuBackend, WgpuBuffer, add_broadcast_wgpu, add_wgpu, haar_dwt_wgpu,
    validate_all_shaders, validate_wgsl,
};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// Smallest element count whose 1-D dispatch (64 threads per workgroup) needs a second grid dimension.
const BEYOND_1D: usize = 65535 * 64 + 1;

/// One backend shared by all tests of this binary (opened once), or the reason there is none.
fn backend() -> Option<Arc<WgpuBackend>> {
    static BE: OnceLock<Result<Arc<WgpuBackend>, String>> = OnceLock::new();
    match BE.get_or_init(|| WgpuBackend::new().map_err(|e| e.to_string())) {
        Ok(be) => Some(be.clone()),
        Err(reason) => {
            println!("skipped: {reason}");
            None
        }
    }
}

macro_rules! backend_or_skip {
    () => {
        match backend() {
            Some(be) => be,
            None => return,
        }
    };
}

/// A fresh backend of the test's own (its counters and batch untouched by the tests running in
/// parallel), or return after saying why there is none.
macro_rules! own_backend_or_skip {
    () => {
        match WgpuBackend::new() {
            Ok(be) => be,
            Err(e) => return println!("skipped: {e}"),
        }
    };
}

/// SplitMix64: deterministic data without a rand dependency.
struct Rng(u64);
impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [-2, 2).
    fn f32(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
    }
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f32()).collect()
    }
}

fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut bad = 0usize;
    let mut first = None;
    for (i, (&g, &r)) in got.iter().zip(want).enumerate() {
        // Written so that a NaN output counts as a mismatch.
        let ok = (g - r).abs() <= 1e-6 + 1e-6 * r.abs();
        if !ok {
            bad += 1;
            first.get_or_insert((i, g, r));
        }
    }
    if let Some((i, g, r)) = first {
        panic!("{what}: {bad} of {} elements differ; first at {i}: got {g}, want {r}", want.len());
    }
}

fn contiguous(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![0; shape.len()];
    let mut acc = 1;
    for d in (0..shape.len()).rev() {
        s[d] = acc;
        acc *= shape[d];
    }
    s
}

/// Strides of an input of shape `in_shape` (same rank, contiguous) read over the output axes: 0 where the
/// input has extent 1.
fn broadcast_strides(in_shape: &[usize]) -> Vec<usize> {
    contiguous(in_shape).iter().zip(in_shape).map(|(&s, &d)| if d == 1 { 0 } else { s }).collect()
}

fn cpu_add_broadcast(a: &[f32], sa: &[usize], b: &[f32], sb: &[usize], out_shape: &[usize]) -> Vec<f32> {
    let n: usize = out_shape.iter().product();
    (0..n)
        .map(|i| {
            let (mut rem, mut ia, mut ib) = (i, 0, 0);
            for d in (0..out_shape.len()).rev() {
                let coord = rem % out_shape[d];
                rem /= out_shape[d];
                ia += coord * sa[d];
                ib += coord * sb[d];
            }
            a[ia] + b[ib]
        })
        .collect()
}

fn cpu_haar(x: &[f32], n: usize, c: usize, h: usize, w: usize) -> Vec<f32> {
    let (h2, w2) = (h / 2, w / 2);
    let mut y = vec![0f32; x.len()];
    for ni in 0..n {
        for ci in 0..c {
            let px = |r: usize, q: usize| x[((ni * c + ci) * h + r) * w + q] / 2.0;
            for r in 0..h2 {
                for q in 0..w2 {
                    let a = px(2 * r, 2 * q);
                    let b = px(2 * r + 1, 2 * q);
                    let cc = px(2 * r, 2 * q + 1);
                    let d = px(2 * r + 1, 2 * q + 1);
                    let bands = [a + b + cc + d, -a - b + cc + d, -a + b - cc + d, a - b - cc + d];
                    for (k, v) in bands.into_iter().enumerate() {
                        y[((ni * 4 * c + k * c + ci) * h2 + r) * w2 + q] = v;
                    }
                }
            }
        }
    }
    y
}

// ---- no device needed ---------------------------------------------------------------------------------

#[test]
fn shaders_validate_with_naga() {
    assert!(SHADER_SOURCES.len() >= 2);
    validate_all_shaders().unwrap_or_else(|e| panic!("{e}"));
    for (name, _) in SHADER_SOURCES {
        println!("naga ok: {name}");
    }
    // A broken source must come back as an error carrying the file name and naga's diagnostic.
    let err = validate_wgsl("broken.wgsl", "fn f( {}").unwrap_err().to_string();
    assert!(err.contains("broken.wgsl") && err.contains("does not parse"), "{err}");
    let err = validate_wgsl("invalid.wgsl", "fn f() -> f32 { return 1u; }").unwrap_err().to_string();
    assert!(err.contains("invalid.wgsl"), "{err}");
}

/// Run only in the child process spawned by `no_adapter_is_an_error`, where the Vulkan loader has no ICD.
#[test]
#[ignore = "run by no_adapter_is_an_error in a child process"]
fn no_adapter_child() {
    if std::env::var_os("DEEPHIDE_WGPU_NO_ADAPTER_CHILD").is_none() {
        println!("not the child process: nothing to do");
        return;
    }
    match WgpuBackend::new() {
        Err(Error::Device(msg)) => println!("NO_ADAPTER_CHILD_OK: {msg}"),
        Err(other) => panic!("expected Error::Device, got {other:?}"),
        Ok(be) => panic!("expected no adapter with VK_ICD_FILENAMES=/nonexistent, got {}", be.name()),
    }
}

#[test]
fn no_adapter_is_an_error() {
    let exe = std::env::current_exe().expect("test binary path");
    let out = std::process::Command::new(exe)
        .args(["--exact", "no_adapter_child", "--ignored", "--nocapture", "--test-threads=1"])
        .env("DEEPHIDE_WGPU_NO_ADAPTER_CHILD", "1")
        .env("VK_ICD_FILENAMES", "/nonexistent")
        .env("WGPU_BACKEND", "vulkan")
        .env_remove("VK_DRIVER_FILES")
        .env_remove("VK_ADD_DRIVER_FILES")
        .env_remove("WGPU_ADAPTER_NAME")
        .output()
        .expect("spawn the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed ({}):\n{stdout}\n{stderr}", out.status);
    let line = stdout
        .lines()
        .find(|l| l.contains("NO_ADAPTER_CHILD_OK"))
        .unwrap_or_else(|| panic!("child did not reach the check:\n{stdout}\n{stderr}"));
    println!("{line}");
}

// ---- on the device ------------------------------------------------------------------------------------

#[test]
fn adapter_and_limits() {
    let be = backend_or_skip!();
    println!(
        "adapter: {} | max_storage_buffer_binding_size {} bytes | max_buffer_size {} | max workgroups/dim {}",
        be.name(),
        be.limits().max_storage_buffer_binding_size,
        be.limits().max_buffer_size,
        be.limits().max_compute_workgroups_per_dimension
    );
    assert!(!be.name().is_empty());
    assert_eq!(be.grid(10).unwrap(), [10, 1, 1]);
    assert_eq!(be.grid(65535).unwrap(), [65535, 1, 1]);
    assert_eq!(be.grid(65536).unwrap(), [65535, 2, 1]);
    let g = be.grid(65535u64 * 65535 + 5).unwrap();
    assert_eq!(g, [65535, 65535, 2]);
}

#[test]
fn upload_download_zeros() {
    let be = backend_or_skip!();
    let mut rng = Rng(1);
    for n in [0, 1, 3, 64, 1001] {
        let x = rng.vec(n);
        let buf = be.upload(&x).unwrap();
        assert_eq!(buf.len(), n);
        assert_eq!(be.download(&buf).unwrap(), x);
        assert_eq!(be.download(&be.zeros(n).unwrap()).unwrap(), vec![0.0; n]);
    }
}

#[test]
fn add_matches_cpu() {
    let be = backend_or_skip!();
    let mut rng = Rng(2);
    for n in [1, 7, 63, 64, 65, 1000, 4097, 99_991, BEYOND_1D + 76] {
        let (a, b) = (rng.vec(n), rng.vec(n));
        let want: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
        let (ga, gb) = (be.upload(&a).unwrap(), be.upload(&b).unwrap());
        let out = add_wgpu(&be, &ga, &gb).unwrap();
        assert_close(&format!("add n={n}"), &be.download(&out).unwrap(), &want);
    }
    // Same buffer on both sides (two read-only bindings of one buffer).
    let a = rng.vec(333);
    let ga = be.upload(&a).unwrap();
    let want: Vec<f32> = a.iter().map(|x| x + x).collect();
    assert_close("add a+a", &be.download(&add_wgpu(&be, &ga, &ga).unwrap()).unwrap(), &want);
    let empty = add_wgpu(&be, &be.upload(&[]).unwrap(), &be.upload(&[]).unwrap()).unwrap();
    assert!(be.download(&empty).unwrap().is_empty());
}

fn check_broadcast(
    be: &WgpuBackend,
    rng: &mut Rng,
    a_shape: &[usize],
    b_shape: &[usize],
    out_shape: &[usize],
) {
    let (sa, sb) = (broadcast_strides(a_shape), broadcast_strides(b_shape));
    let a = rng.vec(a_shape.iter().product());
    let b = rng.vec(b_shape.iter().product());
    let want = cpu_add_broadcast(&a, &sa, &b, &sb, out_shape);
    let (ga, gb) = (be.upload(&a).unwrap(), be.upload(&b).unwrap());
    let out = add_broadcast_wgpu(be, &ga, &sa, &gb, &sb, out_shape).unwrap();
    assert_eq!(out.len(), want.len());
    assert_close(
        &format!("add_broadcast {a_shape:?}+{b_shape:?}->{out_shape:?}"),
        &be.download(&out).unwrap(),
        &want,
    );
}

#[test]
fn add_broadcast_matches_cpu() {
    let be = backend_or_skip!();
    let mut rng = Rng(3);
    check_broadcast(&be, &mut rng, &[2, 3, 4, 5], &[1, 3, 1, 1], &[2, 3, 4, 5]);
    check_broadcast(&be, &mut rng, &[1, 3, 1, 1], &[2, 3, 4, 5], &[2, 3, 4, 5]);
    check_broadcast(&be, &mut rng, &[7], &[1], &[7]);
    check_broadcast(&be, &mut rng, &[3, 1, 5], &[1, 7, 1], &[3, 7, 5]);
    check_broadcast(&be, &mut rng, &[2, 1, 3, 1, 5, 3], &[1, 4, 1, 2, 1, 3], &[2, 4, 3, 2, 5, 3]);
    check_broadcast(&be, &mut rng, &[13, 17], &[13, 17], &[13, 17]); // dense: goes through `add`
    check_broadcast(&be, &mut rng, &[], &[], &[]); // rank 0
    check_broadcast(&be, &mut rng, &[5, BEYOND_1D / 5 + 3], &[5, 1], &[5, BEYOND_1D / 5 + 3]);

    // Non-broadcast, non-contiguous strides: a is a (5,4) view of a (4,5) buffer (transpose).
    let a = rng.vec(20);
    let b = rng.vec(20);
    let (sa, sb) = ([1, 5], [4, 1]);
    let want = cpu_add_broadcast(&a, &sa, &b, &sb, &[5, 4]);
    let out =
        add_broadcast_wgpu(&be, &be.upload(&a).unwrap(), &sa, &be.upload(&b).unwrap(), &sb, &[5, 4]).unwrap();
    assert_close("add_broadcast transposed", &be.download(&out).unwrap(), &want);

    // Zero-size output.
    let e = add_broadcast_wgpu(
        &be,
        &be.upload(&[1.0]).unwrap(),
        &[0, 0],
        &be.upload(&[2.0]).unwrap(),
        &[0, 0],
        &[3, 0],
    )
    .unwrap();
    assert!(e.is_empty());
}

#[test]
fn haar_dwt_matches_cpu() {
    let be = backend_or_skip!();
    let mut rng = Rng(4);
    // Hand-checked block: a=1 (0,0), c=2 (0,1), b=3 (1,0), d=4 (1,1).
    let out = haar_dwt_wgpu(&be, &be.upload(&[1.0, 2.0, 3.0, 4.0]).unwrap(), 1, 1, 2, 2).unwrap();
    assert_eq!(be.download(&out).unwrap(), vec![5.0, 1.0, 2.0, 0.0]);

    for &(n, c, h, w) in
        &[(1, 1, 2, 2), (3, 5, 6, 8), (1, 3, 4, 10), (5, 3, 2, 14), (3, 1, 30, 2), (1, 3, 2402, 2400)]
    {
        let x = rng.vec(n * c * h * w);
        let want = cpu_haar(&x, n, c, h, w);
        let out = haar_dwt_wgpu(&be, &be.upload(&x).unwrap(), n, c, h, w).unwrap();
        if n * c * h * w / 4 >= BEYOND_1D {
            println!(
                "haar_dwt ({n},{c},{h},{w}): {} blocks, grid {:?}",
                n * c * h * w / 4,
                be.grid((n * c * h * w / 4).div_ceil(64) as u64).unwrap()
            );
        }
        assert_close(&format!("haar_dwt ({n},{c},{h},{w})"), &be.download(&out).unwrap(), &want);
    }
}

#[test]
fn errors_are_reported_not_panicked() {
    let be = backend_or_skip!();
    let x = be.upload(&[0.0; 12]).unwrap();
    let e = haar_dwt_wgpu(&be, &x, 1, 1, 3, 4).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }) && e.to_string().contains("even"), "{e}");
    let e = haar_dwt_wgpu(&be, &x, 1, 2, 2, 4).unwrap_err();
    assert!(e.to_string().contains("does not match"), "{e}");

    let y = be.upload(&[0.0; 5]).unwrap();
    let e = add_wgpu(&be, &x, &y).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    let e = add_broadcast_wgpu(&be, &x, &[4, 1], &y, &[1, 1], &[3, 4]).unwrap_err();
    assert!(e.to_string().contains("input b"), "{e}");
    let e = add_broadcast_wgpu(&be, &x, &[0; 7], &y, &[0; 7], &[1; 7]).unwrap_err();
    assert!(e.to_string().contains("rank 7"), "{e}");

    let too_big = be.max_buffer_len() + 1;
    let e = be.alloc(too_big).unwrap_err();
    assert!(
        matches!(e, Error::Device(_)) && e.to_string().contains("max_storage_buffer_binding_size"),
        "{e}"
    );
    println!("over-limit buffer: {e}");

    let e = be.dispatch("nope.wgsl", "add", &[&x], &[], 1).unwrap_err();
    assert!(e.to_string().contains("elementwise.wgsl"), "{e}");
    let e = be.dispatch("elementwise.wgsl", "nope", &[&x], &[], 1).unwrap_err();
    assert!(e.to_string().contains("add_broadcast"), "{e}");
    // Wrong binding count: wgpu's validation error comes back as Error::Device.
    let e = be.dispatch("elementwise.wgsl", "add", &[&x], &[0; 112], 1).unwrap_err();
    assert!(matches!(e, Error::Device(_)), "{e}");
    println!("bad bind group: {e}");
    // The device is still usable afterwards.
    assert_eq!(be.download(&x).unwrap(), vec![0.0; 12]);
}

#[test]
fn pool_and_pipeline_cache_reuse() {
    // A backend of its own, so that the other tests running in parallel do not touch its counters.
    let be = own_backend_or_skip!();
    let mut rng = Rng(5);
    let (a, b) = (rng.vec(10_000), rng.vec(10_000));
    let ga = be.upload(&a).unwrap();
    let gb = be.upload(&b).unwrap();
    let s0 = be.pool_stats();
    for _ in 0..5 {
        let out = add_wgpu(&be, &ga, &gb).unwrap();
        drop(out);
        // Buffers freed while their dispatch is only recorded wait in quarantine until the batch is
        // submitted; after that they are reused.
        be.flush().unwrap();
    }
    let s1 = be.pool_stats();
    println!("pool after 5 adds: {s1:?}");
    // First add creates an output and a uniform buffer; the four later ones reuse both.
    assert!(s1.hits - s0.hits >= 8, "{s0:?} -> {s1:?}");
    assert!(s1.misses - s0.misses <= 2, "{s0:?} -> {s1:?}");
    assert_eq!(be.cached_pipelines(), 1);
    add_broadcast_wgpu(&be, &ga, &[0, 1], &gb, &[1, 0], &[100, 100]).unwrap();
    assert_eq!(be.cached_pipelines(), 2);

    // Buffers of one backend are refused by another.
    if let Some(shared) = backend() {
        let e = add_wgpu(&shared, &ga, &gb).unwrap_err();
        assert!(matches!(e, Error::Mismatch { .. }), "{e}");
    }
    be.clear_pool();
    assert_eq!(be.pool_stats().idle_bytes, 0);
}

#[test]
fn concurrent_readbacks_on_one_device() {
    // Map callbacks run in whichever thread polls: readbacks from several threads must still each get
    // their own data (regression test for a readback that gave up when another thread ran its callback).
    let be = backend_or_skip!();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let be = be.clone();
            s.spawn(move || {
                let mut rng = Rng(100 + t);
                for i in 0..12 {
                    let n = 150_000 + 37 * i;
                    let (a, b) = (rng.vec(n), rng.vec(n));
                    let want: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
                    let out = add_wgpu(&be, &be.upload(&a).unwrap(), &be.upload(&b).unwrap()).unwrap();
                    assert_close(&format!("thread {t} iteration {i}"), &be.download(&out).unwrap(), &want);
                }
            });
        }
    });
}

fn median_ms(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[test]
fn timing_1m_add_with_readback() {
    backend_or_skip!();
    // A fresh backend, so the cold costs (device creation, first pipeline build) are its own.
    let t = Instant::now();
    let be = WgpuBackend::new().unwrap();
    let t_new = t.elapsed().as_secs_f64() * 1e3;
    let (x, y) = (be.upload(&[1.0; 64]).unwrap(), be.upload(&[2.0; 64]).unwrap());
    let t = Instant::now();
    be.download(&add_wgpu(&be, &x, &y).unwrap()).unwrap();
    let t_first = t.elapsed().as_secs_f64() * 1e3;
    println!("cold: WgpuBackend::new {t_new:.1} ms, first add (pipeline build) + readback {t_first:.1} ms");
    let n = 1 << 20;
    let mut rng = Rng(6);
    let (a, b) = (rng.vec(n), rng.vec(n));
    let (mut up, mut add_rb, mut add_only) = (vec![], vec![], vec![]);
    let mut bufs: Option<(WgpuBuffer, WgpuBuffer)> = None;
    for _ in 0..9 {
        let t = Instant::now();
        let ga = be.upload(&a).unwrap();
        let gb = be.upload(&b).unwrap();
        be.synchronize().unwrap();
        up.push(t.elapsed().as_secs_f64() * 1e3);
        bufs = Some((ga, gb));
    }
    let (ga, gb) = bufs.unwrap();
    for _ in 0..9 {
        let t = Instant::now();
        let out = add_wgpu(&be, &ga, &gb).unwrap();
        be.synchronize().unwrap();
        add_only.push(t.elapsed().as_secs_f64() * 1e3);
        drop(out);
        let t = Instant::now();
        let out = add_wgpu(&be, &ga, &gb).unwrap();
        let host = be.download(&out).unwrap();
        add_rb.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(host[n - 1], a[n - 1] + b[n - 1]);
    }
    println!(
        "timing on {}: 1M f32 upload of two inputs {:.2} ms, add {:.2} ms, add + readback {:.2} ms (medians of 9)",
        be.name(),
        median_ms(up),
        median_ms(add_only),
        median_ms(add_rb)
    );
}

#[test]
fn a_failed_dispatch_does_not_lose_the_batch() {
    // Regression test: an invalid bind group used to be recorded into the shared batch, which invalidated
    // the whole encoder: work recorded before it (here, and from other threads in concurrent use) was
    // dropped and its outputs kept stale pool data.
    let be = own_backend_or_skip!();
    let mut rng = Rng(9);
    let (a, b) = (rng.vec(4096), rng.vec(4096));
    let want: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
    let (ga, gb) = (be.upload(&a).unwrap(), be.upload(&b).unwrap());
    let out = add_wgpu(&be, &ga, &gb).unwrap();
    // Recorded, not yet submitted; now a dispatch with the wrong binding count fails validation.
    let e = be.dispatch("elementwise.wgsl", "add", &[&ga], &[0; 112], 1).unwrap_err();
    assert!(matches!(e, Error::Device(_)), "{e}");
    assert_close("add recorded before a failed dispatch", &be.download(&out).unwrap(), &want);
    // And work recorded after it still runs.
    let out2 = add_wgpu(&be, &gb, &ga).unwrap();
    assert_close("add recorded after a failed dispatch", &be.download(&out2).unwrap(), &want);
}
