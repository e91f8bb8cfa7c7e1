//! The CPU emulation of CUDA, tested on its own: indices on 3-D grids, warp shuffles (with widths),
//! atomics across blocks, barriers separating shared-memory phases, and the bugs it must report rather
//! than hide (a write past a buffer, threads at different barriers, a shuffle mask missing live lanes).
//! The probe kernels (tests/data/emu_probe.cu) run through the same launch path as the op kernels.
#![cfg(feature = "cuda")]

use std::sync::Arc;

use deephide::backend::cuda::{Arg, CudaBackend, Kernel, Launch};

const SOURCE: &str = include_str!("data/emu_probe.cu");

fn emu() -> Arc<CudaBackend> {
    CudaBackend::new_emulated().unwrap_or_else(|e| panic!("the CUDA emulation needs g++: {e}"))
}

fn kernel(be: &CudaBackend, name: &str) -> Kernel {
    be.emulated_kernel("emu_probe.cu", SOURCE, name).unwrap()
}

#[test]
fn every_thread_of_a_3d_grid_runs_once_with_its_indices() {
    let be = emu();
    let (grid, block) = ((3, 2, 2), (4, 2, 3));
    let (blocks, threads) = (3 * 2 * 2, 4 * 2 * 3);
    let out = be.zeros(blocks * threads).unwrap();
    be.launch_kernel(&kernel(&be, "probe_indices"), Launch { grid, block }, &[Arg::Buf(&out)]).unwrap();
    let got = be.download_u32(&out).unwrap();
    for b in 0..blocks {
        for t in 0..threads {
            assert_eq!(got[b * threads + t], (b * 10000 + t) as u32, "block {b} thread {t}");
        }
    }
}

#[test]
fn shuffles_follow_cuda_semantics() {
    let be = emu();
    let out = be.zeros(64 * 5).unwrap();
    be.launch_kernel(&kernel(&be, "probe_shuffles"), Launch { grid: (1, 1, 1), block: (64, 1, 1) }, &[Arg::Buf(&out)]).unwrap();
    let got = be.download(&out).unwrap();
    for t in 0..64 {
        let lane = (t % 32) as i32;
        let o = &got[5 * t..5 * t + 5];
        // Out-of-range sources return the caller's own value.
        let down = if lane + 3 < 32 { lane + 3 } else { lane };
        let up = if lane >= 2 { lane - 2 } else { lane };
        let seg8 = if lane % 8 + 1 < 8 { lane + 1 } else { lane };
        assert_eq!(o, &[down as f32, up as f32, (lane ^ 5) as f32, (31 - lane) as f32, seg8 as f32], "thread {t}");
    }
}

#[test]
fn atomics_count_every_thread_of_every_block() {
    let be = emu();
    let (count, sum) = (be.zeros(1).unwrap(), be.zeros(1).unwrap());
    be.launch_kernel(&kernel(&be, "probe_atomics"), Launch { grid: (5, 1, 1), block: (96, 1, 1) }, &[Arg::Buf(&count), Arg::Buf(&sum)]).unwrap();
    assert_eq!(be.download_u32(&count).unwrap(), vec![480]);
    // 0 + 1 + ... + 479 is exact in f32.
    assert_eq!(be.download(&sum).unwrap(), vec![(479 * 480 / 2) as f32]);
}

#[test]
fn barriers_separate_shared_memory_phases() {
    let be = emu();
    let x: Vec<f32> = (0..4 * 256).map(|i| (i % 7) as f32).collect();
    let (xb, out) = (be.upload(&x).unwrap(), be.zeros(4).unwrap());
    be.launch_kernel(&kernel(&be, "probe_block_sum"), Launch { grid: (4, 1, 1), block: (256, 1, 1) }, &[Arg::Buf(&xb), Arg::Buf(&out)]).unwrap();
    let want: Vec<f32> = x.chunks(256).map(|c| c.iter().sum()).collect();
    assert_eq!(be.download(&out).unwrap(), want);
}

#[test]
fn a_write_past_the_end_is_reported() {
    let be = emu();
    let y = be.zeros(100).unwrap();
    let err = be
        .launch_kernel(&kernel(&be, "bug_write_past_end"), Launch { grid: (1, 1, 1), block: (128, 1, 1) }, &[Arg::Buf(&y), Arg::I32(100)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("wrote outside argument #0") && err.contains("element 100"), "{err}");
}

#[test]
fn threads_at_different_barriers_are_reported() {
    let be = emu();
    let y = be.zeros(64).unwrap();
    let err = be
        .launch_kernel(&kernel(&be, "bug_divergent_barrier"), Launch { grid: (1, 1, 1), block: (64, 1, 1) }, &[Arg::Buf(&y)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("different __syncthreads"), "{err}");
}

#[test]
fn a_shuffle_mask_missing_live_lanes_is_reported() {
    let be = emu();
    let y = be.zeros(32).unwrap();
    let err = be
        .launch_kernel(&kernel(&be, "bug_shuffle_mask"), Launch { grid: (1, 1, 1), block: (32, 1, 1) }, &[Arg::Buf(&y)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("mask 0x0000ffff"), "{err}");
}

#[test]
fn fresh_buffers_are_nan_so_unwritten_outputs_show() {
    let be = emu();
    let b = be.alloc_uninit(10).unwrap();
    assert!(be.download(&b).unwrap().iter().all(|v| v.is_nan()));
    assert!(be.zeros(10).and_then(|z| be.download(&z)).unwrap().iter().all(|&v| v == 0.0));
}

#[test]
fn the_pool_reuses_freed_buffers() {
    let be = emu();
    let before = be.pool_stats();
    for _ in 0..5 {
        let b = be.upload(&[1.0; 1000]).unwrap();
        drop(b);
    }
    let after = be.pool_stats();
    assert_eq!(after.fresh - before.fresh, 1, "{before:?} -> {after:?}");
    assert_eq!(after.reused - before.reused, 4, "{before:?} -> {after:?}");
}

#[test]
fn invalid_launches_are_errors() {
    let be = emu();
    let out = be.zeros(1).unwrap();
    let k = kernel(&be, "probe_indices");
    assert!(be.launch_kernel(&k, Launch { grid: (1, 1, 1), block: (2048, 1, 1) }, &[Arg::Buf(&out)]).is_err());
    assert!(be.launch_kernel(&k, Launch { grid: (0, 1, 1), block: (32, 1, 1) }, &[Arg::Buf(&out)]).is_err());
    assert!(be.emulated_kernel("emu_probe.cu", SOURCE, "no_such_kernel").is_err());
    // Buffers of another backend are refused before anything runs.
    let other = emu();
    let foreign = other.zeros(1).unwrap();
    assert!(be.launch_kernel(&k, Launch { grid: (1, 1, 1), block: (1, 1, 1) }, &[Arg::Buf(&foreign)]).is_err());
}
