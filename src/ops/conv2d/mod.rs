//! 2-D convolution (cross-correlation, as in PyTorch): NCHW input, OIHW weight, optional bias (Cout),
//! any kernel size, stride `(sh, sw)`, zero padding `(ph, pw)`, dilation 1, one group.
//!
//! Output size: `Ho = (H + 2ph - kh) / sh + 1`, `Wo = (W + 2pw - kw) / sw + 1` (floor).
//!
//! Backward is written with two primitives, public so every backend implements the same three kernels:
//! [`Tensor::conv2d_input_grad`] (the transposed convolution) and [`Tensor::conv2d_weight_grad`]; the bias
//! gradient is `grad_out` summed over axes (0, 2, 3). Both primitives have backward rules of their own
//! (each is linear in each argument, and its adjoints are conv2d and the other primitive).

mod cpu;
#[cfg(feature = "cuda")]
pub(crate) mod cuda;
mod direct;
pub mod reference;

use std::sync::RwLockReadGuard;

use crate::autograd::Backward;
use crate::dtype::{DType, Float};
use crate::shape::fmt_shape;
use crate::storage::{CpuStorage, Storage};
use crate::tensor::Tensor;
use crate::{Error, Result};

pub use reference::Geom;

/// One output dimension, or `None` if the kernel does not fit the padded input.
fn out_dim(size: usize, k: usize, s: usize, p: usize) -> Option<usize> {
    let padded = size + 2 * p;
    (k >= 1 && k <= padded).then(|| (padded - k) / s + 1)
}

fn check_stride(op: &'static str, stride: (usize, usize)) -> Result<()> {
    if stride.0 == 0 || stride.1 == 0 {
        return Err(Error::shape(op, format!("stride must be at least 1 in both dimensions, got {stride:?}")));
    }
    Ok(())
}

fn rank4(op: &'static str, what: &str, layout: &str, t: &Tensor) -> Result<(usize, usize, usize, usize)> {
    match t.shape() {
        &[a, b, c, d] => Ok((a, b, c, d)),
        s => Err(Error::shape(op, format!("{what} must be a rank-4 {layout} tensor, got shape {}", fmt_shape(s)))),
    }
}

/// Output size of a `kh x kw` kernel over an `h x w` input, with an error naming every shape if it does not fit.
fn out_hw(
    op: &'static str,
    (h, w): (usize, usize),
    (kh, kw): (usize, usize),
    stride: (usize, usize),
    padding: (usize, usize),
    shapes: &str,
) -> Result<(usize, usize)> {
    match (out_dim(h, kh, stride.0, padding.0), out_dim(w, kw, stride.1, padding.1)) {
        (Some(ho), Some(wo)) => Ok((ho, wo)),
        _ => Err(Error::shape(
            op,
            format!(
                "kernel {kh}x{kw} does not fit the input {h}x{w} padded by {padding:?} (padded size {}x{}); {shapes}",
                h + 2 * padding.0,
                w + 2 * padding.1
            ),
        )),
    }
}

fn same_dtype(op: &'static str, ts: &[(&str, &Tensor)]) -> Result<()> {
    let d0 = ts[0].1.dtype();
    if ts.iter().any(|(_, t)| t.dtype() != d0) {
        let list: Vec<String> = ts.iter().map(|(n, t)| format!("{n} {}", t.dtype())).collect();
        return Err(Error::Mismatch { op, msg: format!("dtypes differ: {}", list.join(", ")) });
    }
    Ok(())
}

/// Borrow the data of a CPU storage of dtype `T` (the dtypes were checked beforehand).
fn data<T: Float>(s: &CpuStorage) -> &[T] {
    T::slice_of(s).expect("dtype checked by the caller")
}

/// The CPU storages behind `guards`, or `Unsupported` naming the first other device.
fn cpu_storages<'a>(op: &'static str, guards: &'a [RwLockReadGuard<'_, Storage>]) -> Result<Vec<&'a CpuStorage>> {
    guards
        .iter()
        .map(|g| match &**g {
            Storage::Cpu(c) => Ok(c),
            #[allow(unreachable_patterns)]
            other => Err(Error::Unsupported { op, device: other.device_name() }),
        })
        .collect()
}

