//! The tensor: a shape, a shared storage, and (when gradients are tracked) the node that made it.
//!
//! Tensors are always contiguous and row-major. A tensor is a cheap handle (`Arc`): cloning shares the
//! data. Values never change in place, except parameters that an optimizer updates through
//! [`Tensor::assign`] after the backward pass.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use crate::autograd::{self, Backward, Node};
use crate::device::Device;
use crate::dtype::{DType, Float};
use crate::rng::Rng;
use crate::shape::{fmt_shape, numel};
use crate::storage::{CpuStorage, Storage};
use crate::{Error, Result};

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);
static LIVE_TENSORS: AtomicUsize = AtomicUsize::new(0);

/// Number of tensor objects alive in this process (each owns or shares one storage). A training loop that
/// frees its graphs keeps this flat; a leak shows up as growth.
pub fn live_tensor_count() -> usize {
    LIVE_TENSORS.load(Ordering::Relaxed)
}

pub(crate) struct Inner {
    pub(crate) id: usize,
    pub(crate) shape: Vec<usize>,
    pub(crate) storage: Arc<RwLock<Storage>>,
    pub(crate) requires_grad: AtomicBool,
    pub(crate) node: Option<Node>,
    pub(crate) grad: Mutex<Option<Tensor>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        LIVE_TENSORS.fetch_sub(1, Ordering::Relaxed);
        // Free long chains of nodes iteratively: a deep graph dropped recursively could overflow the stack.
        let mut stack: Vec<Tensor> = match self.node.take() {
            Some(n) => n.inputs,
            None => return,
        };
        while let Some(t) = stack.pop() {
            if let Ok(mut inner) = Arc::try_unwrap(t.0) {
                if let Some(n) = inner.node.take() {
                    stack.extend(n.inputs);
                }
            }
        }
    }
}

#[derive(Clone)]
pub struct Tensor(pub(crate) Arc<Inner>);

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor{} {} on {}", fmt_shape(self.shape()), self.dtype(), self.device().name())
    }
}

impl Tensor {
    // ---------------------------------------------------------------- construction

    pub(crate) fn from_storage(storage: Storage, shape: Vec<usize>) -> Tensor {
        Self::make(Arc::new(RwLock::new(storage)), shape, None)
    }

    fn make(storage: Arc<RwLock<Storage>>, shape: Vec<usize>, node: Option<Node>) -> Tensor {
        debug_assert_eq!(storage.read().unwrap().len(), numel(&shape));
        crate::cpu::tune_allocator();
        LIVE_TENSORS.fetch_add(1, Ordering::Relaxed);
        Tensor(Arc::new(Inner {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            shape,
            storage,
            requires_grad: AtomicBool::new(false),
            node,
            grad: Mutex::new(None),
        }))
    }

    /// Result of an op: records the backward rule when gradients are enabled and an input tracks them.
    pub(crate) fn from_op(
        storage: Storage,
        shape: Vec<usize>,
        inputs: &[&Tensor],
        op: impl Backward + 'static,
    ) -> Tensor {
        Self::from_op_shared(Arc::new(RwLock::new(storage)), shape, inputs, op)
    }

    /// As [`from_op`], sharing an existing storage (zero-copy ops such as reshape).
    pub(crate) fn from_op_shared(
        storage: Arc<RwLock<Storage>>,
        shape: Vec<usize>,
        inputs: &[&Tensor],
        op: impl Backward + 'static,
    ) -> Tensor {
        let node = if autograd::is_grad_enabled() && inputs.iter().any(|t| t.tracks_grad()) {
            Some(Node {
                op: Box::new(op),
                inputs: inputs.iter().map(|t| (*t).clone()).collect(),
            })
        } else {
            None
        };
        Self::make(storage, shape, node)
    }

    pub fn from_vec<T: Float>(data: Vec<T>, shape: &[usize]) -> Result<Tensor> {
        if data.len() != numel(shape) {
            return Err(Error::shape(
                "from_vec",
                format!("{} values do not fill shape {}", data.len(), fmt_shape(shape)),
            ));
        }
        Ok(Self::from_storage(Storage::Cpu(T::into_storage(data)), shape.to_vec()))
    }

    pub fn from_f64_vec(data: &[f64], shape: &[usize], dtype: DType) -> Result<Tensor> {
        match dtype {
            DType::F32 => Self::from_vec(data.iter().map(|&x| x as f32).collect(), shape),
            DType::F64 => Self::from_vec(data.to_vec(), shape),
        }
    }

