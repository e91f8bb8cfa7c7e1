//! Stride-1 convolution as a GEMM over shifted views of the zero-padded image (no im2col, no packing of
//! the image): with the output computed in padded-width coordinates q = oh * Wp + ow, tap p = (ci, i, j)
//! reads the padded image at offset ci*Hp*Wp + i*Wp + j + q. So B's row p is the image shifted by a fixed
//! offset, and the micro-kernels of `crate::cpu::gemm::shifted` read it in place. The Wp - Wo extra
//! columns per row (1 in 17 at 16x16 with padding 1, as neighbouring rows share their zero padding; see
//! `padded_hw`) are computed and dropped: far cheaper than unfolding the image nine times.

use rayon::prelude::*;

use super::reference::Geom;
use crate::cpu::gemm::shifted::{self, Shifted};
use crate::cpu::SimdLevel;
use crate::dtype::Float;

/// Depth of one block of taps (keeps an A block and the touched image rows in L1/L2).
const KC: usize = 192;

/// The input of a convolution as channel groups held in separate buffers, in channel order: the dense
/// blocks of the hiding network convolve the concatenation of all earlier feature maps, and reading the
/// groups in place while padding each sample saves writing that concatenation. Each part is
/// (data of all N samples, its channel count).
pub(crate) type Parts<'a, T> = [(&'a [T], usize)];

/// A LeakyReLU's derivative applied to a gradient as it is read: `v * (y > 0 ? 1 : slope)`, with `y` the
/// activation's output (same layout as the gradient). Backward passes fold it into the copies they make
/// anyway (padding, transposing) instead of writing the masked gradient first.
#[derive(Clone, Copy)]
pub(crate) struct Mask<'a, T> {
    pub y: &'a [T],
    pub slope: T,
}

impl<T: Float> Mask<'_, T> {
    #[inline(always)]
    fn apply(&self, v: T, i: usize) -> T {
        if self.y[i] > T::ZERO { v } else { v * self.slope }
    }
}

/// Copy sample `ni` of the channel groups into the zero-padded image `xpad` (channel planes Hp x Wp),
/// through `mask` if given (then there is a single part, the masked gradient).
fn pad_parts<T: Float>(parts: &Parts<'_, T>, ni: usize, g: &Geom, hp: usize, wp: usize, xpad: &mut [T], mask: Option<&Mask<'_, T>>) {
    debug_assert!(mask.is_none() || parts.len() == 1);
    xpad.fill(T::ZERO);
    let plane = g.h * g.w;
    let mut ci = 0;
    for &(data, c) in parts {
        let base = ni * c * plane;
        let xs = &data[base..base + c * plane];
        for cl in 0..c {
            for ih in 0..g.h {
                let dst = (ci + cl) * hp * wp + (ih + g.ph) * wp + g.pw;
                let src = (cl * g.h + ih) * g.w;
                match mask {
                    None => xpad[dst..dst + g.w].copy_from_slice(&xs[src..src + g.w]),
                    Some(m) => {
                        for (t, d) in xpad[dst..dst + g.w].iter_mut().enumerate() {
                            *d = m.apply(xs[src + t], base + src + t);
                        }
                    }
                }
            }
        }
        ci += c;
    }
}

/// Rows and row length of the padded image. Rows hold `pw` zeros then the W values; the right padding of a
/// row is the left padding of the next one (a stride-1 convolution reads exactly `pw` columns past the
/// right edge), so a row is W + pw long instead of W + 2pw: fewer wasted output columns (1 in 17 rather
/// than 2 in 18 at 16x16). Needs pw <= kw - 1 so that the Wo outputs fit in a row; else rows are W + 2pw.
fn padded_hw(g: &Geom) -> (usize, usize) {
    let wp = if g.pw < g.kw { g.w + g.pw } else { g.w + 2 * g.pw };
    (g.h + 2 * g.ph, wp)
}

/// Raw pointer to the output buffer for threads that write disjoint column ranges.
#[derive(Clone, Copy)]
struct SendPtr<T>(*mut T);
unsafe impl<T> Send for SendPtr<T> {}
unsafe impl<T> Sync for SendPtr<T> {}

