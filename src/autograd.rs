//! Reverse-mode autodiff on a dynamic tape.
//!
//! Every op result that depends on a tracked tensor keeps a [`Node`]: its inputs and a [`Backward`] rule.
//! `loss.backward()` walks the graph in reverse topological order. Backward rules are written with the
//! engine's own ops, so they run on whatever device the tensors are on. Gradients of leaves accumulate in
//! `.grad()` until zeroed. The graph lives exactly as long as the tensors that reference it.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};

use crate::shape::fmt_shape;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// The backward rule of one op.
pub trait Backward: Send + Sync {
    fn name(&self) -> &'static str;
    /// Gradients of the inputs given the gradient of the output. `out` is the op's result (so rules like
    /// `exp` can reuse it without the node keeping a reference cycle). `None` = no gradient for that input.
    fn backward(&self, inputs: &[Tensor], out: &Tensor, grad: &Tensor) -> Result<Vec<Option<Tensor>>>;

    /// [`Backward::backward`] given `acc`, the gradient accumulated so far for each input (from its other
    /// uses), returning the totals. The default computes the gradients and adds them; ops that can add
    /// into an existing buffer while they compute (the dense-block convolution, whose inputs feed several
    /// convolutions) override it to save the separate passes.
    fn backward_accumulate(
        &self,
        inputs: &[Tensor],
        out: &Tensor,
        grad: &Tensor,
        acc: Vec<Option<Tensor>>,
    ) -> Result<Vec<Option<Tensor>>> {
        accumulate_default(self, inputs, out, grad, acc)
    }
}

/// The default [`Backward::backward_accumulate`]: `backward`, then add each gradient to what was
/// accumulated. Overrides call it for the cases they do not handle themselves.
pub(crate) fn accumulate_default<B: Backward + ?Sized>(
    op: &B,
    inputs: &[Tensor],
    out: &Tensor,
    grad: &Tensor,
    acc: Vec<Option<Tensor>>,
) -> Result<Vec<Option<Tensor>>> {
    {
        let grads = op.backward(inputs, out, grad)?;
        if grads.len() != inputs.len() {
            return Err(Error::msg(format!(
                "backward of `{}` returned {} gradients for {} inputs",
                op.name(),
                grads.len(),
                inputs.len()
            )));
        }
        grads
            .into_iter()
            .zip(acc)
            .zip(inputs)
            .map(|((g, a), inp)| {
                if let Some(g) = &g {
                    check_grad_shape(op.name(), g, inp)?;
                }
                match (a, g) {
                    (Some(a), Some(g)) => add_into(a, &g).map(Some),
                    (a, g) => Ok(a.or(g)),
                }
            })
            .collect()
    }
}

fn check_grad_shape(op: &str, g: &Tensor, input: &Tensor) -> Result<()> {
    if g.shape() != input.shape() {
        return Err(Error::shape(
            "backward",
            format!("`{op}` produced a gradient of shape {} for an input of shape {}", fmt_shape(g.shape()), fmt_shape(input.shape())),
        ));
    }
    Ok(())
}

/// Whether `t` is the only handle on its storage: a gradient being accumulated can then be added to in
/// place (backward creates such tensors; a shared one, e.g. the same gradient passed to both inputs of
/// an add, is never written).
pub(crate) fn is_unique(t: &Tensor) -> bool {
    std::sync::Arc::strong_count(&t.0) == 1 && std::sync::Arc::strong_count(t.storage_arc()) == 1
}

/// `acc + g`, written into `acc`'s buffer when it is a unique CPU tensor of the same shape and dtype.
pub(crate) fn add_into(acc: Tensor, g: &Tensor) -> Result<Tensor> {
    use crate::storage::{CpuStorage, Storage};
    if acc.shape() == g.shape() && acc.dtype() == g.dtype() && is_unique(&acc) {
        let _p = crate::profile::scope("add_into", acc.numel() as f64, crate::profile::bytes_of(&acc, 3 * acc.numel()));
        let done = {
            let mut dst = acc.storage_arc().write().unwrap_or_else(|e| e.into_inner());
            let src = g.storage();
            match (&mut *dst, &*src) {
                (Storage::Cpu(CpuStorage::F32(d)), Storage::Cpu(CpuStorage::F32(s))) => {
                    crate::ops::binary::add_assign_slice(d, s);
                    true
                }
                (Storage::Cpu(CpuStorage::F64(d)), Storage::Cpu(CpuStorage::F64(s))) => {
                    crate::ops::binary::add_assign_slice(d, s);
                    true
                }
                _ => false,
            }
        };
        if done {
            return Ok(acc);
        }
    }
    acc.add(g)
}

