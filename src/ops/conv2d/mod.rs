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
#[cfg(feature = "wgpu")]
pub(crate) mod wgpu;
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

/// The wgpu buffers behind `guards` when every one is a wgpu storage of the same device (`None` when the
/// first is not on wgpu; an error when they are split across devices).
#[cfg(feature = "wgpu")]
fn wgpu_storages<'a>(
    op: &'static str,
    guards: &'a [RwLockReadGuard<'_, Storage>],
) -> Result<Option<(std::sync::Arc<crate::backend::wgpu::WgpuBackend>, Vec<&'a crate::backend::wgpu::WgpuBuffer>)>> {
    let Storage::Wgpu(first) = &*guards[0] else { return Ok(None) };
    let mut bufs = Vec::with_capacity(guards.len());
    for g in guards {
        match &**g {
            Storage::Wgpu(w) if std::sync::Arc::ptr_eq(&w.backend, &first.backend) => bufs.push(&w.buf),
            other => {
                return Err(Error::Mismatch { op, msg: format!("tensors on different devices: wgpu and {}", other.device_name()) });
            }
        }
    }
    Ok(Some((first.backend.clone(), bufs)))
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
            #[cfg(feature = "wgpu")]
            if let Some((be, b)) = wgpu_storages(OP, &guards)? {
                let out = wgpu::conv2d_wgpu(&be, b[0], b[1], b.get(2).copied(), &g, None)?;
                drop(guards);
                return Ok(Tensor::from_op(crate::backend::wgpu::storage(&be, out), vec![n, cout, ho, wo], &inputs, Conv2dBackward { stride, padding }));
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
            #[cfg(feature = "wgpu")]
            if let Some((be, b)) = wgpu_storages(OP, &guards)? {
                let out = wgpu::conv2d_input_grad_wgpu(&be, b[0], b[1], &g)?;
                drop(guards);
                return Ok(Tensor::from_op(crate::backend::wgpu::storage(&be, out), vec![n, cin, h, w], &[grad_out, weight], InputGradBackward { stride, padding }));
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
            #[cfg(feature = "wgpu")]
            if let Some((be, b)) = wgpu_storages(OP, &guards)? {
                let out = wgpu::conv2d_weight_grad_wgpu(&be, b[0], b[1], &g)?;
                drop(guards);
                return Ok(Tensor::from_op(crate::backend::wgpu::storage(&be, out), vec![cout, cin, kh, kw], &[input, grad_out], WeightGradBackward { stride, padding }));
            }
            let c = cpu_storages(OP, &guards)?;
            Storage::Cpu(by_dtype!(c[0].dtype(), |T| cpu::conv2d_weight_grad::<T>(data(c[0]), data(c[1]), &g)))
        };
        Ok(Tensor::from_op(storage, vec![cout, cin, kh, kw], &[input, grad_out], WeightGradBackward { stride, padding }))
    }
}

/// Checks shared by the fused entry points: every part is (N, Ci, H, W) with the same N, H, W, and the
/// channel counts add up to the weight's Cin. Returns the geometry and the parts' channel counts.
fn parts_geom(
    op: &'static str,
    inputs: &[&Tensor],
    weight_shape: &[usize],
    stride: (usize, usize),
    padding: (usize, usize),
) -> Result<(Geom, Vec<usize>)> {
    let first = inputs.first().ok_or_else(|| Error::shape(op, "needs at least one input"))?;
    let (n, _, h, w) = rank4(op, "input", "NCHW", first)?;
    let mut cins = Vec::with_capacity(inputs.len());
    for t in inputs {
        let (tn, c, th, tw) = rank4(op, "input", "NCHW", t)?;
        if (tn, th, tw) != (n, h, w) {
            let all: Vec<String> = inputs.iter().map(|t| fmt_shape(t.shape())).collect();
            return Err(Error::shape(op, format!("inputs must agree in N, H and W, got {}", all.join(", "))));
        }
        cins.push(c);
    }
    let ws = fmt_shape(weight_shape);
    let &[cout, wcin, kh, kw] = weight_shape else {
        return Err(Error::shape(op, format!("weight must be a rank-4 OIHW tensor, got shape {ws}")));
    };
    check_stride(op, stride)?;
    let cin: usize = cins.iter().sum();
    if cin != wcin {
        return Err(Error::shape(op, format!("inputs have {cin} channels in all ({cins:?}) but weight {ws} expects {wcin}")));
    }
    let (ho, wo) = out_hw(op, (h, w), (kh, kw), stride, padding, &format!("weight {ws}"))?;
    Ok((Geom { n, cin, h, w, cout, kh, kw, sh: stride.0, sw: stride.1, ph: padding.0, pw: padding.1, ho, wo }, cins))
}