struct Plan<T> {
    kern: Shifted<T>,
    hp: usize,
    wp: usize,
    /// Output columns in padded-width coordinates, rounded up to a multiple of NR.
    qr: usize,
    /// Output channels rounded up to a multiple of MR.
    mpad: usize,
    /// Offset of tap p in the padded image.
    offs: Vec<usize>,
    /// The weights packed once: for each block of KC taps, MR-row panels, k-major.
    apack: Vec<T>,
    /// Padded-image length including slack for the last (partial) column panel.
    xlen: usize,
}

fn plan<T: Float>(w: &[T], g: &Geom) -> Plan<T> {
    let kern = shifted::select::<T>(SimdLevel::detect(), g.cout);
    let (mr, nr) = (kern.mr, kern.nr);
    let (hp, wp) = padded_hw(g);
    let k = g.k();
    let q = g.ho * wp;
    let qr = q.div_ceil(nr) * nr;
    let mpad = g.cout.div_ceil(mr) * mr;
    let khw = g.kh * g.kw;
    let offs = (0..k).map(|p| (p / khw) * hp * wp + ((p % khw) / g.kw) * wp + p % g.kw).collect();
    let mut apack = vec![T::ZERO; mpad * k];
    let mut base = 0;
    for pc in (0..k).step_by(KC) {
        let kc = KC.min(k - pc);
        for panel in 0..mpad / mr {
            for p in 0..kc {
                for l in 0..mr {
                    let co = panel * mr + l;
                    if co < g.cout {
                        apack[base + (panel * kc + p) * mr + l] = w[co * k + pc + p];
                    }
                }
            }
        }
        base += mpad * kc;
    }
    // Highest read: the last tap's offset + the last column of the last panel.
    let xlen = g.cin * hp * wp + (qr - q) + g.kw;
    Plan { kern, hp, wp, qr, mpad, offs, apack, xlen }
}

impl<T: Float> Plan<T> {
    /// Columns [j0, j1) (multiples of NR) of C (mpad x qr, pre-filled) += A * shifted(xpad).
    unsafe fn compute(&self, k: usize, xpad: &[T], c: *mut T, j0: usize, j1: usize) {
        let (mr, nr) = (self.kern.mr, self.kern.nr);
        let mut base = 0;
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            for jr in (j0..j1).step_by(nr) {
                for ir in (0..self.mpad).step_by(mr) {
                    // SAFETY: the A panel holds kc * mr values; offs[pc + p] + jr + nr <= xlen for every p
                    // (see `plan`); the C tile is inside mpad x qr.
                    unsafe {
                        (self.kern.f)(
                            kc,
                            self.apack.as_ptr().add(base + ir * kc),
                            self.offs.as_ptr().add(pc),
                            xpad.as_ptr().add(jr),
                            c.add(ir * self.qr + jr),
                            self.qr,
                            true,
                        );
                    }
                }
            }
            base += self.mpad * kc;
        }
    }
}

/// Where a forward convolution writes its output channels: consecutive groups of channels, each in its own
/// (N, channels, Ho, Wo) buffer, either overwritten or added to. The input gradient of a dense-block
/// convolution goes straight into the gradients of the tensors that were concatenated, adding to what
/// their other uses contributed, instead of being split and summed afterwards.
#[derive(Clone, Copy)]
pub(crate) struct OutPart<T> {
    pub ptr: *mut T,
    pub channels: usize,
    pub accumulate: bool,
}
unsafe impl<T> Send for OutPart<T> {}
unsafe impl<T> Sync for OutPart<T> {}

/// Forward convolution for stride 1: x (N, Cin, H, W) given as channel parts, w (Cout, Cin, kh, kw) ->
/// (N, Cout, Ho, Wo), followed by LeakyReLU with `slope` if given (applied while the output tile is
/// copied out of the accumulator, so the activation costs no extra pass over memory).
pub(crate) fn conv2d_stride1<T: Float>(x: &Parts<'_, T>, w: &[T], bias: Option<&[T]>, g: &Geom, slope: Option<T>) -> Vec<T> {
    let mut out = vec![T::ZERO; g.n * g.out_sample()];
    let whole = [OutPart { ptr: out.as_mut_ptr(), channels: g.cout, accumulate: false }];
    // SAFETY: `out` holds N x Cout x Ho x Wo values.
    unsafe { conv2d_stride1_into(x, None, w, bias, g, slope, &whole) };
    out
}