pub(crate) struct Node {
    pub(crate) op: Box<dyn Backward>,
    pub(crate) inputs: Vec<Tensor>,
}

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// While alive, ops record nothing (evaluation, optimizer updates, backward itself).
pub struct NoGradGuard {
    prev: bool,
}

impl NoGradGuard {
    pub fn new() -> Self {
        let prev = GRAD_ENABLED.with(|g| g.replace(false));
        NoGradGuard { prev }
    }
}

impl Default for NoGradGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.prev));
    }
}

/// Run `f` with gradient recording off.
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _g = NoGradGuard::new();
    f()
}

/// Tensors reachable from `root` through tracked nodes, inputs before the tensors made from them.
fn topo_order(root: &Tensor) -> Vec<Tensor> {
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    // Iterative post-order DFS: (tensor, children pushed?)
    let mut stack = vec![(root.clone(), false)];
    while let Some((t, expanded)) = stack.pop() {
        if expanded {
            order.push(t);
            continue;
        }
        if !seen.insert(t.id()) {
            continue;
        }
        stack.push((t.clone(), true));
        if let Some(node) = t.node() {
            for inp in &node.inputs {
                if inp.tracks_grad() && !seen.contains(&inp.id()) {
                    stack.push((inp.clone(), false));
                }
            }
        }
    }
    order
}

fn accumulate(map: &mut HashMap<usize, Tensor>, id: usize, g: Tensor) -> Result<()> {
    let new = match map.remove(&id) {
        Some(old) => add_into(old, &g)?,
        None => g,
    };
    map.insert(id, new);
    Ok(())
}

impl Tensor {
    /// Backpropagate from a one-element tensor (a loss).
    pub fn backward(&self) -> Result<()> {
        if self.numel() != 1 {
            return Err(Error::shape(
                "backward",
                format!("needs a one-element loss, got shape {}; use backward_with", fmt_shape(self.shape())),
            ));
        }
        let seed = self.ones_like()?;
        self.backward_with(&seed)
    }

    /// Backpropagate a given output gradient (same shape as `self`).
    pub fn backward_with(&self, grad: &Tensor) -> Result<()> {
        if grad.shape() != self.shape() {
            return Err(Error::shape(
                "backward",
                format!("gradient shape {} differs from tensor shape {}", fmt_shape(grad.shape()), fmt_shape(self.shape())),
            ));
        }
        if !self.tracks_grad() {
            return Err(Error::msg("backward: the tensor does not depend on any tensor that requires grad"));
        }
        let _guard = NoGradGuard::new();
        let order = topo_order(self);
        let mut grads: HashMap<usize, Tensor> = HashMap::new();
        grads.insert(self.id(), grad.detach());
        for t in order.iter().rev() {
            // Taking the gradient out frees it as soon as it has been propagated.
            let Some(g) = grads.remove(&t.id()) else { continue };
            if let Some(node) = t.node() {
                // Hand the op what its inputs have accumulated so far; it returns the totals. An input
                // that appears twice gets its sum in the first slot and the second slot's gradient is
                // added by `accumulate`.
                let acc: Vec<Option<Tensor>> = node
                    .inputs
                    .iter()
                    .map(|inp| if inp.tracks_grad() { grads.remove(&inp.id()) } else { None })
                    .collect();
                let totals = node.op.backward_accumulate(&node.inputs, t, &g, acc)?;
                if totals.len() != node.inputs.len() {
                    return Err(Error::msg(format!(
                        "backward of `{}` returned {} gradients for {} inputs",
                        node.op.name(), totals.len(), node.inputs.len()
                    )));
                }
                for (inp, ig) in node.inputs.iter().zip(totals) {
                    let Some(ig) = ig else { continue };
                    if !inp.tracks_grad() {
                        continue;
                    }
                    check_grad_shape(node.op.name(), &ig, inp)?;
                    accumulate(&mut grads, inp.id(), ig)?;
                }
            } else if t.requires_grad() {
                let new = match t.grad() {
                    Some(old) => add_into(old, &g)?,
                    None => g,
                };
                t.set_grad(Some(new));
            }
        }
        Ok(())
    }
}
