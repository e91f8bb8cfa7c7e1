//! Element-wise unary ops and their backward rules.
//!
//! The mask ops (`step`, `leaky_step`, `in_range`, `sign`) have no gradient; they exist so that backward
//! rules of relu, leaky_relu, clamp and abs can be written with ops and run on every device.

mod cpu;
#[cfg(feature = "cuda")]
pub(crate) mod cuda;
#[cfg(feature = "wgpu")]
pub(crate) mod wgpu;
pub(crate) use cpu::PAR_MIN;

use crate::autograd::Backward;
use crate::storage::Storage;
use crate::tensor::Tensor;
use crate::{cpu_map, Error, Result};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryOp {
    Neg,
    Exp,
    Log,
    Sqrt,
    Sigmoid,
    Tanh,
    Relu,
    Abs,
    LeakyRelu(f64),
    Powf(f64),
    AddScalar(f64),
    MulScalar(f64),
    Clamp(f64, f64),
    /// 1 where x > 0, else 0 (relu's derivative).
    Step,
    /// 1 where x > 0, else slope (leaky relu's derivative).
    LeakyStep(f64),
    /// 1 where lo <= x <= hi, else 0 (clamp's derivative).
    InRange(f64, f64),
    Sign,
    Square,
    Recip,
}

impl UnaryOp {
    pub fn name(&self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Relu => "relu",
            UnaryOp::Abs => "abs",
            UnaryOp::LeakyRelu(_) => "leaky_relu",
            UnaryOp::Powf(_) => "pow",
            UnaryOp::AddScalar(_) => "add_scalar",
            UnaryOp::MulScalar(_) => "mul_scalar",
            UnaryOp::Clamp(..) => "clamp",
            UnaryOp::Step => "step",
            UnaryOp::LeakyStep(_) => "leaky_step",
            UnaryOp::InRange(..) => "in_range",
            UnaryOp::Sign => "sign",
            UnaryOp::Square => "square",
            UnaryOp::Recip => "recip",
        }
    }
}

struct UnaryBackward(UnaryOp);

impl Backward for UnaryBackward {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn backward(&self, inputs: &[Tensor], out: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let x = &inputs[0];
        let gx = match self.0 {
            UnaryOp::Neg => g.neg()?,
            UnaryOp::Exp => g.mul(out)?,
            UnaryOp::Log => g.div(x)?,
            UnaryOp::Sqrt => g.div(out)?.mul_scalar(0.5)?,
            UnaryOp::Sigmoid => g.mul(&out.mul(&out.neg()?.add_scalar(1.0)?)?)?,
            UnaryOp::Tanh => g.mul(&out.square()?.neg()?.add_scalar(1.0)?)?,
            UnaryOp::Relu => masked_grad(g, x, 0.0)?,
            UnaryOp::Abs => g.mul(&x.unary(UnaryOp::Sign)?)?,
            UnaryOp::LeakyRelu(s) => masked_grad(g, x, s)?,
            UnaryOp::Powf(p) => g.mul(&x.powf(p - 1.0)?.mul_scalar(p)?)?,
            UnaryOp::AddScalar(_) => g.clone(),
            UnaryOp::MulScalar(s) => g.mul_scalar(s)?,
            UnaryOp::Clamp(lo, hi) => g.mul(&x.unary(UnaryOp::InRange(lo, hi))?)?,
            UnaryOp::Square => g.mul(x)?.mul_scalar(2.0)?,
            UnaryOp::Recip => g.mul(&out.square()?)?.neg()?,
            UnaryOp::Step | UnaryOp::LeakyStep(_) | UnaryOp::InRange(..) | UnaryOp::Sign => {
                return Ok(vec![None]);
            }
        };
        Ok(vec![Some(gx)])
    }
}

/// `g * (x > 0 ? 1 : slope)`, the gradient through relu (slope 0) and leaky_relu: one pass on the CPU,
/// `leaky_step` and `mul` on other devices. No gradient of its own: backward runs with recording off.
pub(crate) fn masked_grad(g: &Tensor, x: &Tensor, slope: f64) -> Result<Tensor> {
    let cpu = |t: &Tensor| matches!(&*t.storage(), Storage::Cpu(_));
    if !(cpu(g) && cpu(x)) || g.shape() != x.shape() || g.dtype() != x.dtype() {
        return g.mul(&x.unary(UnaryOp::LeakyStep(slope))?);
    }
    let n = g.numel();
    let _p = crate::profile::scope("masked_grad", n as f64, crate::profile::bytes_of(g, 3 * n));
    let storage = {
        let (sg, sx) = (g.storage(), x.storage());
        match (&*sg, &*sx) {
            (Storage::Cpu(a), Storage::Cpu(b)) => Storage::Cpu(
                crate::cpu_map2!(a, b, |gv, xv| cpu::masked_grad(gv, xv, crate::dtype::Float::from_f64(slope)))
                    .expect("dtypes checked above"),
            ),
            _ => unreachable!("checked to be CPU tensors"),
        }
    };
    Ok(Tensor::from_storage(storage, g.shape().to_vec()))
}

impl Tensor {
    /// Apply an element-wise op (dispatching on the device).
    pub fn unary(&self, op: UnaryOp) -> Result<Tensor> {
        let n = self.numel();
        let _p = crate::profile::scope(op.name(), n as f64, crate::profile::bytes_of(self, 2 * n));
        let storage = match &*self.storage() {
            Storage::Cpu(s) => Storage::Cpu(cpu_map!(s, |v| cpu::unary(op, v))),
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => s.wrap(cuda::unary_cuda(&s.backend, op, &s.buf)?),
            #[cfg(feature = "wgpu")]
            Storage::Wgpu(s) => crate::backend::wgpu::storage(&s.backend, wgpu::unary_wgpu(&s.backend, op, &s.buf)?),
            #[allow(unreachable_patterns)]
            other => return Err(Error::Unsupported { op: op.name(), device: other.device_name() }),
        };
        Ok(Tensor::from_op(storage, self.shape().to_vec(), &[self], UnaryBackward(op)))
    }

    pub fn neg(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Neg)
    }
    pub fn exp(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Exp)
    }
    pub fn log(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Log)
    }
    pub fn sqrt(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sqrt)
    }
    pub fn sigmoid(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sigmoid)
    }
    pub fn tanh(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Tanh)
    }
    pub fn relu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Relu)
    }
    pub fn abs(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Abs)
    }
    pub fn leaky_relu(&self, slope: f64) -> Result<Tensor> {
        self.unary(UnaryOp::LeakyRelu(slope))
    }
    /// `x^p` for a scalar exponent.
    pub fn powf(&self, p: f64) -> Result<Tensor> {
        self.unary(UnaryOp::Powf(p))
    }
    pub fn add_scalar(&self, s: f64) -> Result<Tensor> {
        self.unary(UnaryOp::AddScalar(s))
    }
    pub fn mul_scalar(&self, s: f64) -> Result<Tensor> {
        self.unary(UnaryOp::MulScalar(s))
    }
    pub fn clamp(&self, lo: f64, hi: f64) -> Result<Tensor> {
        if lo > hi {
            return Err(Error::msg(format!("clamp: lower bound {lo} is above upper bound {hi}")));
        }
        self.unary(UnaryOp::Clamp(lo, hi))
    }
    pub fn square(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Square)
    }
    pub fn recip(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Recip)
    }
}
