// Fused optimizer updates (src/optim), so that parameters and optimizer state never leave the device and
// one dispatch replaces the five to ten element-wise ops of the composite update. The rules are those of
// src/optim/sgd.rs and src/optim/adam.rs (PyTorch's), evaluated in f32.
//
// Bindings: param (0, updated in place), grad (1), state buffers (2, 3), uniform (4); `sgd_plain` (no
// momentum) binds no state. Host: src/optim/wgpu.rs through `dispatch_at`.

const WG: u32 = 64u;

struct Params {
    n: u32,
    // sgd: bit 0 first step (the momentum buffer starts as d), bit 1 nesterov. adam: bit 0 decoupled
    // weight decay (AdamW).
    flags: u32,
    lr: f32,
    weight_decay: f32,
    // sgd: momentum, dampening. adam: beta1, beta2.
    c0: f32,
    c1: f32,
    // adam: eps, and the bias corrections 1 - beta1^t, 1 - beta2^t.
    eps: f32,
    bc1: f32,
    bc2: f32,
    _pad0: f32,
    _pad1: f32,
    _pad2: f32,
}

@group(0) @binding(0) var<storage, read_write> param: array<f32>;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> s0: array<f32>;
@group(0) @binding(3) var<storage, read_write> s1: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

fn linear(wg: vec3<u32>, nwg: vec3<u32>, lidx: u32) -> u32 {
    return ((wg.z * nwg.y + wg.y) * nwg.x + wg.x) * WG + lidx;
}

@compute @workgroup_size(64)
fn sgd_plain(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let i = linear(wg, nwg, lidx);
    if (i >= p.n) {
        return;
    }
    let w = param[i];
    let d = grad[i] + p.weight_decay * w;
    param[i] = w - p.lr * d;
}

// s0 = momentum buffer.
@compute @workgroup_size(64)
fn sgd_momentum(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let i = linear(wg, nwg, lidx);
    if (i >= p.n) {
        return;
    }
    let w = param[i];
    var d = grad[i] + p.weight_decay * w;
    var buf = d;
    if ((p.flags & 1u) == 0u) {
        buf = p.c0 * s0[i] + (1.0 - p.c1) * d;
    }
    s0[i] = buf;
    if ((p.flags & 2u) != 0u) {
        d = d + p.c0 * buf;
    } else {
        d = buf;
    }
    param[i] = w - p.lr * d;
}

// s0 = first moment m, s1 = second moment v.
@compute @workgroup_size(64)
fn adam(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let i = linear(wg, nwg, lidx);
    if (i >= p.n) {
        return;
    }
    let w = param[i];
    var g = grad[i];
    var base = w;
    if ((p.flags & 1u) != 0u) {
        base = w * (1.0 - p.lr * p.weight_decay);
    } else {
        g = g + p.weight_decay * w;
    }
    let m = p.c0 * s0[i] + (1.0 - p.c0) * g;
    let v = p.c1 * s1[i] + (1.0 - p.c1) * g * g;
    s0[i] = m;
    s1[i] = v;
    let denom = sqrt(v) / sqrt(p.bc2) + p.eps;
    param[i] = base - (p.lr / p.bc1) * (m / denom);
}