    pub fn full(shape: &[usize], value: f64, dtype: DType) -> Tensor {
        let n = numel(shape);
        let s = match dtype {
            DType::F32 => CpuStorage::F32(vec![value as f32; n]),
            DType::F64 => CpuStorage::F64(vec![value; n]),
        };
        Self::from_storage(Storage::Cpu(s), shape.to_vec())
    }

    pub fn zeros(shape: &[usize], dtype: DType) -> Tensor {
        Self::full(shape, 0.0, dtype)
    }

    pub fn ones(shape: &[usize], dtype: DType) -> Tensor {
        Self::full(shape, 1.0, dtype)
    }

    pub fn scalar(value: f64, dtype: DType) -> Tensor {
        Self::full(&[], value, dtype)
    }

    /// Same shape, dtype and device as `self`, filled with `value`.
    pub fn full_like(&self, value: f64) -> Result<Tensor> {
        Tensor::full(self.shape(), value, self.dtype()).to_device(&self.device())
    }

    pub fn zeros_like(&self) -> Result<Tensor> {
        self.full_like(0.0)
    }

    pub fn ones_like(&self) -> Result<Tensor> {
        self.full_like(1.0)
    }

    /// Standard normal values times `std`.
    pub fn randn(shape: &[usize], std: f64, dtype: DType, rng: &mut Rng) -> Tensor {
        let v: Vec<f64> = (0..numel(shape)).map(|_| rng.normal() * std).collect();
        Self::from_f64_vec(&v, shape, dtype).expect("shape and length agree by construction")
    }

    /// Uniform values in [lo, hi).
    pub fn rand_uniform(shape: &[usize], lo: f64, hi: f64, dtype: DType, rng: &mut Rng) -> Tensor {
        let v: Vec<f64> = (0..numel(shape)).map(|_| lo + (hi - lo) * rng.uniform()).collect();
        Self::from_f64_vec(&v, shape, dtype).expect("shape and length agree by construction")
    }

    // ---------------------------------------------------------------- properties