/// Whether every tensor lives on the CPU (the fused kernels are CPU kernels; other devices compose).
fn all_cpu(ts: &[&Tensor]) -> bool {
    ts.iter().all(|t| matches!(&*t.storage(), Storage::Cpu(_)))
}

/// The gradient of a concatenation (`gx`, channels in part order) handed out to the parts that track
/// gradients: `grads[i]` for part `i`.
fn split_into_parts(gx: Tensor, parts: &[Tensor], cins: &[usize], grads: &mut [Option<Tensor>]) -> Result<()> {
    let pieces = if parts.len() == 1 { vec![gx] } else { gx.split(1, cins)? };
    for (i, piece) in pieces.into_iter().enumerate() {
        if parts[i].tracks_grad() {
            grads[i] = Some(piece);
        }
    }
    Ok(())
}

/// Backward of [`Tensor::conv2d_concat`]: inputs are the parts, the weight and (if any) the bias.
struct ConvConcatBackward {
    cins: Vec<usize>,
    stride: (usize, usize),
    padding: (usize, usize),
    slope: Option<f64>,
}
impl Backward for ConvConcatBackward {
    fn name(&self) -> &'static str {
        "conv2d_concat"
    }
    fn backward(&self, inputs: &[Tensor], out: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let m = self.cins.len();
        let (xs, w) = (&inputs[..m], &inputs[m]);
        let gp = match self.slope {
            // The mask read from the output: for slope >= 0, out > 0 exactly where the input was.
            Some(a) => crate::ops::unary::masked_grad(g, out, a)?,
            None => g.clone(),
        };
        let mut grads: Vec<Option<Tensor>> = vec![None; inputs.len()];
        if xs.iter().any(|x| x.tracks_grad()) {
            let (_, _, h, wd) = xs[0].dims4("conv2d_concat_backward")?;
            let gx = Tensor::conv2d_input_grad(&gp, w, (h, wd), self.stride, self.padding)?;
            split_into_parts(gx, xs, &self.cins, &mut grads)?;
        }
        if w.tracks_grad() {
            let (_, _, kh, kw) = w.dims4("conv2d_concat_backward")?;
            let parts: Vec<&Tensor> = xs.iter().collect();
            grads[m] = Some(Tensor::conv2d_weight_grad_concat(&parts, &gp, (kh, kw), self.stride, self.padding)?);
        }
        if let Some(b) = inputs.get(m + 1)
            && b.tracks_grad()
        {
            grads[m + 1] = Some(gp.sum_axes(&[0, 2, 3], false)?);
        }
        Ok(grads)
    }

    fn backward_accumulate(
        &self,
        inputs: &[Tensor],
        out: &Tensor,
        g: &Tensor,
        acc: Vec<Option<Tensor>>,
    ) -> Result<Vec<Option<Tensor>>> {
        let m = self.cins.len();
        let mut operands: Vec<&Tensor> = inputs.iter().collect();
        operands.extend([out, g]);
        let geom = if all_cpu(&operands) { self.geom(inputs, out)? } else { None };
        match geom {
            Some(geom) if cpu::transposed_is_stride1(&geom) && cpu::fused_supported(&geom) => match inputs[m].dtype() {
                DType::F32 => self.fused_backward::<f32>(inputs, out, g, acc, &geom),
                DType::F64 => self.fused_backward::<f64>(inputs, out, g, acc, &geom),
            },
            _ => crate::autograd::accumulate_default(self, inputs, out, g, acc),
        }
    }
}

impl ConvConcatBackward {
    fn geom(&self, inputs: &[Tensor], out: &Tensor) -> Result<Option<Geom>> {
        let m = self.cins.len();
        let (n, _, h, w) = inputs[0].dims4("conv2d_concat_backward")?;
        let (cout, cin, kh, kw) = inputs[m].dims4("conv2d_concat_backward")?;
        let (_, _, ho, wo) = out.dims4("conv2d_concat_backward")?;
        let (stride, padding) = (self.stride, self.padding);
        Ok(Some(Geom { n, cin, h, w, cout, kh, kw, sh: stride.0, sw: stride.1, ph: padding.0, pw: padding.1, ho, wo }))
    }

