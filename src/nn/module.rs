//! The [`Module`] trait: a forward function plus named parameters (trained) and buffers (saved, not
//! trained, e.g. batch-norm running statistics). Names are joined with `.` like PyTorch's state dicts, so a
//! checkpoint's keys read `0.weight`, `3.running_mean`, `encoder.1.bias`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::safetensors_io::{self, SaveDType, Weights};
use crate::tensor::Tensor;
use crate::Result;

pub trait Module {
    fn forward(&self, x: &Tensor) -> Result<Tensor>;

    /// Trainable tensors, with their names relative to this module.
    fn named_parameters(&self) -> Vec<(String, Tensor)>;

    /// Saved but not trained tensors (running statistics).
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        vec![]
    }

    /// Switch between training and evaluation behaviour (batch norm). Containers forward it to children.
    fn set_training(&self, _on: bool) {}

    fn parameters(&self) -> Vec<Tensor> {
        self.named_parameters().into_iter().map(|(_, t)| t).collect()
    }

    /// Parameters then buffers: everything a checkpoint holds.
    fn state_dict(&self) -> Vec<(String, Tensor)> {
        let mut v = self.named_parameters();
        v.extend(self.named_buffers());
        v
    }

    /// Move every parameter and buffer to `device` in place (see [`Tensor::move_to_device_`]), so that an
    /// optimizer built before or after the move updates the same tensors.
    fn to_device(&self, device: &crate::device::Device) -> Result<()> {
        for (_, t) in self.state_dict() {
            t.move_to_device_(device)?;
        }
        Ok(())
    }

    /// Drop the accumulated gradients of every parameter.
    fn zero_grad(&self) {
        for p in self.parameters() {
            p.zero_grad();
        }
    }

    /// Number of trainable scalars.
    fn num_parameters(&self) -> usize {
        self.named_parameters().iter().map(|(_, t)| t.numel()).sum()
    }
}

impl<M: Module + ?Sized> Module for Box<M> {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        (**self).forward(x)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        (**self).named_parameters()
    }
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        (**self).named_buffers()
    }
    fn set_training(&self, on: bool) {
        (**self).set_training(on)
    }
}

/// `prefix.name` (just `name` when the prefix is empty).
pub fn join_name(prefix: &str, name: &str) -> String {
    if prefix.is_empty() { name.to_string() } else { format!("{prefix}.{name}") }
}

/// Prefix every name of a child's list (`weight` -> `conv1.weight`).
pub fn prefixed(prefix: &str, named: Vec<(String, Tensor)>) -> Vec<(String, Tensor)> {
    named.into_iter().map(|(n, t)| (join_name(prefix, &n), t)).collect()
}

/// Save a module's state dict (parameters and buffers) to a safetensors file.
pub fn save_module(
    m: &dyn Module,
    path: &Path,
    metadata: &BTreeMap<String, String>,
    dtype: SaveDType,
) -> Result<()> {
    safetensors_io::save(path, &m.state_dict(), metadata, dtype)
}

/// Load a safetensors file into a module's parameters and buffers (see [`safetensors_io::load_into`]).
/// Returns the tensors of the file that were not used, and its metadata.
pub fn load_module(m: &dyn Module, path: &Path, strict: bool) -> Result<Weights> {
    safetensors_io::load_into(path, &m.state_dict(), strict)
}
