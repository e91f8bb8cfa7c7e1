//! CPU kernels of 2-D average and max pooling (NCHW), forward and backward. Every (sample, channel) plane
//! is independent, so all kernels are parallel over planes.

use rayon::prelude::*;

use crate::dtype::Float;
use crate::ops::unary::PAR_MIN;

/// Shapes of a pooling (already validated): `nc` planes of `h x w` pooled to `ho x wo`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PoolGeom {
    pub nc: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub ph: usize,
    pub pw: usize,
    pub ho: usize,
    pub wo: usize,
}

impl PoolGeom {
    fn hw(&self) -> usize {
        self.h * self.w
    }
    fn p(&self) -> usize {
        self.ho * self.wo
    }
    /// Input rows of the window of output row `oh` (clipped to the input).
    #[inline]
    fn rows(&self, oh: usize) -> std::ops::Range<usize> {
        window(oh, self.sh, self.ph, self.kh, self.h)
    }
    /// Input columns of the window of output column `ow` (clipped to the input).
    #[inline]
    fn cols(&self, ow: usize) -> std::ops::Range<usize> {
        window(ow, self.sw, self.pw, self.kw, self.w)
    }
    fn parallel(&self) -> bool {
        self.nc > 1 && self.nc * self.hw().max(self.p()) >= PAR_MIN
    }
}

/// The in-bounds part of the window `[o*s - p, o*s - p + k)` of an axis of length `n`.
#[inline]
fn window(o: usize, s: usize, p: usize, k: usize, n: usize) -> std::ops::Range<usize> {
    let start = o * s;
    start.saturating_sub(p)..(start + k).saturating_sub(p).min(n)
}

/// `f(plane_index, chunk)` over `chunk`-sized pieces of `data`, parallel when `par`.
fn for_planes<T: Send>(data: &mut [T], chunk: usize, par: bool, f: impl Fn(usize, &mut [T]) + Send + Sync) {
    if chunk == 0 || data.is_empty() {
        return;
    }
    if par {
        data.par_chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
    } else {
        data.chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
    }
}

/// Average over each window, padding counted as zeros (divisor kh*kw, PyTorch's count_include_pad).
pub(crate) fn avg_pool2d<T: Float>(x: &[T], g: &PoolGeom) -> Vec<T> {
    let denom = T::from_f64((g.kh * g.kw) as f64);
    let mut out = vec![T::ZERO; g.nc * g.p()];
    for_planes(&mut out, g.p(), g.parallel(), |pi, o| {
        let plane = &x[pi * g.hw()..(pi + 1) * g.hw()];
        for (oh, orow) in o.chunks_mut(g.wo).enumerate() {
            for (ow, ov) in orow.iter_mut().enumerate() {
                let mut s = T::ZERO;
                for ih in g.rows(oh) {
                    for iw in g.cols(ow) {
                        s += plane[ih * g.w + iw];
                    }
                }
                *ov = s / denom;
            }
        }
    });
    out
}

/// Gradient of [`avg_pool2d`]: each output gradient, divided by kh*kw, goes to every input of its window.
pub(crate) fn avg_pool2d_backward<T: Float>(gy: &[T], g: &PoolGeom) -> Vec<T> {
    let denom = T::from_f64((g.kh * g.kw) as f64);
    let mut dx = vec![T::ZERO; g.nc * g.hw()];
    for_planes(&mut dx, g.hw(), g.parallel(), |pi, plane| {
        let gp = &gy[pi * g.p()..(pi + 1) * g.p()];
        for oh in 0..g.ho {
            for ow in 0..g.wo {
                let v = gp[oh * g.wo + ow] / denom;
                for ih in g.rows(oh) {
                    for d in &mut plane[ih * g.w + g.cols(ow).start..ih * g.w + g.cols(ow).end] {
                        *d += v;
                    }
                }
            }
        }
    });
    dx
}

/// Maximum over each window (padding never wins: it acts as -inf). Also returns, per output, the index
/// within its input plane (`ih * W + iw`) of the first maximum in row-major window order; a NaN in the
/// window is the maximum (it propagates, as in PyTorch).
pub(crate) fn max_pool2d<T: Float>(x: &[T], g: &PoolGeom) -> (Vec<T>, Vec<usize>) {
    let mut out = vec![T::ZERO; g.nc * g.p()];
    let mut idx = vec![0usize; g.nc * g.p()];
    if out.is_empty() {
        return (out, idx);
    }
    // The victims' 2x2 stride-2 unpadded pooling: fixed window, no clipping, same first-maximum order.
    let two_by_two = (g.kh, g.kw, g.sh, g.sw, g.ph, g.pw) == (2, 2, 2, 2, 0, 0);
    let task = |(pi, (o, ix)): (usize, (&mut [T], &mut [usize]))| {
        let plane = &x[pi * g.hw()..(pi + 1) * g.hw()];
        if two_by_two {
            for oh in 0..g.ho {
                let r0 = 2 * oh * g.w;
                for ow in 0..g.wo {
                    let i0 = r0 + 2 * ow;
                    let mut bi = i0;
                    let mut best = plane[i0];
                    for i in [i0 + 1, i0 + g.w, i0 + g.w + 1] {
                        let v = plane[i];
                        #[allow(clippy::eq_op)]
                        let take = best == best && (v > best || v != v);
                        if take {
                            best = v;
                            bi = i;
                        }
                    }
                    o[oh * g.wo + ow] = best;
                    ix[oh * g.wo + ow] = bi;
                }
            }
            return;
        }
        for oh in 0..g.ho {
            for ow in 0..g.wo {
                let (rows, cols) = (g.rows(oh), g.cols(ow));
                // Validation guarantees every window holds at least one input element.
                let mut bi = rows.start * g.w + cols.start;
                let mut best = plane[bi];
                for ih in rows {
                    for iw in cols.clone() {
                        let v = plane[ih * g.w + iw];
                        #[allow(clippy::eq_op)]
                        let v_nan = v != v;
                        #[allow(clippy::eq_op)]
                        let best_nan = best != best;
                        if !best_nan && (v > best || v_nan) {
                            best = v;
                            bi = ih * g.w + iw;
                        }
                    }
                }
                o[oh * g.wo + ow] = best;
                ix[oh * g.wo + ow] = bi;
            }
        }
    };
    let p = g.p();
    if g.parallel() {
        out.par_chunks_mut(p).zip(idx.par_chunks_mut(p)).enumerate().for_each(task);
    } else {
        out.chunks_mut(p).zip(idx.chunks_mut(p)).enumerate().for_each(task);
    }
    (out, idx)
}

/// Gradient of [`max_pool2d`]: scatter each output gradient to the saved argmax of its window (adding up
/// where windows overlap and share a maximum).
pub(crate) fn max_pool2d_backward<T: Float>(gy: &[T], idx: &[usize], g: &PoolGeom) -> Vec<T> {
    let mut dx = vec![T::ZERO; g.nc * g.hw()];
    for_planes(&mut dx, g.hw(), g.parallel(), |pi, plane| {
        let range = pi * g.p()..(pi + 1) * g.p();
        for (&v, &i) in gy[range.clone()].iter().zip(&idx[range]) {
            plane[i] += v;
        }
    });
    dx
}
