//! The fast CPU kernels of conv2d: implicit GEMM. The packed GEMM (`crate::cpu::gemm`) reads the image
//! through an im2col "view" while packing its panels, so no unfolded copy of the input is ever written:
//!
//! - forward, per sample: out (Cout, P) = W (Cout, K) * im2col(x) (K, P), the bias pre-filled into out;
//! - input gradient, stride 1: a forward convolution of dy with the flipped, transposed kernel
//!   (padding k-1-p); other strides: cols = W^T dy, then col2im;
//! - weight gradient: dW (Cout, K) = sum_n dy_n (Cout, P) * im2col(x_n)^T (P, K), summed in fixed groups of
//!   samples so the result does not depend on the thread count.
//!
//! K = Cin*kh*kw is ordered (ci, i, j); P = Ho*Wo is ordered (oh, ow). Generic over the element type: f64
//! runs the same indexing through the portable micro-kernel, so gradient checks exercise this code.

use rayon::prelude::*;

use super::reference::{self, Geom};
use crate::cpu::gemm::{gemm_src, PackSource, Strided};
use crate::cpu::SimdLevel;
use crate::dtype::Float;

/// Samples per partial sum of the weight gradient (fixed, for determinism).
const WGRAD_GROUPS: usize = 8;

/// One sample seen as the (K, P) matrix im2col(x), as the right operand: q = output position, p = tap.
struct Im2col<'a, T> {
    x: &'a [T],
    g: &'a Geom,
}

/// Offsets of output position q in the input: top-left corner (may be negative in the padding).
#[inline(always)]
fn corner(g: &Geom, q: usize) -> (isize, isize) {
    let (oh, ow) = (q / g.wo, q % g.wo);
    ((oh * g.sh) as isize - g.ph as isize, (ow * g.sw) as isize - g.pw as isize)
}

/// Tap p = (ci, i, j) as (plane offset, i, j).
#[inline(always)]
fn tap(g: &Geom, p: usize) -> (usize, isize, isize) {
    let khw = g.kh * g.kw;
    let (ci, r) = (p / khw, p % khw);
    (ci * g.h * g.w, (r / g.kw) as isize, (r % g.kw) as isize)
}

#[inline(always)]
fn read<T: Float>(x: &[T], g: &Geom, plane: usize, ih: isize, iw: isize) -> T {
    if ih >= 0 && iw >= 0 && (ih as usize) < g.h && (iw as usize) < g.w {
        x[plane + ih as usize * g.w + iw as usize]
    } else {
        T::ZERO
    }
}

impl<T: Float> PackSource<T> for Im2col<'_, T> {
    fn pack(&self, dst: &mut [T], q0: usize, lanes: usize, width: usize, p0: usize, kc: usize) {
        let g = self.g;
        debug_assert!(lanes <= 64);
        if g.sw == 1 {
            // Stride 1: the lanes are runs of consecutive columns, one run per output row they touch; each
            // run is a slice copy, except where it crosses the left/right padding.
            let mut runs = [(0usize, 0usize, 0isize, 0isize); 64]; // (lane start, length, ih0, iw0)
            let mut nruns = 0;
            let mut l = 0;
            while l < lanes {
                let q = q0 + l;
                let len = (g.wo - q % g.wo).min(lanes - l);
                let (ch, cw) = corner(g, q);
                runs[nruns] = (l, len, ch, cw);
                nruns += 1;
                l += len;
            }
            for p in 0..kc {
                let (plane, i, j) = tap(g, p0 + p);
                let row = &mut dst[p * width..(p + 1) * width];
                for &(l0, len, ch, cw) in &runs[..nruns] {
                    let (ih, iw) = (ch + i, cw + j);
                    let seg = &mut row[l0..l0 + len];
                    if ih < 0 || ih as usize >= g.h {
                        seg.fill(T::ZERO);
                    } else if iw >= 0 && iw as usize + len <= g.w {
                        let s = plane + ih as usize * g.w + iw as usize;
                        seg.copy_from_slice(&self.x[s..s + len]);
                    } else {
                        let base = plane + ih as usize * g.w;
                        for (t, d) in seg.iter_mut().enumerate() {
                            let c = iw + t as isize;
                            *d = if c >= 0 && (c as usize) < g.w { self.x[base + c as usize] } else { T::ZERO };
                        }
                    }
                }
                row[lanes..].fill(T::ZERO);
            }
            return;
        }
        let mut corners = [(0isize, 0isize); 64];
        for (l, c) in corners[..lanes].iter_mut().enumerate() {
            *c = corner(g, q0 + l);
        }
        for p in 0..kc {
            let (plane, i, j) = tap(g, p0 + p);
            let row = &mut dst[p * width..(p + 1) * width];
            for (d, &(ch, cw)) in row[..lanes].iter_mut().zip(&corners[..lanes]) {
                *d = read(self.x, g, plane, ch + i, cw + j);
            }
            row[lanes..].fill(T::ZERO);
        }
    }
}