/// Instantiate a generic CPU kernel for a dtype: `by_dtype!(dtype, |T| kernel::<T>(...))` gives a `CpuStorage`.
macro_rules! by_dtype {
    ($dtype:expr, |$t:ident| $body:expr) => {
        match $dtype {
            DType::F32 => {
                type $t = f32;
                CpuStorage::F32($body)
            }
            DType::F64 => {
                type $t = f64;
                CpuStorage::F64($body)
            }
        }
    };
}

struct Conv2dBackward {
    stride: (usize, usize),
    padding: (usize, usize),
}
impl Backward for Conv2dBackward {
    fn name(&self) -> &'static str {
        "conv2d"
    }
    fn backward(&self, inputs: &[Tensor], _: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let (x, w) = (&inputs[0], &inputs[1]);
        let (_, _, h, wd) = x.dims4("conv2d_backward")?;
        let (_, _, kh, kw) = w.dims4("conv2d_backward")?;
        let gx = if x.tracks_grad() {
            Some(Tensor::conv2d_input_grad(g, w, (h, wd), self.stride, self.padding)?)
        } else {
            None
        };
        let gw = if w.tracks_grad() {
            Some(Tensor::conv2d_weight_grad(x, g, (kh, kw), self.stride, self.padding)?)
        } else {
            None
        };
        let mut grads = vec![gx, gw];
        if let Some(b) = inputs.get(2) {
            grads.push(if b.tracks_grad() { Some(g.sum_axes(&[0, 2, 3], false)?) } else { None });
        }
        Ok(grads)
    }
}

/// Backward of `conv2d_input_grad(dy, w)`, given the gradient `G` of its result (shape of the input):
/// d/d dy = conv2d(G, w), d/dw = conv2d_weight_grad(G, dy).
struct InputGradBackward {
    stride: (usize, usize),
    padding: (usize, usize),
}
impl Backward for InputGradBackward {
    fn name(&self) -> &'static str {
        "conv2d_input_grad"
    }
    fn backward(&self, inputs: &[Tensor], _: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let (dy, w) = (&inputs[0], &inputs[1]);
        let (_, _, kh, kw) = w.dims4("conv2d_input_grad_backward")?;
        let gdy = if dy.tracks_grad() { Some(g.conv2d(w, None, self.stride, self.padding)?) } else { None };
        let gw = if w.tracks_grad() {
            Some(Tensor::conv2d_weight_grad(g, dy, (kh, kw), self.stride, self.padding)?)
        } else {
            None
        };
        Ok(vec![gdy, gw])
    }
}

/// Backward of `conv2d_weight_grad(x, dy)`, given the gradient `G` of its result (shape of the weight):
/// d/dx = conv2d_input_grad(dy, G), d/d dy = conv2d(x, G).
struct WeightGradBackward {
    stride: (usize, usize),
    padding: (usize, usize),
}
impl Backward for WeightGradBackward {
    fn name(&self) -> &'static str {
        "conv2d_weight_grad"
    }
    fn backward(&self, inputs: &[Tensor], _: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let (x, dy) = (&inputs[0], &inputs[1]);
        let (_, _, h, w) = x.dims4("conv2d_weight_grad_backward")?;
        let gx = if x.tracks_grad() {
            Some(Tensor::conv2d_input_grad(dy, g, (h, w), self.stride, self.padding)?)
        } else {
            None
        };
        let gdy = if dy.tracks_grad() { Some(x.conv2d(g, None, self.stride, self.padding)?) } else { None };
        Ok(vec![gx, gdy])
    }
}