    /// The CPU backward in three passes: the masked gradient and the bias gradient together; the input
    /// gradient written (or added) straight into each part's gradient; the weight gradient over the parts.
    fn fused_backward<T: Float>(
        &self,
        inputs: &[Tensor],
        out: &Tensor,
        g: &Tensor,
        mut acc: Vec<Option<Tensor>>,
        geom: &Geom,
    ) -> Result<Vec<Option<Tensor>>> {
        use crate::autograd::{add_into, is_unique};
        use direct::OutPart;
        let m = self.cins.len();
        let (xs, w) = (&inputs[..m], &inputs[m]);
        let bias = inputs.get(m + 1).filter(|b| b.tracks_grad());
        let plane = geom.ho * geom.wo;
        let tensor = |v: Vec<T>, shape: Vec<usize>| Tensor::from_storage(Storage::Cpu(T::into_storage(v)), shape);

        // The LeakyReLU's mask is applied as the input- and weight-gradient kernels copy g into their own
        // layouts, and the bias gradient is summed in the weight-gradient pass: the masked gradient is
        // never written. Only a bias without a weight gradient needs a pass of its own.
        let (g_guard, y_guard) = (g.storage(), out.storage());
        let gy = cpu_storages("conv2d_concat_backward", std::slice::from_ref(&g_guard))?;
        let yy = cpu_storages("conv2d_concat_backward", std::slice::from_ref(&y_guard))?;
        let (gd, yd) = (data::<T>(gy[0]), data::<T>(yy[0]));
        let mask = self.slope.map(|a| direct::Mask { y: yd, slope: T::from_f64(a) });
        let mut gb: Option<Vec<T>> = None;
        if bias.is_some() && !w.tracks_grad() {
            let _p = crate::profile::scope("sum", g.numel() as f64, crate::profile::bytes_of(g, 2 * g.numel()));
            gb = Some(cpu::masked_bias_grad(gd, yd, self.slope.map(T::from_f64), geom.n, geom.cout, plane));
        }
        let mut totals: Vec<Option<Tensor>> = vec![None; inputs.len()];

        if xs.iter().any(|x| x.tracks_grad()) {
            let _p = crate::profile::scope(
                "conv2d_input_grad",
                2.0 * (geom.n * geom.cout * plane * geom.cin * geom.kh * geom.kw) as f64,
                crate::profile::bytes_of(g, g.numel() + w.numel() + geom.n * geom.in_sample()),
            );
            // Per part: add into its accumulated gradient when that buffer is ours alone, else write a
            // new buffer (starting from a copy of a shared accumulated gradient).
            let mut fresh: Vec<Option<Vec<T>>> = vec![None; m];
            let mut in_place: Vec<Option<Tensor>> = vec![None; m];
            for i in 0..m {
                let len = geom.n * self.cins[i] * geom.h * geom.w;
                match acc[i].take() {
                    Some(a) if xs[i].tracks_grad() && is_unique(&a) && a.dtype() == T::DTYPE && a.numel() == len && all_cpu(&[&a]) => {
                        in_place[i] = Some(a);
                    }
                    Some(a) => fresh[i] = Some(a.to_vec::<T>()?),
                    None => fresh[i] = Some(vec![T::ZERO; len]),
                }
            }
            let mut guards: Vec<Option<std::sync::RwLockWriteGuard<'_, Storage>>> =
                in_place.iter().map(|t| t.as_ref().map(|t| t.storage_arc().write().unwrap_or_else(|e| e.into_inner()))).collect();
            let mut outs = Vec::with_capacity(m);
            for i in 0..m {
                let (ptr, accumulate) = match (&mut guards[i], &mut fresh[i]) {
                    (Some(guard), _) => match &mut **guard {
                        Storage::Cpu(cs) => (T::slice_of_mut(cs).expect("dtype checked").as_mut_ptr(), true),
                        #[allow(unreachable_patterns)]
                        _ => unreachable!("checked to be a CPU tensor"),
                    },
                    (None, Some(v)) => (v.as_mut_ptr(), true),
                    (None, None) => unreachable!("every part has a target"),
                };
                outs.push(OutPart { ptr, channels: self.cins[i], accumulate });
            }
            let wg = w.storage();
            let wd = data::<T>(cpu_storages("conv2d_concat_backward", std::slice::from_ref(&wg))?[0]);
            // SAFETY: every target holds N x Ci x H x W values (checked or allocated above), the write
            // guards keep them exclusive, and they are distinct buffers from gp and w.
            unsafe { cpu::conv2d_input_grad_into(gd, mask.as_ref(), wd, geom, &outs) };
            drop(guards);
            for i in 0..m {
                if !xs[i].tracks_grad() {
                    continue;
                }
                totals[i] = match (in_place[i].take(), fresh[i].take()) {
                    (Some(t), _) => Some(t),
                    (None, Some(v)) => Some(tensor(v, xs[i].shape().to_vec())),
                    (None, None) => None,
                };
            }
        }
        if w.tracks_grad() {
            let _p = crate::profile::scope(
                "conv2d_weight_grad",
                2.0 * (geom.n * geom.cout * plane * geom.cin * geom.kh * geom.kw) as f64,
                crate::profile::bytes_of(g, g.numel() + geom.n * geom.in_sample() + w.numel()),
            );
            let guards: Vec<_> = xs.iter().map(|t| t.storage()).collect();
            let c = cpu_storages("conv2d_concat_backward", &guards)?;
            let parts: Vec<(&[T], usize)> = (0..m).map(|i| (data::<T>(c[i]), self.cins[i])).collect();
            let (gw, sums) = cpu::conv2d_weight_grad_parts(&parts, gd, geom, mask.as_ref(), bias.is_some());
            if sums.is_some() {
                gb = sums;
            }
            let gw = tensor(gw, w.shape().to_vec());
            totals[m] = Some(match acc[m].take() {
                Some(a) => add_into(a, &gw)?,
                None => gw,
            });
        }
        if let (Some(b), Some(gb)) = (bias, gb) {
            let gb = tensor(gb, b.shape().to_vec());
            totals[m + 1] = Some(match acc[m + 1].take() {
                Some(a) => add_into(a, &gb)?,
                None => gb,
            });
        }
        // Accumulated gradients of operands this op gives no gradient (not tracked) pass through.
        for (t, a) in totals.iter_mut().zip(acc) {
            if t.is_none() {
                *t = a;
            }
        }
        Ok(totals)
    }
}

