//! Micro-kernels whose right operand is not packed: row p of B is `b + offs[p]`, a shifted view of one
//! buffer. A stride-1 convolution over a zero-padded image is exactly this (row p = tap (ci, i, j) is the
//! image shifted by ci*Hp*Wp + i*Wp + j), so the convolution runs as a GEMM with no im2col and no packing
//! of the image: each B row is NR contiguous floats read straight from the (L2-resident) padded image.

use crate::dtype::Float;

/// C[0..MR, 0..NR] (+)= Apanel (MR x kc, k-major) * B, B[p][0..NR] = b[offs[p]..offs[p] + NR].
pub type ShiftedKernel<T> =
    unsafe fn(kc: usize, a: *const T, offs: *const usize, b: *const T, c: *mut T, ldc: usize, accumulate: bool);

#[derive(Clone, Copy)]
pub struct Shifted<T> {
    pub mr: usize,
    pub nr: usize,
    pub f: ShiftedKernel<T>,
}

pub fn portable<T: Float>() -> Shifted<T> {
    Shifted { mr: 4, nr: 8, f: portable_4x8::<T> }
}

unsafe fn portable_4x8<T: Float>(kc: usize, a: *const T, offs: *const usize, b: *const T, c: *mut T, ldc: usize, accumulate: bool) {
    const MR: usize = 4;
    const NR: usize = 8;
    let mut acc = [[T::ZERO; NR]; MR];
    unsafe {
        for p in 0..kc {
            let ap = std::slice::from_raw_parts(a.add(p * MR), MR);
            let bp = std::slice::from_raw_parts(b.add(*offs.add(p)), NR);
            for i in 0..MR {
                for j in 0..NR {
                    acc[i][j] += ap[i] * bp[j];
                }
            }
        }
        for i in 0..MR {
            for j in 0..NR {
                let dst = c.add(i * ldc + j);
                *dst = if accumulate { *dst + acc[i][j] } else { acc[i][j] };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub mod x86 {
    use std::arch::x86_64::*;

    use super::Shifted;

    pub const AVX512: Shifted<f32> = Shifted { mr: 12, nr: 32, f: avx512_12x32 };
    pub const AVX512_8: Shifted<f32> = Shifted { mr: 8, nr: 32, f: avx512_8x32 };
    pub const AVX2: Shifted<f32> = Shifted { mr: 6, nr: 16, f: avx2_6x16 };
    pub const AVX512_4: Shifted<f32> = Shifted { mr: 4, nr: 64, f: avx512_4x64 };

    unsafe fn avx512_4x64(kc: usize, a: *const f32, offs: *const usize, b: *const f32, c: *mut f32, ldc: usize, acc: bool) {
        unsafe { avx512_4_impl(kc, a, offs, b, c, ldc, acc) }
    }

    /// 4 x 64: for at most 4 output channels (the last conv of a one-channel dense subnet, 132 -> 4), which
    /// would leave half of an 8-row tile as padding; 16 accumulators, 4 image loads and 4 broadcasts per tap.
    #[target_feature(enable = "avx512f")]
    unsafe fn avx512_4_impl(kc: usize, a: *const f32, offs: *const usize, b: *const f32, c: *mut f32, ldc: usize, accumulate: bool) {
        const MR: usize = 4;
        let mut r = [[_mm512_setzero_ps(); 4]; MR];
        unsafe {
            for p in 0..kc {
                let bp = b.add(*offs.add(p));
                let bv = [_mm512_loadu_ps(bp), _mm512_loadu_ps(bp.add(16)), _mm512_loadu_ps(bp.add(32)), _mm512_loadu_ps(bp.add(48))];
                let ap = a.add(p * MR);
                for i in 0..MR {
                    let av = _mm512_set1_ps(*ap.add(i));
                    for j in 0..4 {
                        r[i][j] = _mm512_fmadd_ps(av, bv[j], r[i][j]);
                    }
                }
            }
            for i in 0..MR {
                let cp = c.add(i * ldc);
                for j in 0..4 {
                    if accumulate {
                        r[i][j] = _mm512_add_ps(r[i][j], _mm512_loadu_ps(cp.add(16 * j)));
                    }
                    _mm512_storeu_ps(cp.add(16 * j), r[i][j]);
                }
            }
        }
    }

    unsafe fn avx512_8x32(kc: usize, a: *const f32, offs: *const usize, b: *const f32, c: *mut f32, ldc: usize, acc: bool) {
        unsafe { avx512_8_impl(kc, a, offs, b, c, ldc, acc) }
    }

    /// 8 x 32: for output-channel counts that are multiples of 8 but not 12 (32, 64), so no rows are padding.
    #[target_feature(enable = "avx512f")]
    unsafe fn avx512_8_impl(kc: usize, a: *const f32, offs: *const usize, b: *const f32, c: *mut f32, ldc: usize, accumulate: bool) {
        const MR: usize = 8;
        let mut r = [[_mm512_setzero_ps(); 2]; MR];
        unsafe {
            for p in 0..kc {
                let bp = b.add(*offs.add(p));
                let b0 = _mm512_loadu_ps(bp);
                let b1 = _mm512_loadu_ps(bp.add(16));
                let ap = a.add(p * MR);
                for i in 0..MR {
                    let av = _mm512_set1_ps(*ap.add(i));
                    r[i][0] = _mm512_fmadd_ps(av, b0, r[i][0]);
                    r[i][1] = _mm512_fmadd_ps(av, b1, r[i][1]);
                }
            }
            for i in 0..MR {
                let cp = c.add(i * ldc);
                if accumulate {
                    r[i][0] = _mm512_add_ps(r[i][0], _mm512_loadu_ps(cp));
                    r[i][1] = _mm512_add_ps(r[i][1], _mm512_loadu_ps(cp.add(16)));
                }
                _mm512_storeu_ps(cp, r[i][0]);
                _mm512_storeu_ps(cp.add(16), r[i][1]);
            }
        }
    }

    unsafe fn avx512_12x32(kc: usize, a: *const f32, offs: *const usize, b: *const f32, c: *mut f32, ldc: usize, acc: bool) {
        unsafe { avx512_impl(kc, a, offs, b, c, ldc, acc) }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn avx512_impl(kc: usize, a: *const f32, offs: *const usize, b: *const f32, c: *mut f32, ldc: usize, accumulate: bool) {
        const MR: usize = 12;
        let mut r = [[_mm512_setzero_ps(); 2]; MR];
        unsafe {
            for p in 0..kc {
                let bp = b.add(*offs.add(p));
                let b0 = _mm512_loadu_ps(bp);
                let b1 = _mm512_loadu_ps(bp.add(16));
                let ap = a.add(p * MR);
                for i in 0..MR {
                    let av = _mm512_set1_ps(*ap.add(i));
                    r[i][0] = _mm512_fmadd_ps(av, b0, r[i][0]);
                    r[i][1] = _mm512_fmadd_ps(av, b1, r[i][1]);
                }
            }
            for i in 0..MR {
                let cp = c.add(i * ldc);
                if accumulate {
                    r[i][0] = _mm512_add_ps(r[i][0], _mm512_loadu_ps(cp));
                    r[i][1] = _mm512_add_ps(r[i][1], _mm512_loadu_ps(cp.add(16)));
                }
                _mm512_storeu_ps(cp, r[i][0]);
                _mm512_storeu_ps(cp.add(16), r[i][1]);
            }
        }
    }

    unsafe fn avx2_6x16(kc: usize, a: *const f32, offs: *const usize, b: *const f32, c: *mut f32, ldc: usize, acc: bool) {
        unsafe { avx2_impl(kc, a, offs, b, c, ldc, acc) }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2_impl(kc: usize, a: *const f32, offs: *const usize, b: *const f32, c: *mut f32, ldc: usize, accumulate: bool) {
        const MR: usize = 6;
        let mut r = [[_mm256_setzero_ps(); 2]; MR];
        unsafe {
            for p in 0..kc {
                let bp = b.add(*offs.add(p));
                let b0 = _mm256_loadu_ps(bp);
                let b1 = _mm256_loadu_ps(bp.add(8));
                let ap = a.add(p * MR);
                for i in 0..MR {
                    let av = _mm256_broadcast_ss(&*ap.add(i));
                    r[i][0] = _mm256_fmadd_ps(av, b0, r[i][0]);
                    r[i][1] = _mm256_fmadd_ps(av, b1, r[i][1]);
                }
            }
            for i in 0..MR {
                let cp = c.add(i * ldc);
                if accumulate {
                    r[i][0] = _mm256_add_ps(r[i][0], _mm256_loadu_ps(cp));
                    r[i][1] = _mm256_add_ps(r[i][1], _mm256_loadu_ps(cp.add(8)));
                }
                _mm256_storeu_ps(cp, r[i][0]);
                _mm256_storeu_ps(cp.add(8), r[i][1]);
            }
        }
    }
}

/// The shifted kernel for a SIMD level and element type (f32 gets the vector kernels); `m` (the output rows,
/// Cout) picks the AVX-512 tile height that pads fewer rows.
pub fn select<T: Float>(level: crate::cpu::SimdLevel, m: usize) -> Shifted<T> {
    #[cfg(target_arch = "x86_64")]
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>() {
        let k: Option<Shifted<f32>> = match level {
            crate::cpu::SimdLevel::Avx512 => Some(if m <= 4 {
                x86::AVX512_4
            } else if m.div_ceil(8) * 8 < m.div_ceil(12) * 12 {
                x86::AVX512_8
            } else {
                x86::AVX512
            }),
            crate::cpu::SimdLevel::Avx2 => Some(x86::AVX2),
            crate::cpu::SimdLevel::Portable => None,
        };
        if let Some(k) = k {
            // SAFETY: T is f32 (checked above).
            return unsafe { std::mem::transmute_copy::<Shifted<f32>, Shifted<T>>(&k) };
        }
    }
    let _ = (level, m);
    portable::<T>()
}

/// Micro-kernels whose LEFT operand is read in place: A[i][q] = a[offs[i] + q] (row i of A is the padded
/// image shifted by tap i's offset), B is a plain row-major matrix with row stride `ldb`. The weight
/// gradient of a stride-1 convolution is this product: dW^T (taps x Cout) = im2col (taps x positions) *
/// dy^T (positions x Cout), with no unfolding and no channel padding.
pub type ShiftedAKernel<T> =
    unsafe fn(kc: usize, a: *const T, offs: *const usize, b: *const T, ldb: usize, c: *mut T, ldc: usize, accumulate: bool);

#[derive(Clone, Copy)]
pub struct ShiftedA<T> {
    pub mr: usize,
    pub nr: usize,
    pub f: ShiftedAKernel<T>,
}

pub fn portable_a<T: Float>() -> ShiftedA<T> {
    ShiftedA { mr: 4, nr: 8, f: portable_a_4x8::<T> }
}

unsafe fn portable_a_4x8<T: Float>(kc: usize, a: *const T, offs: *const usize, b: *const T, ldb: usize, c: *mut T, ldc: usize, accumulate: bool) {
    const MR: usize = 4;
    const NR: usize = 8;
    let mut acc = [[T::ZERO; NR]; MR];
    unsafe {
        let rows: [*const T; MR] = std::array::from_fn(|i| a.add(*offs.add(i)));
        for q in 0..kc {
            let bp = std::slice::from_raw_parts(b.add(q * ldb), NR);
            for i in 0..MR {
                let av = *rows[i].add(q);
                for j in 0..NR {
                    acc[i][j] += av * bp[j];
                }
            }
        }
        for i in 0..MR {
            for j in 0..NR {
                let dst = c.add(i * ldc + j);
                *dst = if accumulate { *dst + acc[i][j] } else { acc[i][j] };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub mod x86_a {
    use std::arch::x86_64::*;

    use super::ShiftedA;

    pub const AVX512: ShiftedA<f32> = ShiftedA { mr: 12, nr: 32, f: avx512_12x32 };
    pub const AVX512_NARROW: ShiftedA<f32> = ShiftedA { mr: 12, nr: 16, f: avx512_12x16 };
    pub const AVX2: ShiftedA<f32> = ShiftedA { mr: 6, nr: 16, f: avx2_6x16 };

    unsafe fn avx512_12x32(kc: usize, a: *const f32, offs: *const usize, b: *const f32, ldb: usize, c: *mut f32, ldc: usize, acc: bool) {
        unsafe { avx512_32(kc, a, offs, b, ldb, c, ldc, acc) }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn avx512_32(kc: usize, a: *const f32, offs: *const usize, b: *const f32, ldb: usize, c: *mut f32, ldc: usize, accumulate: bool) {
        const MR: usize = 12;
        let mut r = [[_mm512_setzero_ps(); 2]; MR];
        unsafe {
            let rows: [*const f32; MR] = std::array::from_fn(|i| a.add(*offs.add(i)));
            for q in 0..kc {
                let bp = b.add(q * ldb);
                let b0 = _mm512_loadu_ps(bp);
                let b1 = _mm512_loadu_ps(bp.add(16));
                for i in 0..MR {
                    let av = _mm512_set1_ps(*rows[i].add(q));
                    r[i][0] = _mm512_fmadd_ps(av, b0, r[i][0]);
                    r[i][1] = _mm512_fmadd_ps(av, b1, r[i][1]);
                }
            }
            for i in 0..MR {
                let cp = c.add(i * ldc);
                if accumulate {
                    r[i][0] = _mm512_add_ps(r[i][0], _mm512_loadu_ps(cp));
                    r[i][1] = _mm512_add_ps(r[i][1], _mm512_loadu_ps(cp.add(16)));
                }
                _mm512_storeu_ps(cp, r[i][0]);
                _mm512_storeu_ps(cp.add(16), r[i][1]);
            }
        }
    }

    unsafe fn avx512_12x16(kc: usize, a: *const f32, offs: *const usize, b: *const f32, ldb: usize, c: *mut f32, ldc: usize, acc: bool) {
        unsafe { avx512_16(kc, a, offs, b, ldb, c, ldc, acc) }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn avx512_16(kc: usize, a: *const f32, offs: *const usize, b: *const f32, ldb: usize, c: *mut f32, ldc: usize, accumulate: bool) {
        const MR: usize = 12;
        let mut r = [_mm512_setzero_ps(); MR];
        unsafe {
            let rows: [*const f32; MR] = std::array::from_fn(|i| a.add(*offs.add(i)));
            for q in 0..kc {
                let b0 = _mm512_loadu_ps(b.add(q * ldb));
                for i in 0..MR {
                    r[i] = _mm512_fmadd_ps(_mm512_set1_ps(*rows[i].add(q)), b0, r[i]);
                }
            }
            for i in 0..MR {
                let cp = c.add(i * ldc);
                if accumulate {
                    r[i] = _mm512_add_ps(r[i], _mm512_loadu_ps(cp));
                }
                _mm512_storeu_ps(cp, r[i]);
            }
        }
    }

    unsafe fn avx2_6x16(kc: usize, a: *const f32, offs: *const usize, b: *const f32, ldb: usize, c: *mut f32, ldc: usize, acc: bool) {
        unsafe { avx2_impl(kc, a, offs, b, ldb, c, ldc, acc) }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2_impl(kc: usize, a: *const f32, offs: *const usize, b: *const f32, ldb: usize, c: *mut f32, ldc: usize, accumulate: bool) {
        const MR: usize = 6;
        let mut r = [[_mm256_setzero_ps(); 2]; MR];
        unsafe {
            let rows: [*const f32; MR] = std::array::from_fn(|i| a.add(*offs.add(i)));
            for q in 0..kc {
                let bp = b.add(q * ldb);
                let b0 = _mm256_loadu_ps(bp);
                let b1 = _mm256_loadu_ps(bp.add(8));
                for i in 0..MR {
                    let av = _mm256_broadcast_ss(&*rows[i].add(q));
                    r[i][0] = _mm256_fmadd_ps(av, b0, r[i][0]);
                    r[i][1] = _mm256_fmadd_ps(av, b1, r[i][1]);
                }
            }
            for i in 0..MR {
                let cp = c.add(i * ldc);
                if accumulate {
                    r[i][0] = _mm256_add_ps(r[i][0], _mm256_loadu_ps(cp));
                    r[i][1] = _mm256_add_ps(r[i][1], _mm256_loadu_ps(cp.add(8)));
                }
                _mm256_storeu_ps(cp, r[i][0]);
                _mm256_storeu_ps(cp.add(8), r[i][1]);
            }
        }
    }
}

/// The shifted-A kernel for a SIMD level and element type; `n` (the output columns, Cout) picks the
/// narrower AVX-512 tile when it wastes less.
pub fn select_a<T: Float>(level: crate::cpu::SimdLevel, n: usize) -> ShiftedA<T> {
    #[cfg(target_arch = "x86_64")]
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>() {
        let k: Option<ShiftedA<f32>> = match level {
            crate::cpu::SimdLevel::Avx512 => Some(if n.div_ceil(16) * 16 < n.div_ceil(32) * 32 { x86_a::AVX512_NARROW } else { x86_a::AVX512 }),
            crate::cpu::SimdLevel::Avx2 => Some(x86_a::AVX2),
            crate::cpu::SimdLevel::Portable => None,
        };
        if let Some(k) = k {
            // SAFETY: T is f32 (checked above).
            return unsafe { std::mem::transmute_copy::<ShiftedA<f32>, ShiftedA<T>>(&k) };
        }
    }
    let _ = (level, n);
    portable_a::<T>()
}