/// One sample seen as im2col(x)^T (P, K), as the right operand of the weight gradient: q = tap, p = position.
struct Im2colT<'a, T> {
    x: &'a [T],
    g: &'a Geom,
}

impl<T: Float> PackSource<T> for Im2colT<'_, T> {
    fn pack(&self, dst: &mut [T], q0: usize, lanes: usize, width: usize, p0: usize, kc: usize) {
        let g = self.g;
        let mut taps = [(0usize, 0isize, 0isize); 64];
        for (l, t) in taps[..lanes].iter_mut().enumerate() {
            *t = tap(g, q0 + l);
        }
        for p in 0..kc {
            let (ch, cw) = corner(g, p0 + p);
            let row = &mut dst[p * width..(p + 1) * width];
            for (d, &(plane, i, j)) in row[..lanes].iter_mut().zip(&taps[..lanes]) {
                *d = read(self.x, g, plane, ch + i, cw + j);
            }
            row[lanes..].fill(T::ZERO);
        }
    }
}

/// Run `f(sample index, output chunk)` over the samples: in parallel across samples when there are
/// enough of them (each GEMM then single-threaded), else sequentially with parallel GEMMs.
fn per_sample<T: Float>(out: &mut [T], chunk: usize, n: usize, f: impl Fn(usize, &mut [T], bool) + Sync + Send) {
    if chunk == 0 {
        return;
    }
    if n >= rayon::current_num_threads() {
        out.par_chunks_mut(chunk).enumerate().for_each(|(i, o)| f(i, o, false));
    } else {
        out.chunks_mut(chunk).enumerate().for_each(|(i, o)| f(i, o, true));
    }
}

/// Forward: x (N, Cin, H, W), w (Cout, Cin, kh, kw), optional bias (Cout) -> (N, Cout, Ho, Wo).
pub(crate) fn conv2d<T: Float>(x: &[T], w: &[T], bias: Option<&[T]>, g: &Geom) -> Vec<T> {
    if g.sh == 1 && g.sw == 1 && g.out_sample() > 0 {
        return super::direct::conv2d_stride1(&[(x, g.cin)], w, bias, g, None);
    }
    let (k, p) = (g.k(), g.p());
    let level = SimdLevel::detect();
    let mut out = vec![T::ZERO; g.n * g.out_sample()];
    let wa = Strided { data: w, q_stride: k, p_stride: 1 };
    per_sample(&mut out, g.out_sample(), g.n, |ni, o, par| {
        if let Some(b) = bias {
            for (row, &bv) in o.chunks_mut(p).zip(b) {
                row.fill(bv);
            }
        }
        let src = Im2col { x: &x[ni * g.in_sample()..(ni + 1) * g.in_sample()], g };
        gemm_src(level, par, g.cout, p, k, &wa, &src, o, p, bias.is_some());
    });
    out
}

/// Whether the fused kernels below (input given as channel parts, LeakyReLU epilogue) handle this
/// geometry: the stride-1 direct path. Other geometries are composed from concat, conv2d and leaky_relu.
pub(crate) fn fused_supported(g: &Geom) -> bool {
    g.sh == 1 && g.sw == 1 && g.out_sample() > 0 && g.n > 0
}

