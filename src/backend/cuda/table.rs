//! The kernel table behind `deephide kernels`: for every kernel of `kernels/*.cu`, what ptxas assigned
//! (registers, shared memory, spills) for an architecture, the launch configuration the op code uses
//! ([`super::LAUNCHES`]) and the occupancy those imply. Needs NVRTC, no GPU.

use super::launch::{GridRule, LAUNCHES, occupancy};
use super::report::{KernelReport, compile_report};
use super::{KERNEL_SOURCES, emu::declared_kernels};
use crate::Result;

/// One kernel for one architecture.
#[derive(Clone, Debug)]
pub struct KernelRow {
    pub file: String,
    pub report: KernelReport,
    /// Threads per block the op code launches with (`None`: the kernel is not in the launch table).
    pub block: Option<(u32, u32, u32)>,
    pub grid: Option<GridRule>,
    /// Resident blocks per SM and the fraction of warp slots they fill.
    pub blocks_per_sm: u32,
    pub occupancy: f64,
}

impl KernelRow {
    /// The hot kernels: matrix products and convolutions, where a spill costs the most.
    pub fn is_hot(&self) -> bool {
        let k = &self.report.kernel;
        k.contains("conv") || k.contains("matmul") || k.contains("gemm")
    }
}

/// Rows for every kernel of every file in [`KERNEL_SOURCES`] plus `extra` (name, source) files, compiled
/// for `arch`.
pub fn kernel_table(arch: &str, extra: &[(String, String)]) -> Result<Vec<KernelRow>> {
    let mut files: Vec<(String, String)> = KERNEL_SOURCES.iter().map(|(f, s)| (f.to_string(), s.to_string())).collect();
    files.extend(extra.iter().cloned());
    let mut rows = Vec::new();
    for (file, source) in &files {
        for report in compile_report(file, source, arch)? {
            let shape = LAUNCHES.iter().find(|s| s.kernel == report.kernel);
            let threads = shape.map(|s| s.block.0 * s.block.1 * s.block.2).unwrap_or(256);
            let (blocks_per_sm, occ) = occupancy(arch, report.registers, report.shared_bytes, threads);
            rows.push(KernelRow { file: file.clone(), block: shape.map(|s| s.block), grid: shape.map(|s| s.grid), blocks_per_sm, occupancy: occ, report });
        }
    }
    Ok(rows)
}

/// What `--check` fails on: spills in hot kernels, and kernels the launch table does not know (their
/// launch configuration, hence occupancy, would be a guess).
pub fn check_problems(rows: &[KernelRow]) -> Vec<String> {
    let mut problems = Vec::new();
    for r in rows {
        if r.is_hot() && (r.report.spill_stores > 0 || r.report.spill_loads > 0) {
            problems.push(format!(
                "{} (kernels/{}, {}) spills: {} B stores, {} B loads",
                r.report.kernel, r.file, r.report.arch, r.report.spill_stores, r.report.spill_loads
            ));
        }
        if r.block.is_none() {
            problems.push(format!("{} (kernels/{}) has no launch configuration in LAUNCHES", r.report.kernel, r.file));
        }
    }
    problems
}

/// Kernels listed in [`LAUNCHES`] that no kernel file declares (a stale entry).
pub fn stale_launch_entries() -> Vec<&'static str> {
    LAUNCHES
        .iter()
        .filter(|s| {
            KERNEL_SOURCES.iter().find(|(f, _)| *f == s.file).is_none_or(|(_, src)| !declared_kernels(src).iter().any(|k| k == s.kernel))
        })
        .map(|s| s.kernel)
        .collect()
}

/// The table as text, one line per kernel.
pub fn format_table(rows: &[KernelRow]) -> String {
    let mut out = format!(
        "{:<26} {:<16} {:>5} {:>7} {:>6} {:>6} {:>10} {:>9} {:>7} {:>6}\n",
        "kernel", "file", "regs", "smem B", "spillS", "spillL", "block", "grid", "blk/SM", "occ %"
    );
    for r in rows {
        let block = r.block.map(|b| if b.1 > 1 { format!("{}x{}", b.0, b.1) } else { b.0.to_string() }).unwrap_or_else(|| "?".into());
        let grid = match r.grid {
            Some(GridRule::Stride) => "stride",
            Some(GridRule::Tiles) => "tiles",
            Some(GridRule::PerOutput) => "per-out",
            None => "?",
        };
        out.push_str(&format!(
            "{:<26} {:<16} {:>5} {:>7} {:>6} {:>6} {:>10} {:>9} {:>7} {:>6.0}\n",
            r.report.kernel, r.file, r.report.registers, r.report.shared_bytes, r.report.spill_stores, r.report.spill_loads, block, grid, r.blocks_per_sm, 100.0 * r.occupancy
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kernel: &str, spills: u64, known: bool) -> KernelRow {
        KernelRow {
            file: "f.cu".into(),
            report: KernelReport { kernel: kernel.into(), arch: "sm_90".into(), registers: 32, spill_stores: spills, spill_loads: spills, ..Default::default() },
            block: known.then_some((256, 1, 1)),
            grid: None,
            blocks_per_sm: 8,
            occupancy: 1.0,
        }
    }

    #[test]
    fn check_flags_hot_spills_and_unknown_kernels_only() {
        assert!(check_problems(&[row("conv2d_f32", 0, true), row("unary_f32", 8, true)]).is_empty());
        assert_eq!(check_problems(&[row("matmul_f32", 8, true)]).len(), 1);
        assert_eq!(check_problems(&[row("mystery", 0, false)]).len(), 1);
    }

    #[test]
    fn launch_table_matches_the_kernel_files() {
        assert_eq!(stale_launch_entries(), Vec::<&str>::new());
        for (file, src) in KERNEL_SOURCES {
            for k in declared_kernels(src) {
                assert!(LAUNCHES.iter().any(|s| s.kernel == k && s.file == *file), "{file}: {k} missing from LAUNCHES");
            }
        }
    }
}
