//! Kernel arguments, launch shapes, and the table of launch configurations the op code uses.
//!
//! Every launch goes through [`super::CudaBackend::launch`] with a list of [`Arg`]s; the arguments are
//! packed the way `cuLaunchKernel` takes them (an array of pointers to the values), which is also what the
//! emulator's entry points unpack, so GPU and emulation share the whole path down to the driver call.
//!
//! [`LAUNCHES`] is the one place where block sizes are chosen: the op code reads them from here, and
//! `deephide kernels` prints them with the occupancy they imply.

use super::CudaBuffer;

/// One kernel argument. Scalars are passed by value; `Pod` is a `#[repr(C)]` struct whose layout mirrors
/// a struct parameter of the kernel (each such struct has a size assertion beside its definition).
pub enum Arg<'a> {
    Buf(&'a CudaBuffer),
    U32(u32),
    I32(i32),
    U64(u64),
    F32(f32),
    Pod(&'a [u8]),
}

/// View a `#[repr(C)]` plain-old-data struct as the bytes of a kernel parameter.
pub fn pod<T: bytemuck::Pod>(v: &T) -> Arg<'_> {
    Arg::Pod(bytemuck::bytes_of(v))
}

/// Grid and block shape of one launch, plus dynamic shared memory (always 0 here: our kernels size
/// their shared arrays statically, which the ptxas report then includes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Launch {
    pub grid: (u32, u32, u32),
    pub block: (u32, u32, u32),
}

impl Launch {
    pub fn threads(&self) -> u32 {
        self.block.0 * self.block.1 * self.block.2
    }
}

/// How the grid of a kernel is sized, for the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GridRule {
    /// Grid-stride loop over the elements, capped at a few waves of the GPU.
    Stride,
    /// One block per output tile.
    Tiles,
    /// One block per output element (or row, or channel): block-wide reductions.
    PerOutput,
}

/// The launch configuration of one kernel: threads per block and how the grid is sized.
#[derive(Clone, Copy, Debug)]
pub struct LaunchShape {
    pub file: &'static str,
    pub kernel: &'static str,
    pub block: (u32, u32, u32),
    pub grid: GridRule,
}

/// 256 threads for element-wise and reduction kernels: a multiple of the warp size under every
/// architecture's limit, and small enough for several resident blocks per SM to hide memory latency.
const B256: (u32, u32, u32) = (256, 1, 1);

macro_rules! shapes {
    ($($file:literal : $kernel:literal => $block:expr, $rule:ident;)*) => {
        &[$(LaunchShape { file: $file, kernel: $kernel, block: $block, grid: GridRule::$rule }),*]
    };
}

/// Every kernel of `kernels/*.cu` with its launch configuration.
pub const LAUNCHES: &[LaunchShape] = shapes! {
    "elementwise.cu": "unary_f32" => B256, Stride;
    "elementwise.cu": "binary_f32" => B256, Stride;
    "elementwise.cu": "binary_broadcast_f32" => B256, Stride;
    "elementwise.cu": "fill_f32" => B256, Stride;
    "haar.cu": "haar_dwt_f32" => B256, Stride;
    "haar.cu": "haar_iwt_f32" => B256, Stride;
    "reduce.cu": "sum_reduce_f32" => B256, PerOutput;
    "reduce.cu": "sum_reduce_short_f32" => B256, Stride;
    "reduce.cu": "max_axis_f32" => B256, Stride;
    "reduce.cu": "max_axis_backward_f32" => B256, Stride;
    "layout.cu": "strided_copy_f32" => B256, Stride;
    // 32x8 threads move a 32x32 tile: each thread copies 4 elements, rows coalesced on both sides.
    "layout.cu": "transpose_f32" => (32, 8, 1), Tiles;
    "layout.cu": "copy2d_f32" => B256, Stride;
    "index.cu": "gather_rows_f32" => B256, Stride;
    "index.cu": "scatter_add_rows_f32" => B256, Stride;
    // GEMM tiles: 256 threads each computing a 4x4 block of a 64x64 output tile (see kernels/gemm.cu).
    "gemm.cu": "matmul_f32" => B256, Tiles;
    "gemm.cu": "conv2d_f32" => B256, Tiles;
    "gemm.cu": "conv2d_input_grad_f32" => B256, Tiles;
    "gemm.cu": "conv2d_weight_grad_f32" => B256, Tiles;
    "pool.cu": "avg_pool2d_f32" => B256, Stride;
    "pool.cu": "avg_pool2d_backward_f32" => B256, Stride;
    "pool.cu": "max_pool2d_f32" => B256, Stride;
    "pool.cu": "max_pool2d_backward_f32" => B256, Stride;
    "batch_norm.cu": "bn_stats_f32" => B256, PerOutput;
    "batch_norm.cu": "bn_normalize_f32" => B256, Stride;
    "batch_norm.cu": "bn_backward_reduce_f32" => B256, PerOutput;
    "batch_norm.cu": "bn_backward_dx_f32" => B256, Stride;
    "softmax.cu": "log_softmax_f32" => B256, PerOutput;
    "softmax.cu": "log_softmax_backward_f32" => B256, PerOutput;
    "optim.cu": "sgd_step_f32" => B256, Stride;
    "optim.cu": "adam_step_f32" => B256, Stride;
};