/// Forward over an input given as channel parts (a concatenation never materialised), then LeakyReLU
/// with `slope` if given. Only for geometries where [`fused_supported`] holds.
pub(crate) fn conv2d_parts<T: Float>(x: &super::direct::Parts<'_, T>, w: &[T], bias: Option<&[T]>, g: &Geom, slope: Option<T>) -> Vec<T> {
    debug_assert!(fused_supported(g));
    super::direct::conv2d_stride1(x, w, bias, g, slope)
}

/// Weight gradient over an input given as channel parts, with dy read through `mask` if given, and the
/// bias gradient (channel sums of the masked dy) from the same pass if `want_bias`. Only where
/// [`fused_supported`] holds.
pub(crate) fn conv2d_weight_grad_parts<T: Float>(
    x: &super::direct::Parts<'_, T>,
    dy: &[T],
    g: &Geom,
    mask: Option<&super::direct::Mask<'_, T>>,
    want_bias: bool,
) -> (Vec<T>, Option<Vec<T>>) {
    debug_assert!(fused_supported(g));
    if g.cout * g.k() == 0 {
        return (vec![T::ZERO; g.cout * g.k()], want_bias.then(|| vec![T::ZERO; g.cout]));
    }
    super::direct::conv2d_weight_grad_stride1(x, dy, g, mask, want_bias)
}

/// Whether the input gradient is itself a stride-1 convolution (see [`flip_for_input_grad`]).
pub(crate) fn transposed_is_stride1(g: &Geom) -> bool {
    g.sh == 1 && g.sw == 1 && g.ph < g.kh && g.pw < g.kw
}

/// The transposed convolution of a stride-1 conv is a conv with the kernel flipped in space and its
/// channel axes swapped: wf[ci][co][i][j] = w[co][ci][kh-1-i][kw-1-j], padding (k-1-p). Returns wf and
/// the geometry of that convolution (dy as its input, dx as its output).
fn flip_for_input_grad<T: Float>(w: &[T], g: &Geom) -> (Vec<T>, Geom) {
    let (kh, kw) = (g.kh, g.kw);
    let mut wf = vec![T::ZERO; w.len()];
    for co in 0..g.cout {
        for ci in 0..g.cin {
            for i in 0..kh {
                for j in 0..kw {
                    wf[((ci * g.cout + co) * kh + i) * kw + j] = w[((co * g.cin + ci) * kh + kh - 1 - i) * kw + kw - 1 - j];
                }
            }
        }
    }
    let gt = Geom {
        n: g.n,
        cin: g.cout,
        h: g.ho,
        w: g.wo,
        cout: g.cin,
        kh,
        kw,
        sh: 1,
        sw: 1,
        ph: kh - 1 - g.ph,
        pw: kw - 1 - g.pw,
        ho: g.h,
        wo: g.w,
    };
    (wf, gt)
}

/// Input gradient of a stride-1 convolution written (or added) straight into the gradients of the parts
/// its input was concatenated from. Needs [`transposed_is_stride1`].
///
/// # Safety
/// As for [`super::direct::conv2d_stride1_into`], with `outs` covering Cin channels.
pub(crate) unsafe fn conv2d_input_grad_into<T: Float>(
    dy: &[T],
    mask: Option<&super::direct::Mask<'_, T>>,
    w: &[T],
    g: &Geom,
    outs: &[super::direct::OutPart<T>],
) {
    debug_assert!(transposed_is_stride1(g));
    let (wf, gt) = flip_for_input_grad(w, g);
    // SAFETY: forwarded from the caller.
    unsafe { super::direct::conv2d_stride1_into(&[(dy, gt.cin)], mask, &wf, None, &gt, None, outs) };
}