    pub fn id(&self) -> usize {
        self.0.id
    }
    pub fn shape(&self) -> &[usize] {
        &self.0.shape
    }
    pub fn rank(&self) -> usize {
        self.0.shape.len()
    }
    pub fn numel(&self) -> usize {
        numel(&self.0.shape)
    }
    pub fn dtype(&self) -> DType {
        self.storage().dtype()
    }
    pub fn device(&self) -> Device {
        self.storage().device()
    }
    pub fn storage(&self) -> RwLockReadGuard<'_, Storage> {
        self.0.storage.read().expect("storage lock poisoned")
    }
    pub(crate) fn storage_arc(&self) -> &Arc<RwLock<Storage>> {
        &self.0.storage
    }
    pub fn dims4(&self, op: &'static str) -> Result<(usize, usize, usize, usize)> {
        crate::shape::dims4(op, self.shape())
    }

    // ---------------------------------------------------------------- data access

    /// Copy the values out as `T` (which must be the tensor's dtype). GPU tensors are read back.
    pub fn to_vec<T: Float>(&self) -> Result<Vec<T>> {
        let cpu = self.to_cpu_storage()?;
        T::slice_of(&cpu).map(|s| s.to_vec()).ok_or_else(|| Error::Mismatch {
            op: "to_vec",
            msg: format!("tensor is {}, asked for {}", cpu.dtype(), T::DTYPE),
        })
    }

    /// Values as f64 whatever the dtype (for checks and reports).
    pub fn to_vec_f64(&self) -> Result<Vec<f64>> {
        Ok(self.to_cpu_storage()?.to_f64_vec())
    }

    pub fn to_vec_f32(&self) -> Result<Vec<f32>> {
        Ok(self.to_cpu_storage()?.to_f32_vec())
    }

    /// The single value of a one-element tensor.
    pub fn item(&self) -> Result<f64> {
        if self.numel() != 1 {
            return Err(Error::shape("item", format!("needs one element, tensor has shape {}", fmt_shape(self.shape()))));
        }
        Ok(self.to_vec_f64()?[0])
    }

    pub(crate) fn to_cpu_storage(&self) -> Result<CpuStorage> {
        self.storage().to_cpu()
    }

    /// Move to a device (no-op if already there). Differentiable: the gradient moves back.
    pub fn to_device(&self, device: &Device) -> Result<Tensor> {
        if self.device() == *device {
            return Ok(self.clone());
        }
        let _p = crate::profile::scope("to_device", 0.0, crate::profile::bytes_of(self, self.numel()));
        let cpu = self.to_cpu_storage()?;
        let storage = Storage::from_cpu(cpu, device)?;
        Ok(Tensor::from_op(storage, self.shape().to_vec(), &[self], ToDeviceBackward(self.device())))
    }

    /// Move this tensor's data to `device` in place, keeping its identity: a model's parameters stay the
    /// same tensors (optimizers and modules keep referring to them) while their storage moves. Any
    /// accumulated gradient is dropped (it lives on the old device). Not differentiable: for leaves.
    pub fn move_to_device_(&self, device: &Device) -> Result<()> {
        if self.device() == *device {
            return Ok(());
        }
        let new = Storage::from_cpu(self.to_cpu_storage()?, device)?;
        *self.0.storage.write().expect("storage lock poisoned") = new;
        self.zero_grad();
        Ok(())
    }

    /// Convert the element type. Differentiable: the gradient is converted back.
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        if self.dtype() == dtype {
            return Ok(self.clone());
        }
        let storage = match &*self.storage() {
            Storage::Cpu(s) => Storage::Cpu(s.cast(dtype)),
            #[allow(unreachable_patterns)]
            other => {
                return Err(Error::Unsupported { op: "to_dtype (GPU tensors are f32)", device: other.device_name() });
            }
        };
        let from = self.dtype();
        Ok(Tensor::from_op(storage, self.shape().to_vec(), &[self], ToDTypeBackward(from)))
    }

    /// A tensor sharing this one's data but outside any graph.
    pub fn detach(&self) -> Tensor {
        Self::make(self.0.storage.clone(), self.shape().to_vec(), None)
    }

    /// A deep copy (new storage), outside any graph.
    pub fn copy(&self) -> Result<Tensor> {
        let storage = self.storage().duplicate()?;
        Ok(Self::from_storage(storage, self.shape().to_vec()))
    }

    /// Replace the values of this tensor with those of `src` (same shape, dtype and device). Used by
    /// optimizers and weight loading; everything sharing the storage sees the new values.
    pub fn assign(&self, src: &Tensor) -> Result<()> {
        if src.shape() != self.shape() || src.dtype() != self.dtype() || src.device() != self.device() {
            return Err(Error::Mismatch {
                op: "assign",
                msg: format!(
                    "cannot assign {} {} on {} to {} {} on {}",
                    fmt_shape(src.shape()), src.dtype(), src.device().name(),
                    fmt_shape(self.shape()), self.dtype(), self.device().name()
                ),
            });
        }
        if Arc::ptr_eq(&self.0.storage, &src.0.storage) {
            return Ok(());
        }
        let _p = crate::profile::scope("assign", 0.0, crate::profile::bytes_of(self, 2 * self.numel()));
        let new = src.storage().duplicate()?;
        *self.0.storage.write().expect("storage lock poisoned") = new;
        Ok(())
    }

    // ---------------------------------------------------------------- gradients

    /// Mark a leaf as a parameter whose gradient `backward` fills.
    pub fn requires_grad_(self, on: bool) -> Tensor {
        self.0.requires_grad.store(on, Ordering::Relaxed);
        self
    }
    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad.load(Ordering::Relaxed)
    }
    /// True when this tensor takes part in differentiation (a parameter, or made from one).
    pub fn tracks_grad(&self) -> bool {
        self.requires_grad() || self.0.node.is_some()
    }
    pub fn grad(&self) -> Option<Tensor> {
        self.0.grad.lock().expect("grad lock poisoned").clone()
    }
    pub fn zero_grad(&self) {
        *self.0.grad.lock().expect("grad lock poisoned") = None;
    }
    pub(crate) fn set_grad(&self, g: Option<Tensor>) {
        *self.0.grad.lock().expect("grad lock poisoned") = g;
    }
    pub(crate) fn node(&self) -> Option<&Node> {
        self.0.node.as_ref()
    }
    /// Name of the op that produced this tensor (`None` for leaves).
    pub fn op_name(&self) -> Option<&'static str> {
        self.0.node.as_ref().map(|n| n.op.name())
    }
}

struct ToDeviceBackward(Device);
impl Backward for ToDeviceBackward {
    fn name(&self) -> &'static str {
        "to_device"
    }
    fn backward(&self, _: &[Tensor], _: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.to_device(&self.0)?)])
    }
}

struct ToDTypeBackward(DType);
impl Backward for ToDTypeBackward {
    fn name(&self) -> &'static str {
        "to_dtype"
    }
    fn backward(&self, _: &[Tensor], _: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.to_dtype(self.0)?)])
    }
}
