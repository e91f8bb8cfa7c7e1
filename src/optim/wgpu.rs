//! Fused SGD and Adam updates on wgpu (device code in `shaders/optim.wgsl`): parameters and optimizer
//! state are updated in place on the device, one dispatch per parameter.

use crate::backend::wgpu::{WORKGROUP_SIZE, WgpuBackend, WgpuBuffer, workgroups_for};
use crate::storage::Storage;
use crate::tensor::Tensor;
use crate::{Error, Result};

const SHADER: &str = "optim.wgsl";

/// Host mirror of `Params` in optim.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub n: u32,
    pub flags: u32,
    pub lr: f32,
    pub weight_decay: f32,
    pub c0: f32,
    pub c1: f32,
    pub eps: f32,
    pub bc1: f32,
    pub bc2: f32,
    pub _pad: [f32; 3],
}

/// True when every tensor is a wgpu tensor of one device (then the fused update applies).
pub(crate) fn all_wgpu(ts: &[&Tensor]) -> bool {
    let guards: Vec<_> = ts.iter().map(|t| t.storage()).collect();
    let Storage::Wgpu(first) = &*guards[0] else { return false };
    guards.iter().all(|g| matches!(&**g, Storage::Wgpu(w) if std::sync::Arc::ptr_eq(&w.backend, &first.backend)))
}

fn wgpu_of<'a>(opt: &'static str, s: &'a Storage) -> Result<&'a crate::storage::WgpuStorage> {
    match s {
        Storage::Wgpu(w) => Ok(w),
        #[allow(unreachable_patterns)]
        other => Err(Error::Mismatch { op: opt, msg: format!("the fused update needs wgpu tensors, got one on {}", other.device_name()) }),
    }
}

/// Run `entry` with `param` (updated in place), `grad` and the state tensors bound at 0, 1, 2, 3.
pub(crate) fn update(opt: &'static str, entry: &str, param: &Tensor, grad: &Tensor, state: &[&Tensor], mut p: Params) -> Result<()> {
    let n = param.numel();
    p.n = u32::try_from(n).map_err(|_| Error::shape(opt, format!("{n} elements exceed the shader's u32 indexing")))?;
    let pg = param.storage();
    let gg = grad.storage();
    let sg: Vec<_> = state.iter().map(|t| t.storage()).collect();
    let pw = wgpu_of(opt, &pg)?;
    let mut bound: Vec<(u32, &WgpuBuffer)> = vec![(0, &pw.buf), (1, &wgpu_of(opt, &gg)?.buf)];
    for (i, g) in sg.iter().enumerate() {
        bound.push((2 + i as u32, &wgpu_of(opt, g)?.buf));
    }
    let be: &WgpuBackend = &pw.backend;
    be.dispatch_at(SHADER, entry, &bound, 4, bytemuck::bytes_of(&p), workgroups_for(n, WORKGROUP_SIZE))
}