/// [`conv2d_stride1`] writing (or adding) into `outs`, whose channel counts add up to Cout, with the
/// input read through `mask` if given (a single part).
///
/// # Safety
/// Each `outs[j].ptr` must be valid for N x channels_j x Ho x Wo values and not alias the inputs or
/// another part.
pub(crate) unsafe fn conv2d_stride1_into<T: Float>(
    x: &Parts<'_, T>,
    mask: Option<&Mask<'_, T>>,
    w: &[T],
    bias: Option<&[T]>,
    g: &Geom,
    slope: Option<T>,
    outs: &[OutPart<T>],
) {
    debug_assert!(g.sh == 1 && g.sw == 1);
    debug_assert_eq!(outs.iter().map(|o| o.channels).sum::<usize>(), g.cout);
    let pl = plan(w, g);
    let k = g.k();
    let nr = pl.kern.nr;
    let plane = g.ho * g.wo;
    // Output channel co -> (part, channel within the part).
    let route: Vec<(usize, usize)> =
        outs.iter().enumerate().flat_map(|(j, o)| (0..o.channels).map(move |c| (j, c))).collect();
    let threads = rayon::current_num_threads();
    let sample = |ni: usize, split: bool| {
        let mut xpad = vec![T::ZERO; pl.xlen];
        pad_parts(x, ni, g, pl.hp, pl.wp, &mut xpad, mask);
        let mut cbuf = vec![T::ZERO; pl.mpad * pl.qr];
        if let Some(b) = bias {
            for (co, &bv) in b.iter().enumerate() {
                cbuf[co * pl.qr..(co + 1) * pl.qr].fill(bv);
            }
        }
        let cp = SendPtr(cbuf.as_mut_ptr());
        if split {
            // Batch smaller than the thread count: split the columns instead.
            let panels = pl.qr / nr;
            let per = panels.div_ceil(threads) * nr;
            (0..threads).into_par_iter().for_each(|t| {
                let (j0, j1) = (t * per, ((t + 1) * per).min(pl.qr));
                let cp = cp;
                if j0 < j1 {
                    // SAFETY: thread t writes only columns [j0, j1) of cbuf.
                    unsafe { pl.compute(k, &xpad, cp.0, j0, j1) };
                }
            });
        } else {
            // SAFETY: cbuf is mpad x qr.
            unsafe { pl.compute(k, &xpad, cp.0, 0, pl.qr) };
        }
        for (co, &(j, cl)) in route.iter().enumerate() {
            let part = outs[j];
            // SAFETY: sample ni's channel cl of part j, inside the buffer the caller vouched for; samples
            // are written by one task each.
            let o = unsafe { std::slice::from_raw_parts_mut(part.ptr.add((ni * part.channels + cl) * plane), plane) };
            for oh in 0..g.ho {
                let src = co * pl.qr + oh * pl.wp;
                let (d, c) = (&mut o[oh * g.wo..(oh + 1) * g.wo], &cbuf[src..src + g.wo]);
                match (slope, part.accumulate) {
                    (None, false) => d.copy_from_slice(c),
                    (None, true) => {
                        for (d, &v) in d.iter_mut().zip(c) {
                            *d += v;
                        }
                    }
                    (Some(a), false) => {
                        for (d, &v) in d.iter_mut().zip(c) {
                            *d = if v > T::ZERO { v } else { v * a };
                        }
                    }
                    (Some(a), true) => {
                        for (d, &v) in d.iter_mut().zip(c) {
                            *d += if v > T::ZERO { v } else { v * a };
                        }
                    }
                }
            }
        }
    };
    if g.n >= threads {
        (0..g.n).into_par_iter().for_each(|ni| sample(ni, false));
    } else {
        (0..g.n).for_each(|ni| sample(ni, true));
    }
}