/// Backward of [`Tensor::conv2d_weight_grad_concat`] (inputs: the parts, then grad_out), given the gradient
/// `G` of the weight gradient: d/dx = conv2d_input_grad(dy, G) split into the parts, d/d dy = conv2d(x, G).
struct WeightGradConcatBackward {
    cins: Vec<usize>,
    stride: (usize, usize),
    padding: (usize, usize),
}
impl Backward for WeightGradConcatBackward {
    fn name(&self) -> &'static str {
        "conv2d_weight_grad_concat"
    }
    fn backward(&self, inputs: &[Tensor], _: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let m = self.cins.len();
        let (xs, dy) = (&inputs[..m], &inputs[m]);
        let mut grads: Vec<Option<Tensor>> = vec![None; m + 1];
        if xs.iter().any(|x| x.tracks_grad()) {
            let (_, _, h, w) = xs[0].dims4("conv2d_weight_grad_concat_backward")?;
            let gx = Tensor::conv2d_input_grad(dy, g, (h, w), self.stride, self.padding)?;
            split_into_parts(gx, xs, &self.cins, &mut grads)?;
        }
        if dy.tracks_grad() {
            let parts: Vec<&Tensor> = xs.iter().collect();
            grads[m] = Some(Tensor::conv2d_concat(&parts, g, None, self.stride, self.padding, None)?);
        }
        Ok(grads)
    }
}

impl Tensor {
    /// `leaky_relu(conv2d(x, weight, bias), slope)` in one pass: the activation is applied as the output
    /// leaves the convolution's accumulator (CPU), and the backward pass masks the gradient once. `slope`
    /// must be >= 0 (the backward rule reads the mask from the output). Same result as the composition.
    pub fn conv2d_leaky_relu(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        stride: (usize, usize),
        padding: (usize, usize),
        slope: f64,
    ) -> Result<Tensor> {
        Tensor::conv2d_concat(&[self], weight, bias, stride, padding, Some(slope))
    }

