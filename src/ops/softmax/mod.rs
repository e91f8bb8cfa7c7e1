//! Fused log_softmax along one axis, for devices with a kernel for it (CUDA: kernels/softmax.cu).
//! `nn::functional::log_softmax` uses it there and the composite of primitive ops elsewhere; both give
//! the same numbers.

#[cfg(feature = "cuda")]
pub(crate) mod cuda;

use crate::autograd::Backward;
use crate::shape::{axis, numel};
use crate::storage::Storage;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// dx = g - exp(y) * sum(g) along the axis, from the forward output y.
struct LogSoftmaxBackward {
    axis: usize,
    outer: usize,
    n: usize,
    inner: usize,
}

impl Backward for LogSoftmaxBackward {
    fn name(&self) -> &'static str {
        "log_softmax"
    }
    fn backward(&self, _: &[Tensor], out: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        #[cfg(feature = "cuda")]
        if let (Storage::Cuda(gs), Storage::Cuda(ys)) = (&*g.storage(), &*out.storage()) {
            let _p = crate::profile::scope("log_softmax_backward", 3.0 * g.numel() as f64, crate::profile::bytes_of(g, 3 * g.numel()));
            let dx = cuda::log_softmax_backward_cuda(&gs.backend, &ys.buf, &gs.buf, self.outer, self.n, self.inner)?;
            return Ok(vec![Some(Tensor::from_storage(gs.wrap(dx), g.shape().to_vec()))]);
        }
        // Any other device: the same rule with primitive ops.
        let s = g.sum_axes(&[self.axis as isize], true)?;
        Ok(vec![Some(g.sub(&out.exp()?.mul(&s)?)?)])
    }
}

impl Tensor {
    /// log(softmax(x)) along `ax` in one kernel (CUDA); an error naming the device elsewhere (use
    /// `nn::functional::log_softmax`, which picks this or the composite form).
    pub fn log_softmax_fused(&self, ax: isize) -> Result<Tensor> {
        let a = axis("log_softmax", ax, self.rank())?;
        let s = self.shape();
        let (outer, n, inner) = (numel(&s[..a]), s[a], numel(&s[a + 1..]));
        let _p = crate::profile::scope("log_softmax", 4.0 * self.numel() as f64, crate::profile::bytes_of(self, 2 * self.numel()));
        let storage = match &*self.storage() {
            #[cfg(feature = "cuda")]
            Storage::Cuda(st) => st.wrap(cuda::log_softmax_cuda(&st.backend, &st.buf, outer, n, inner)?),
            other => return Err(Error::Unsupported { op: "log_softmax (fused)", device: other.device_name() }),
        };
        Ok(Tensor::from_op(storage, s.to_vec(), &[self], LogSoftmaxBackward { axis: a, outer, n, inner }))
    }
}