/// Weight gradient for stride 1: dW^T (taps, Cout) = sum_n im2col(x_n) (taps, Q) * dy_n^T (Q, Cout).
///
/// With positions in padded-width coordinates q = oh * Wp + ow, row p (tap (ci, i, j)) of im2col is the
/// padded image shifted by ci*Hp*Wp + i*Wp + j, so the shifted-A micro-kernels read it in place; dy_n^T is
/// laid out once per sample (zero in the dropped columns and the padded output channels). Samples are
/// summed in fixed groups so the result does not depend on the thread count.
///
/// `dy` is read through `mask` if given; with `want_bias` the per-channel sums of the (masked) dy, the
/// bias gradient, come out of the same pass.
pub(crate) fn conv2d_weight_grad_stride1<T: Float>(
    x: &Parts<'_, T>,
    dy: &[T],
    g: &Geom,
    mask: Option<&Mask<'_, T>>,
    want_bias: bool,
) -> (Vec<T>, Option<Vec<T>>) {
    debug_assert!(g.sh == 1 && g.sw == 1);
    const GROUPS: usize = 8;
    let kern = shifted::select_a::<T>(SimdLevel::detect(), g.cout);
    let (mr, nr) = (kern.mr, kern.nr);
    let (hp, wp) = padded_hw(g);
    let k = g.k();
    let kpad = k.div_ceil(mr) * mr;
    let coutp = g.cout.div_ceil(nr) * nr;
    let q = g.ho * wp;
    let khw = g.kh * g.kw;
    // Offsets of every tap; the rows that pad K to a multiple of MR read tap 0 and are dropped.
    let offs: Vec<usize> = (0..kpad)
        .map(|p| if p < k { (p / khw) * hp * wp + ((p % khw) / g.kw) * wp + p % g.kw } else { 0 })
        .collect();
    // Highest read: the last tap's offset + q - 1 = Cin*Hp*Wp + kw - 2.
    let xlen = g.cin * hp * wp + g.kw;
    let per = g.n.div_ceil(g.n.min(GROUPS));
    let groups = g.n.div_ceil(per);
    let threads = rayon::current_num_threads();
    let panels = kpad / mr;
    let group = |gi: usize| -> (Vec<T>, Vec<T>) {
        let mut acc = vec![T::ZERO; kpad * coutp];
        let mut bsum = vec![T::ZERO; if want_bias { g.cout } else { 0 }];
        let mut xpad = vec![T::ZERO; xlen];
        let mut dyt = vec![T::ZERO; q * coutp];
        for ni in gi * per..((gi + 1) * per).min(g.n) {
            pad_parts(x, ni, g, hp, wp, &mut xpad, None);
            let base = ni * g.out_sample();
            let dys = &dy[base..base + g.out_sample()];
            for co in 0..g.cout {
                let mut s = T::ZERO;
                for oh in 0..g.ho {
                    for ow in 0..g.wo {
                        let i = (co * g.ho + oh) * g.wo + ow;
                        let v = match mask {
                            None => dys[i],
                            Some(m) => m.apply(dys[i], base + i),
                        };
                        dyt[(oh * wp + ow) * coutp + co] = v;
                        s += v;
                    }
                }
                if want_bias {
                    bsum[co] += s;
                }
            }
            let run = |pi: usize, rows: &mut [T]| {
                for n0 in (0..coutp).step_by(nr) {
                    // SAFETY: every offs[p] + q <= xlen; dyt holds q rows of coutp; the C tile (mr rows of
                    // `rows`, columns n0..n0+nr) lies inside the accumulator.
                    unsafe {
                        (kern.f)(q, xpad.as_ptr(), offs.as_ptr().add(pi * mr), dyt.as_ptr().add(n0), coutp, rows.as_mut_ptr().add(n0), coutp, true);
                    }
                }
            };
            if groups < threads {
                acc.par_chunks_mut(mr * coutp).enumerate().for_each(|(pi, rows)| run(pi, rows));
            } else {
                acc.chunks_mut(mr * coutp).enumerate().for_each(|(pi, rows)| run(pi, rows));
            }
            let _ = panels;
        }
        (acc, bsum)
    };
    let partials: Vec<(Vec<T>, Vec<T>)> =
        if groups < threads { (0..groups).map(group).collect() } else { (0..groups).into_par_iter().map(group).collect() };
    let mut it = partials.into_iter();
    let (mut sum, mut bias) = it.next().expect("at least one group");
    for (part, bpart) in it {
        for (d, v) in sum.iter_mut().zip(part) {
            *d += v;
        }
        for (d, v) in bias.iter_mut().zip(bpart) {
            *d += v;
        }
    }
    let mut dw = vec![T::ZERO; g.cout * k];
    for co in 0..g.cout {
        for p in 0..k {
            dw[co * k + p] = sum[p * coutp + co];
        }
    }
    (dw, want_bias.then_some(bias))
}