    /// `conv2d(concat(inputs, axis 1), weight, bias)`, then LeakyReLU with `slope` if given, without
    /// writing the concatenation: the dense subnets of the hiding network convolve the concatenation of
    /// all earlier feature maps, and on the CPU the stride-1 kernels read the parts in place while padding
    /// each sample. Other devices and geometries compose concat, conv2d and leaky_relu (same numbers).
    pub fn conv2d_concat(
        inputs: &[&Tensor],
        weight: &Tensor,
        bias: Option<&Tensor>,
        stride: (usize, usize),
        padding: (usize, usize),
        slope: Option<f64>,
    ) -> Result<Tensor> {
        const OP: &str = "conv2d_concat";
        if let Some(a) = slope
            && !(a >= 0.0)
        {
            return Err(Error::msg(format!("{OP}: the LeakyReLU slope must be >= 0, got {a}")));
        }
        let (g, cins) = parts_geom(OP, inputs, weight.shape(), stride, padding)?;
        if let Some(b) = bias
            && b.shape() != [g.cout]
        {
            return Err(Error::shape(OP, format!("bias must have shape ({},), got {}", g.cout, fmt_shape(b.shape()))));
        }
        let mut all: Vec<&Tensor> = inputs.to_vec();
        all.push(weight);
        if let Some(b) = bias {
            all.push(b);
        }
        let named: Vec<(&str, &Tensor)> = all.iter().map(|t| ("operand", *t)).collect();
        same_dtype(OP, &named)?;
        #[cfg(feature = "wgpu")]
        if all.iter().all(|t| matches!(&*t.storage(), Storage::Wgpu(_))) {
            // One kernel for conv + bias + LeakyReLU; the parts are joined first (the shader reads one
            // input tensor). The backward rule is the fused op's own, which runs on wgpu through ops.
            let name = if slope.is_some() { "conv2d_leaky_relu" } else { "conv2d" };
            let _p = crate::profile::scope(
                name,
                2.0 * (g.n * g.cout * g.ho * g.wo * g.cin * g.kh * g.kw) as f64,
                crate::profile::bytes_of(weight, g.n * g.in_sample() + weight.numel() + g.n * g.out_sample()),
            );
            let x = if inputs.len() == 1 { inputs[0].clone() } else { crate::autograd::no_grad(|| Tensor::concat(inputs, 1))? };
            let mut operands = vec![&x, weight];
            operands.extend(bias);
            let storage = {
                let guards: Vec<_> = operands.iter().map(|t| t.storage()).collect();
                match wgpu_storages(OP, &guards)? {
                    Some((be, b)) => {
                        let out = wgpu::conv2d_wgpu(&be, b[0], b[1], b.get(2).copied(), &g, slope.map(|a| a as f32))?;
                        crate::backend::wgpu::storage(&be, out)
                    }
                    None => return Err(Error::Unsupported { op: OP, device: x.device().name() }),
                }
            };
            return Ok(Tensor::from_op(storage, vec![g.n, g.cout, g.ho, g.wo], &all, ConvConcatBackward { cins, stride, padding, slope }));
        }
        #[cfg(feature = "cuda")]
        if all.iter().all(|t| t.device().is_cuda()) {
            // One implicit-GEMM kernel with bias and LeakyReLU in its epilogue. The parts are joined first
            // (outside the graph: the backward rule below differentiates with respect to the parts).
            let x = if inputs.len() == 1 { inputs[0].clone() } else { crate::autograd::no_grad(|| Tensor::concat(inputs, 1))? };
            let name = if slope.is_some() { "conv2d_leaky_relu" } else { "conv2d" };
            let _p = crate::profile::scope(name, 2.0 * (g.n * g.cout * g.ho * g.wo * g.cin * g.kh * g.kw) as f64, crate::profile::bytes_of(weight, g.n * g.in_sample() + weight.numel() + g.n * g.out_sample()));
            let mut operands = vec![&x, weight];
            operands.extend(bias);
            let guards: Vec<_> = operands.iter().map(|t| t.storage()).collect();
            let (be, b) = cuda::buffers(OP, &guards)?.ok_or_else(|| Error::Unsupported { op: OP, device: x.device().name() })?;
            let y = cuda::conv2d_cuda(&be, b[0], b[1], b.get(2).copied(), &g, slope.map(|a| a as f32))?;
            drop(b);
            drop(guards);
            let storage = Storage::Cuda(crate::storage::CudaStorage { buf: y, backend: be });
            return Ok(Tensor::from_op(storage, vec![g.n, g.cout, g.ho, g.wo], &all, ConvConcatBackward { cins, stride, padding, slope }));
        }
        if !all_cpu(&all) || !cpu::fused_supported(&g) {
            let x = if inputs.len() == 1 { inputs[0].clone() } else { Tensor::concat(inputs, 1)? };
            let y = x.conv2d(weight, bias, stride, padding)?;
            return match slope {
                Some(a) => y.leaky_relu(a),
                None => Ok(y),
            };
        }
        let name = if slope.is_some() { "conv2d_leaky_relu" } else { "conv2d" };
        let _p = crate::profile::scope(
            name,
            2.0 * (g.n * g.cout * g.ho * g.wo * g.cin * g.kh * g.kw) as f64,
            crate::profile::bytes_of(weight, g.n * g.in_sample() + weight.numel() + g.n * g.out_sample()),
        );
        let storage = {
            let guards: Vec<_> = all.iter().map(|t| t.storage()).collect();
            let c = cpu_storages(OP, &guards)?;
            let m = inputs.len();
            Storage::Cpu(by_dtype!(c[0].dtype(), |T| {
                let parts: Vec<(&[T], usize)> = (0..m).map(|i| (data::<T>(c[i]), cins[i])).collect();
                cpu::conv2d_parts::<T>(&parts, data(c[m]), c.get(m + 1).map(|b| data(b)), &g, slope.map(T::from_f64))
            }))
        };
        Ok(Tensor::from_op(storage, vec![g.n, g.cout, g.ho, g.wo], &all, ConvConcatBackward { cins, stride, padding, slope }))
    }