impl Tensor {
    /// 2-D convolution (cross-correlation) of `self` (N, Cin, H, W) with `weight` (Cout, Cin, kh, kw), plus
    /// `bias` (Cout) if given, with stride `(sh, sw)` and zero padding `(ph, pw)`:
    /// `out[n, co, oh, ow] = bias[co] + sum_{ci, i, j} x[n, ci, oh*sh + i - ph, ow*sw + j - pw] * w[co, ci, i, j]`.
    /// Result: (N, Cout, Ho, Wo) with `Ho = (H + 2ph - kh) / sh + 1`, `Wo = (W + 2pw - kw) / sw + 1`.
    /// Differentiable in all three arguments.
    pub fn conv2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Result<Tensor> {
        const OP: &str = "conv2d";
        let (xs, ws) = (fmt_shape(self.shape()), fmt_shape(weight.shape()));
        let (n, cin, h, w) = rank4(OP, "input", "NCHW", self)?;
        let (cout, wcin, kh, kw) = rank4(OP, "weight", "OIHW", weight)?;
        check_stride(OP, stride)?;
        if cin != wcin {
            return Err(Error::shape(
                OP,
                format!("input {xs} has {cin} channels but weight {ws} (Cout, Cin, kh, kw) expects {wcin}"),
            ));
        }
        if let Some(b) = bias
            && b.shape() != [cout]
        {
            return Err(Error::shape(
                OP,
                format!("bias must have shape ({cout},) to match weight {ws}, got {}", fmt_shape(b.shape())),
            ));
        }
        let (ho, wo) = out_hw(OP, (h, w), (kh, kw), stride, padding, &format!("input {xs}, weight {ws}"))?;
        let mut named = vec![("input", self), ("weight", weight)];
        if let Some(b) = bias {
            named.push(("bias", b));
        }
        same_dtype(OP, &named)?;
        let g = Geom { n, cin, h, w, cout, kh, kw, sh: stride.0, sw: stride.1, ph: padding.0, pw: padding.1, ho, wo };
        let inputs: Vec<&Tensor> = named.iter().map(|(_, t)| *t).collect();
        let _p = crate::profile::scope(OP, 2.0 * (n * cout * ho * wo * cin * kh * kw) as f64, crate::profile::bytes_of(self, self.numel() + weight.numel() + n * cout * ho * wo));
        let storage = {
            let guards: Vec<_> = inputs.iter().map(|t| t.storage()).collect();
            #[cfg(feature = "cuda")]
            if let Some((be, b)) = cuda::buffers(OP, &guards)? {
                let y = cuda::conv2d_cuda(&be, b[0], b[1], b.get(2).copied(), &g, None)?;
                drop(b);
                drop(guards);
                return Ok(Tensor::from_op(Storage::Cuda(crate::storage::CudaStorage { buf: y, backend: be }), vec![n, cout, ho, wo], &inputs, Conv2dBackward { stride, padding }));
            }
            let c = cpu_storages(OP, &guards)?;
            Storage::Cpu(by_dtype!(c[0].dtype(), |T| cpu::conv2d::<T>(
                data(c[0]),
                data(c[1]),
                c.get(2).map(|b| data(b)),
                &g
            )))
        };
        Ok(Tensor::from_op(storage, vec![n, cout, ho, wo], &inputs, Conv2dBackward { stride, padding }))
    }

