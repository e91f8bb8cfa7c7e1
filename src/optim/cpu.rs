//! Fused CPU optimizer updates: one pass over each parameter that reads the gradient and updates the
//! parameter and its moment buffers in place, instead of the dozen whole-tensor ops (each a pass and an
//! allocation) that the op-by-op rule costs. Same arithmetic as the op-by-op rule in `adam.rs`.

use rayon::prelude::*;

use crate::storage::{CpuStorage, Storage};
use crate::tensor::Tensor;

/// Adam/AdamW hyper-parameters for one update (bias corrections for this step included).
#[derive(Clone, Copy)]
pub(crate) struct AdamStep {
    pub lr: f64,
    pub b1: f64,
    pub b2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// AdamW (decay the parameter) rather than Adam (decay added to the gradient).
    pub decoupled: bool,
    pub bc1: f64,
    pub bc2: f64,
}

/// Update `p`, `m`, `v` in place from `g` if all four are f32 CPU tensors of one shape and the moments
/// are the optimizer's alone (no exported copy shares them). Returns false, touching nothing, otherwise.
pub(crate) fn adam_update(p: &Tensor, g: &Tensor, m: &Tensor, v: &Tensor, h: AdamStep) -> bool {
    let same = [g, m, v].iter().all(|t| t.shape() == p.shape());
    if !same || !crate::autograd::is_unique(m) || !crate::autograd::is_unique(v) {
        return false;
    }
    let gs = g.storage();
    let Storage::Cpu(CpuStorage::F32(gd)) = &*gs else { return false };
    let (mut ps, mut ms, mut vs) = (write(p), write(m), write(v));
    let (Storage::Cpu(CpuStorage::F32(pd)), Storage::Cpu(CpuStorage::F32(md)), Storage::Cpu(CpuStorage::F32(vd))) =
        (&mut *ps, &mut *ms, &mut *vs)
    else {
        return false;
    };
    let _p = crate::profile::scope("adam_update", 10.0 * pd.len() as f64, 4.0 * 7.0 * pd.len() as f64);
    let (lr, b1, b2, eps, wd) = (h.lr as f32, h.b1 as f32, h.b2 as f32, h.eps as f32, h.weight_decay as f32);
    let (step, inv_sqrt_bc2) = ((h.lr / h.bc1) as f32, (1.0 / h.bc2.sqrt()) as f32);
    let decay = if h.decoupled { 1.0 - lr * wd } else { 1.0 };
    let update = |(((pc, mc), vc), gc): (((&mut [f32], &mut [f32]), &mut [f32]), &[f32])| {
        for (((pv, mv), vv), &gv) in pc.iter_mut().zip(mc.iter_mut()).zip(vc.iter_mut()).zip(gc) {
            let gv = if h.decoupled { gv } else { gv + wd * *pv };
            *mv = b1 * *mv + (1.0 - b1) * gv;
            *vv = b2 * *vv + (1.0 - b2) * gv * gv;
            let denom = vv.sqrt() * inv_sqrt_bc2 + eps;
            *pv = *pv * decay - *mv / denom * step;
        }
    };
    const CHUNK: usize = 1 << 13;
    if pd.len() >= 4 * CHUNK {
        pd.par_chunks_mut(CHUNK).zip(md.par_chunks_mut(CHUNK)).zip(vd.par_chunks_mut(CHUNK)).zip(gd.par_chunks(CHUNK)).for_each(update);
    } else {
        update((((&mut pd[..], &mut md[..]), &mut vd[..]), &gd[..]));
    }
    true
}

fn write(t: &Tensor) -> std::sync::RwLockWriteGuard<'_, Storage> {
    t.storage_arc().write().unwrap_or_else(|e| e.into_inner())
}
