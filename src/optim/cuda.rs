//! Fused optimizer updates for parameters on a CUDA device (kernels/optim.cu): one kernel per parameter
//! and step instead of the composite element-wise chain. Each function returns `None` when the
//! parameter is not on a CUDA device, and the caller takes the composite path.

use crate::backend::cuda::{Arg, CudaBackend, CudaBuffer};
use crate::storage::Storage;
use crate::tensor::Tensor;
use crate::{Error, Result};

const FILE: &str = "optim.cu";

/// The CUDA buffers of `ts` on one backend, or `None` when the first is not on CUDA; runs `f` with them.
fn with_buffers<R>(op: &'static str, ts: &[&Tensor], f: impl FnOnce(&CudaBackend, &[&CudaBuffer]) -> Result<R>) -> Result<Option<R>> {
    let guards: Vec<_> = ts.iter().map(|t| t.storage()).collect();
    crate::ops::conv2d::cuda::buffers(op, &guards)?.map(|(be, bufs)| f(&be, &bufs)).transpose()
}

fn new_tensor(like: &Tensor, buf: CudaBuffer) -> Result<Tensor> {
    match &*like.storage() {
        Storage::Cuda(s) => Ok(Tensor::from_storage(s.wrap(buf), like.shape().to_vec())),
        other => Err(Error::Unsupported { op: "optimizer state", device: other.device_name() }),
    }
}

/// One SGD step of `p` in place; returns the new momentum buffer (when momentum is on).
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgd_step(p: &Tensor, g: &Tensor, buf: Option<&Tensor>, lr: f64, momentum: f64, dampening: f64, wd: f64, nesterov: bool) -> Result<Option<Option<Tensor>>> {
    let n = p.numel();
    let mut inputs = vec![p, g];
    if let Some(b) = buf {
        inputs.push(b);
    }
    let out = with_buffers("Sgd", &inputs, |be, b| {
        let buf_out = be.alloc_uninit(if momentum != 0.0 { n } else { 0 })?;
        if n > 0 {
            let buf_in = b.get(2).copied().unwrap_or(&buf_out);
            let k = "sgd_step_f32";
            let args = [Arg::Buf(b[0]), Arg::Buf(b[1]), Arg::Buf(buf_in), Arg::Buf(&buf_out), Arg::U64(n as u64), Arg::F32(lr as f32), Arg::F32(momentum as f32), Arg::F32(dampening as f32), Arg::F32(wd as f32), Arg::I32(nesterov as i32), Arg::I32(buf.is_none() as i32)];
            be.launch(FILE, k, be.stride_launch(k, n as u64), &args)?;
        }
        Ok(buf_out)
    })?;
    match out {
        None => Ok(None),
        Some(_) if momentum == 0.0 => Ok(Some(None)),
        Some(b) => Ok(Some(Some(new_tensor(p, b)?))),
    }
}

/// One Adam/AdamW step of `p` in place; returns the new (m, v).
#[allow(clippy::too_many_arguments)]
pub(crate) fn adam_step(p: &Tensor, g: &Tensor, m: &Tensor, v: &Tensor, lr: f64, betas: (f64, f64), eps: f64, wd: f64, decoupled: bool, bc1: f64, bc2: f64) -> Result<Option<(Tensor, Tensor)>> {
    let n = p.numel();
    let out = with_buffers("Adam", &[p, g, m, v], |be, b| {
        let (m_out, v_out) = (be.alloc_uninit(n)?, be.alloc_uninit(n)?);
        if n > 0 {
            let f = |x: f64| Arg::F32(x as f32);
            let k = "adam_step_f32";
            let args = [Arg::Buf(b[0]), Arg::Buf(b[1]), Arg::Buf(b[2]), Arg::Buf(b[3]), Arg::Buf(&m_out), Arg::Buf(&v_out), Arg::U64(n as u64), f(lr), f(betas.0), f(betas.1), f(eps), f(wd), Arg::I32(decoupled as i32), f(bc1), f(bc2)];
            be.launch(FILE, k, be.stride_launch(k, n as u64), &args)?;
        }
        Ok((m_out, v_out))
    })?;
    out.map(|(mo, vo)| Ok((new_tensor(p, mo)?, new_tensor(p, vo)?))).transpose()
}