    /// [`Tensor::conv2d_weight_grad`] for an input given as channel parts (see [`Tensor::conv2d_concat`]).
    pub fn conv2d_weight_grad_concat(
        inputs: &[&Tensor],
        grad_out: &Tensor,
        kernel_hw: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Result<Tensor> {
        const OP: &str = "conv2d_weight_grad_concat";
        let all_cpu_now = {
            let mut v: Vec<&Tensor> = inputs.to_vec();
            v.push(grad_out);
            all_cpu(&v)
        };
        let (_, cout, _, _) = rank4(OP, "grad_out", "NCHW", grad_out)?;
        let cin_total: usize = inputs.iter().map(|t| t.shape().get(1).copied().unwrap_or(0)).sum();
        // Geometry through the forward's checks, with the weight shape this gradient will have.
        let (g, cins) = parts_geom(OP, inputs, &[cout, cin_total, kernel_hw.0, kernel_hw.1], stride, padding)?;
        if grad_out.shape() != [g.n, g.cout, g.ho, g.wo] {
            return Err(Error::shape(
                OP,
                format!("grad_out must be ({}, {}, {}, {}), got {}", g.n, g.cout, g.ho, g.wo, fmt_shape(grad_out.shape())),
            ));
        }
        if inputs.len() == 1 || !all_cpu_now || !cpu::fused_supported(&g) {
            let x = if inputs.len() == 1 { inputs[0].clone() } else { Tensor::concat(inputs, 1)? };
            return Tensor::conv2d_weight_grad(&x, grad_out, kernel_hw, stride, padding);
        }
        let mut all: Vec<&Tensor> = inputs.to_vec();
        all.push(grad_out);
        let named: Vec<(&str, &Tensor)> = all.iter().map(|t| ("operand", *t)).collect();
        same_dtype(OP, &named)?;
        let _p = crate::profile::scope(
            "conv2d_weight_grad",
            2.0 * (g.n * g.cout * g.ho * g.wo * g.cin * g.kh * g.kw) as f64,
            crate::profile::bytes_of(grad_out, g.n * g.in_sample() + grad_out.numel() + g.cout * g.k()),
        );
        let storage = {
            let guards: Vec<_> = all.iter().map(|t| t.storage()).collect();
            let c = cpu_storages(OP, &guards)?;
            let m = inputs.len();
            Storage::Cpu(by_dtype!(c[0].dtype(), |T| {
                let parts: Vec<(&[T], usize)> = (0..m).map(|i| (data::<T>(c[i]), cins[i])).collect();
                cpu::conv2d_weight_grad_parts::<T>(&parts, data(c[m]), &g, None, false).0
            }))
        };
        Ok(Tensor::from_op(
            storage,
            vec![g.cout, g.cin, g.kh, g.kw],
            &all,
            WeightGradConcatBackward { cins, stride, padding },
        ))
    }
}
