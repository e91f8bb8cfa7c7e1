//! `deephide kernels` through the binary: the report covers every kernel for sm_80 and sm_90 with the
//! launch configuration and occupancy, `--check` passes on our kernels, and fails on a kernel that spills.
//! Needs NVRTC (CI installs it; like the other compile tests this FAILS rather than skips without it).
#![cfg(feature = "cuda")]

use std::process::Command;

use deephide::backend::cuda::{KERNEL_SOURCES, emu::declared_kernels, nvrtc};

fn deephide(args: &[&str]) -> (i32, String, String) {
    if let Err(why) = nvrtc::version() {
        panic!("NVRTC is required by `deephide kernels` tests: {why}\nexport LD_LIBRARY_PATH=\"$(scripts/install-nvrtc.sh)\"");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_deephide")).args(args).output().expect("run deephide");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn check_passes_and_reports_every_kernel_for_both_architectures() {
    let (code, out, err) = deephide(&["kernels", "--check"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("check passed"), "{out}");
    for arch in ["sm_80", "sm_90"] {
        assert!(out.contains(&format!("{arch} (NVRTC")), "no {arch} section:\n{out}");
    }
    for (file, src) in KERNEL_SOURCES {
        for k in declared_kernels(src) {
            let lines: Vec<&str> = out.lines().filter(|l| l.split_whitespace().next() == Some(k.as_str())).collect();
            assert_eq!(lines.len(), 2, "{file}: {k} should appear once per architecture:\n{out}");
            for l in lines {
                // Columns: kernel file regs smem spillS spillL block grid blk/SM occ%
                let cols: Vec<&str> = l.split_whitespace().collect();
                assert_eq!(cols.len(), 10, "{l}");
                assert!(cols[2].parse::<u32>().unwrap() > 0, "{l}: no registers?");
                assert_ne!(cols[6], "?", "{l}: no launch configuration");
                let occ: f64 = cols[9].parse().unwrap();
                assert!(occ > 0.0 && occ <= 100.0, "{l}: occupancy {occ}");
                if k.contains("conv") || k.contains("matmul") {
                    assert_eq!((cols[4], cols[5]), ("0", "0"), "{l}: hot kernel spills");
                }
            }
        }
    }
}

#[test]
fn check_fails_on_a_spilling_conv_kernel() {
    let extra = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/conv_spills.cu");
    let (code, out, err) = deephide(&["kernels", "--arch", "sm_90", "--check", "--extra", extra]);
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("check FAILED: conv_spills_f32") && out.contains("spills"), "{out}");
    // Without --check the same report is only information.
    let (code, out, _) = deephide(&["kernels", "--arch", "sm_90", "--extra", extra]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn bad_architecture_is_an_error_not_a_panic() {
    let (code, _, err) = deephide(&["kernels", "--arch", "compute_90"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("sm_90") && !err.contains("panicked"), "{err}");
}
