//! Helpers of the tests that drive the `deephide` binary: run it, read what it printed, make a scratch dir.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// Run the binary with `args` and wait for it.
pub fn bin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deephide")).args(args).output().unwrap()
}

/// Everything it printed, stdout then stderr.
pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A fresh, empty scratch directory for one test (per test file `group`, test `name` and process).
pub fn tmp(group: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("deephide-{group}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A tiny gray data set (`n` random 8x8 images, labels cycling over `classes`) written as IDX train and
/// test splits under `dir`; returns its `idx:` SPEC.
pub fn tiny_idx(dir: &std::path::Path, n: usize, classes: usize) -> String {
    use deephide::data::{self, Dataset, Split};
    let mut rng = deephide::Rng::new(1);
    let images: Vec<u8> = (0..n * 64).map(|_| (rng.uniform() * 255.0) as u8).collect();
    let labels: Vec<usize> = (0..n).map(|i| i % classes).collect();
    let ds = Dataset::new("tiny", images, labels, (1, 8, 8), classes).unwrap();
    let spec = format!("idx:{}", dir.display());
    data::save(&spec, &ds, Split::Train).unwrap();
    data::save(&spec, &ds, Split::Test).unwrap();
    spec
}