    /// Gradient of [`Tensor::conv2d`] with respect to its input (the transposed convolution): given
    /// `grad_out` (N, Cout, Ho, Wo) and `weight` (Cout, Cin, kh, kw), returns (N, Cin, H, W) with
    /// `(H, W) = input_hw`, the size of the convolution's input (several sizes give the same Ho, Wo when the
    /// stride is above 1; rows and columns the forward pass never read get zero).
    /// `stride` and `padding` are those of the forward convolution. Differentiable in both arguments.
    pub fn conv2d_input_grad(
        grad_out: &Tensor,
        weight: &Tensor,
        input_hw: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Result<Tensor> {
        const OP: &str = "conv2d_input_grad";
        let (gs, ws) = (fmt_shape(grad_out.shape()), fmt_shape(weight.shape()));
        let (n, gcout, gho, gwo) = rank4(OP, "grad_out", "NCHW", grad_out)?;
        let (cout, cin, kh, kw) = rank4(OP, "weight", "OIHW", weight)?;
        check_stride(OP, stride)?;
        if gcout != cout {
            return Err(Error::shape(OP, format!("grad_out {gs} has {gcout} channels but weight {ws} has Cout = {cout}")));
        }
        let (h, w) = input_hw;
        let shapes = format!("grad_out {gs}, weight {ws}, input size {h}x{w}");
        let (ho, wo) = out_hw(OP, (h, w), (kh, kw), stride, padding, &shapes)?;
        if (ho, wo) != (gho, gwo) {
            return Err(Error::shape(
                OP,
                format!("a {h}x{w} input gives a {ho}x{wo} output with stride {stride:?} and padding {padding:?}, but {shapes}"),
            ));
        }
        same_dtype(OP, &[("grad_out", grad_out), ("weight", weight)])?;
        let g = Geom { n, cin, h, w, cout, kh, kw, sh: stride.0, sw: stride.1, ph: padding.0, pw: padding.1, ho, wo };
        let _p = crate::profile::scope(OP, 2.0 * (n * cout * ho * wo * cin * kh * kw) as f64, crate::profile::bytes_of(grad_out, grad_out.numel() + weight.numel() + n * cin * h * w));
        let storage = {
            let guards = [grad_out.storage(), weight.storage()];
            #[cfg(feature = "cuda")]
            if let Some((be, b)) = cuda::buffers(OP, &guards)? {
                let buf = cuda::conv2d_input_grad_cuda(&be, b[0], b[1], &g)?;
                drop(b);
                drop(guards);
                let s = Storage::Cuda(crate::storage::CudaStorage { buf, backend: be });
                return Ok(Tensor::from_op(s, vec![n, cin, h, w], &[grad_out, weight], InputGradBackward { stride, padding }));
            }
            let c = cpu_storages(OP, &guards)?;
            Storage::Cpu(by_dtype!(c[0].dtype(), |T| cpu::conv2d_input_grad::<T>(data(c[0]), data(c[1]), &g)))
        };
        Ok(Tensor::from_op(storage, vec![n, cin, h, w], &[grad_out, weight], InputGradBackward { stride, padding }))
    }

    /// Gradient of [`Tensor::conv2d`] with respect to its weight: given the convolution's `input`
    /// (N, Cin, H, W) and `grad_out` (N, Cout, Ho, Wo), returns (Cout, Cin, kh, kw) with
    /// `(kh, kw) = kernel_hw`, summed over the batch. `stride` and `padding` are those of the forward
    /// convolution. Differentiable in both arguments.
    pub fn conv2d_weight_grad(
        input: &Tensor,
        grad_out: &Tensor,
        kernel_hw: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Result<Tensor> {
        const OP: &str = "conv2d_weight_grad";
        let (xs, gs) = (fmt_shape(input.shape()), fmt_shape(grad_out.shape()));
        let (n, cin, h, w) = rank4(OP, "input", "NCHW", input)?;
        let (gn, cout, gho, gwo) = rank4(OP, "grad_out", "NCHW", grad_out)?;
        check_stride(OP, stride)?;
        if gn != n {
            return Err(Error::shape(OP, format!("input {xs} and grad_out {gs} have different batch sizes")));
        }
        let (kh, kw) = kernel_hw;
        let shapes = format!("input {xs}, grad_out {gs}, kernel {kh}x{kw}");
        let (ho, wo) = out_hw(OP, (h, w), (kh, kw), stride, padding, &shapes)?;
        if (ho, wo) != (gho, gwo) {
            return Err(Error::shape(
                OP,
                format!("the convolution gives a {ho}x{wo} output with stride {stride:?} and padding {padding:?}, but {shapes}"),
            ));
        }
        same_dtype(OP, &[("input", input), ("grad_out", grad_out)])?;
        let g = Geom { n, cin, h, w, cout, kh, kw, sh: stride.0, sw: stride.1, ph: padding.0, pw: padding.1, ho, wo };
        let _p = crate::profile::scope(OP, 2.0 * (n * cout * ho * wo * cin * kh * kw) as f64, crate::profile::bytes_of(input, input.numel() + grad_out.numel() + cout * cin * kh * kw));
        let storage = {
            let guards = [input.storage(), grad_out.storage()];
            #[cfg(feature = "cuda")]
            if let Some((be, b)) = cuda::buffers(OP, &guards)? {
                let buf = cuda::conv2d_weight_grad_cuda(&be, b[0], b[1], &g)?;
                drop(b);
                drop(guards);
                let s = Storage::Cuda(crate::storage::CudaStorage { buf, backend: be });
                return Ok(Tensor::from_op(s, vec![cout, cin, kh, kw], &[input, grad_out], WeightGradBackward { stride, padding }));
            }
            let c = cpu_storages(OP, &guards)?;
            Storage::Cpu(by_dtype!(c[0].dtype(), |T| cpu::conv2d_weight_grad::<T>(data(c[0]), data(c[1]), &g)))
        };
        Ok(Tensor::from_op(storage, vec![cout, cin, kh, kw], &[input, grad_out], WeightGradBackward { stride, padding }))
    }
}