/// The bias gradient of a convolution followed by LeakyReLU (or nothing): per channel, the sum over
/// (N, H, W) of `g * (y > 0 ? 1 : slope)` (or of `g`). Samples are summed in order afterwards, so the
/// result does not depend on the thread count.
pub(crate) fn masked_bias_grad<T: Float>(g: &[T], y: &[T], slope: Option<T>, n: usize, c: usize, plane: usize) -> Vec<T> {
    let per_sample: Vec<Vec<T>> = (0..n)
        .into_par_iter()
        .map(|ni| {
            (0..c)
                .map(|ch| {
                    let r = (ni * c + ch) * plane..(ni * c + ch + 1) * plane;
                    match slope {
                        None => g[r].iter().fold(T::ZERO, |s, &v| s + v),
                        Some(a) => g[r.clone()].iter().zip(&y[r]).fold(T::ZERO, |s, (&v, &yv)| s + if yv > T::ZERO { v } else { v * a }),
                    }
                })
                .collect()
        })
        .collect();
    let mut b = vec![T::ZERO; c];
    for s in &per_sample {
        for (b, &v) in b.iter_mut().zip(s) {
            *b += v;
        }
    }
    b
}

/// Gradient w.r.t. the input: dy (N, Cout, Ho, Wo), w (Cout, Cin, kh, kw) -> (N, Cin, H, W).
pub(crate) fn conv2d_input_grad<T: Float>(dy: &[T], w: &[T], g: &Geom) -> Vec<T> {
    if transposed_is_stride1(g) {
        let (wf, gt) = flip_for_input_grad(w, g);
        return conv2d(dy, &wf, None, &gt);
    }
    // General strides: cols (K, P) = W^T dy_n, then scatter-add into dx with col2im.
    let (k, p) = (g.k(), g.p());
    let level = SimdLevel::detect();
    let mut dx = vec![T::ZERO; g.n * g.in_sample()];
    let wt = Strided { data: w, q_stride: 1, p_stride: k };
    per_sample(&mut dx, g.in_sample(), g.n, |ni, dxs, par| {
        let mut cols = vec![T::ZERO; k * p];
        let dys = Strided { data: &dy[ni * g.out_sample()..(ni + 1) * g.out_sample()], q_stride: 1, p_stride: p };
        gemm_src(level, par, k, p, g.cout, &wt, &dys, &mut cols, p, false);
        reference::col2im(&cols, g, 0, g.ho, dxs, par);
    });
    dx
}

/// Gradient w.r.t. the weight: x (N, Cin, H, W), dy (N, Cout, Ho, Wo) -> (Cout, Cin, kh, kw).
pub(crate) fn conv2d_weight_grad<T: Float>(x: &[T], dy: &[T], g: &Geom) -> Vec<T> {
    let (k, p) = (g.k(), g.p());
    let size = g.cout * k;
    if size == 0 || g.n == 0 {
        return vec![T::ZERO; size];
    }
    if g.sh == 1 && g.sw == 1 && g.p() > 0 {
        return super::direct::conv2d_weight_grad_stride1(&[(x, g.cin)], dy, g, None, false).0;
    }
    let level = SimdLevel::detect();
    let per = g.n.div_ceil(g.n.min(WGRAD_GROUPS));
    let groups = g.n.div_ceil(per);
    let par_inside = groups < rayon::current_num_threads();
    let group = |gi: usize| -> Vec<T> {
        let mut acc = vec![T::ZERO; size];
        for (t, ni) in (gi * per..((gi + 1) * per).min(g.n)).enumerate() {
            let dya = Strided { data: &dy[ni * g.out_sample()..(ni + 1) * g.out_sample()], q_stride: p, p_stride: 1 };
            let src = Im2colT { x: &x[ni * g.in_sample()..(ni + 1) * g.in_sample()], g };
            gemm_src(level, par_inside, g.cout, k, p, &dya, &src, &mut acc, k, t > 0);
        }
        acc
    };
    let partials: Vec<Vec<T>> =
        if par_inside { (0..groups).map(group).collect() } else { (0..groups).into_par_iter().map(group).collect() };
    let mut it = partials.into_iter();
    let mut dw = it.next().expect("at least one group");
    for part in it {
        for (d, v) in dw.iter_mut().zip(part) {
            *d += v;
        }
    }
    dw
}