/// The configuration of `kernel`, from [`LAUNCHES`].
pub fn shape_of(kernel: &str) -> Option<&'static LaunchShape> {
    LAUNCHES.iter().find(|s| s.kernel == kernel)
}

/// Per-SM limits of one architecture, for occupancy (from the CUDA programming guide's tables).
#[derive(Clone, Copy, Debug)]
pub struct SmLimits {
    pub registers: u32,
    pub threads: u32,
    pub blocks: u32,
    pub shared_bytes: u64,
    /// Shared memory the driver reserves per block.
    pub reserved_shared: u64,
}

pub fn sm_limits(arch: &str) -> SmLimits {
    let sm: u32 = arch.trim_start_matches("sm_").trim_end_matches(|c: char| c.is_alphabetic()).parse().unwrap_or(80);
    match sm {
        90.. => SmLimits { registers: 65536, threads: 2048, blocks: 32, shared_bytes: 228 << 10, reserved_shared: 1024 },
        86 | 87 | 89 => SmLimits { registers: 65536, threads: 1536, blocks: 16, shared_bytes: 100 << 10, reserved_shared: 1024 },
        80 => SmLimits { registers: 65536, threads: 2048, blocks: 32, shared_bytes: 164 << 10, reserved_shared: 1024 },
        _ => SmLimits { registers: 65536, threads: 2048, blocks: 32, shared_bytes: 96 << 10, reserved_shared: 0 },
    }
}

/// Resident blocks per SM and the fraction of the SM's warp slots they fill, for a kernel using
/// `registers` per thread and `shared` bytes per block, launched with `threads` per block.
pub fn occupancy(arch: &str, registers: u32, shared: u64, threads: u32) -> (u32, f64) {
    let lim = sm_limits(arch);
    let warps = threads.div_ceil(32).max(1);
    // Registers are allocated per warp in units of 256.
    let regs_per_warp = (registers.max(1) * 32).div_ceil(256) * 256;
    let by_regs = lim.registers / (regs_per_warp * warps);
    let by_threads = lim.threads / (warps * 32);
    let by_smem = if shared == 0 { lim.blocks } else { (lim.shared_bytes / (shared + lim.reserved_shared)) as u32 };
    let blocks = by_regs.min(by_threads).min(by_smem).min(lim.blocks);
    let frac = (blocks * warps) as f64 / (lim.threads / 32) as f64;
    (blocks, frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn occupancy_follows_the_limits() {
        // 256 threads at 32 registers: thread-limited to 8 blocks = full occupancy.
        assert_eq!(occupancy("sm_80", 32, 0, 256), (8, 1.0));
        // 128 registers: 65536 / (4096 * 8 warps) = 2 blocks = 25%.
        assert_eq!(occupancy("sm_80", 128, 0, 256), (2, 0.25));
        // 100 KB of shared memory per block: one block fits in 164 KB.
        assert_eq!(occupancy("sm_80", 32, 100 << 10, 256).0, 1);
    }

    #[test]
    fn every_kernel_has_one_shape() {
        for s in LAUNCHES {
            assert_eq!(LAUNCHES.iter().filter(|t| t.kernel == s.kernel).count(), 1, "{}", s.kernel);
            assert_eq!(s.block.0 * s.block.1 * s.block.2 % 32, 0, "{}: not whole warps", s.kernel);
        }
    }
}
