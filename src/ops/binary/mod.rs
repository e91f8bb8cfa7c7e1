//! Broadcasting binary ops (add, sub, mul, div, maximum, ge) and their backward rules.
//! Gradients of broadcast inputs are summed back to the input's shape with `sum_to`.

mod cpu;
#[cfg(feature = "cuda")]
pub(crate) mod cuda;
#[cfg(feature = "wgpu")]
pub(crate) mod wgpu;

use crate::autograd::Backward;
#[allow(unused_imports)]
use crate::shape::{broadcast_shape, broadcast_strides, fmt_shape};
use crate::storage::Storage;
use crate::tensor::Tensor;
use crate::{cpu_map2, Error, Result};

pub(crate) use cpu::add_assign_slice;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    /// Element-wise maximum (gradient goes to the larger input, to `a` on ties).
    Maximum,
    /// 1 where a >= b else 0; no gradient (a mask for backward rules).
    Ge,
}

impl BinaryOp {
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Ge => "ge",
        }
    }
}

struct BinaryBackward(BinaryOp);

impl Backward for BinaryBackward {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn backward(&self, inputs: &[Tensor], _out: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let (a, b) = (&inputs[0], &inputs[1]);
        let (ga, gb) = match self.0 {
            BinaryOp::Add => (g.clone(), g.clone()),
            BinaryOp::Sub => (g.clone(), g.neg()?),
            BinaryOp::Mul => (g.mul(b)?, g.mul(a)?),
            BinaryOp::Div => {
                let ga = g.div(b)?;
                let gb = ga.mul(a)?.div(b)?.neg()?;
                (ga, gb)
            }
            BinaryOp::Maximum => {
                let mask = a.binary(BinaryOp::Ge, b)?;
                let ga = g.mul(&mask)?;
                let gb = g.sub(&ga)?;
                (ga, gb)
            }
            BinaryOp::Ge => return Ok(vec![None, None]),
        };
        let ga = if a.tracks_grad() { Some(ga.sum_to(a.shape())?) } else { None };
        let gb = if b.tracks_grad() { Some(gb.sum_to(b.shape())?) } else { None };
        Ok(vec![ga, gb])
    }
}

impl Tensor {
    pub fn binary(&self, op: BinaryOp, other: &Tensor) -> Result<Tensor> {
        let out_shape = broadcast_shape(op.name(), self.shape(), other.shape())?;
        let n = crate::shape::numel(&out_shape);
        let _p = crate::profile::scope(op.name(), n as f64, crate::profile::bytes_of(self, n + self.numel() + other.numel()));
        let storage = {
            let (sa, sb) = (self.storage(), other.storage());
            match (&*sa, &*sb) {
                (Storage::Cpu(x), Storage::Cpu(y)) => {
                    let s = cpu_map2!(x, y, |p, q| cpu::binary(op, p, self.shape(), q, other.shape(), &out_shape));
                    Storage::Cpu(s.ok_or_else(|| Error::Mismatch {
                        op: op.name(),
                        msg: format!(
                            "dtypes differ: {} {} vs {} {}",
                            fmt_shape(self.shape()), x.dtype(), fmt_shape(other.shape()), y.dtype()
                        ),
                    })?)
                }
                #[cfg(feature = "cuda")]
                (Storage::Cuda(x), Storage::Cuda(y)) if op == BinaryOp::Add && std::sync::Arc::ptr_eq(&x.backend, &y.backend) => {
                    let buf = if self.shape() == other.shape() {
                        cuda::add_cuda(&x.backend, &x.buf, &y.buf)?
                    } else {
                        let (sa, sb) = (broadcast_strides(self.shape(), &out_shape), broadcast_strides(other.shape(), &out_shape));
                        cuda::add_broadcast_cuda(&x.backend, &x.buf, &sa, &y.buf, &sb, &out_shape)?
                    };
                    Storage::Cuda(crate::storage::CudaStorage { buf, backend: x.backend.clone() })
                }
                #[cfg(feature = "wgpu")]
                (Storage::Wgpu(x), Storage::Wgpu(y)) if std::sync::Arc::ptr_eq(&x.backend, &y.backend) => {
                    let (sa, sb) = (broadcast_strides(self.shape(), &out_shape), broadcast_strides(other.shape(), &out_shape));
                    let buf = wgpu::binary_wgpu(&x.backend, op, &x.buf, &sa, &y.buf, &sb, &out_shape)?;
                    Storage::Wgpu(crate::storage::WgpuStorage { buf, backend: x.backend.clone() })
                }
                #[allow(unreachable_patterns)]
                (x, y) => {
                    return Err(if x.device_name() != y.device_name() {
                        Error::Mismatch {
                            op: op.name(),
                            msg: format!("tensors on different devices: {} and {}", x.device_name(), y.device_name()),
                        }
                    } else {
                        Error::Unsupported { op: op.name(), device: x.device_name() }
                    });
                }
            }
        };
        Ok(Tensor::from_op(storage, out_shape, &[self, other], BinaryBackward(op)))
    }

    pub fn add(&self, o: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Add, o)
    }
    pub fn sub(&self, o: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Sub, o)
    }
    pub fn mul(&self, o: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Mul, o)
    }
    pub fn div(&self, o: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Div, o)
    }
    pub fn maximum(&self, o: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Maximum, o)
    }
}
