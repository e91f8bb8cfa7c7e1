// Reductions over the middle axis of an (outer, red, inner) view of a contiguous tensor (src/ops/reduce):
// sums (the host permutes first when the reduced axes are not one contiguous run) and max with its argmax,
// plus max's backward.
//
// Bindings: x (0), y (1), idx (2, u32 argmax indices, only the max entry points), uniform (3). Host side:
// src/ops/reduce/wgpu.rs, through `dispatch_at` so that the sums can leave binding 2 out.

const WG: u32 = 64u;

struct Params {
    outer: u32,
    red: u32,
    inner: u32,
    // outer * inner: the number of outputs.
    n_out: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> idx: array<u32>;
@group(0) @binding(3) var<uniform> p: Params;

var<workgroup> partial: array<f32, 64>;

fn linear(wg: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return (wg.z * nwg.y + wg.y) * nwg.x + wg.x;
}

// One thread per output: for many outputs with short reductions (per-row sums of a batch, sum_to of a
// broadcast gradient). Consecutive threads read consecutive `inner` positions, so loads stay coalesced.
@compute @workgroup_size(64)
fn sum_thread(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let j = linear(wg, nwg) * WG + lidx;
    if (j >= p.n_out) {
        return;
    }
    let o = j / p.inner;
    let i = j % p.inner;
    var acc = 0.0;
    var at = o * p.red * p.inner + i;
    for (var r = 0u; r < p.red; r++) {
        acc += x[at];
        at += p.inner;
    }
    y[j] = acc;
}

// One workgroup per output: for few outputs with long reductions (sum of everything, per-channel sums).
// Each thread sums a strided share, then a tree in workgroup memory adds the 64 partial sums; the order
// is fixed, so results do not vary from run to run.
@compute @workgroup_size(64)
fn sum_group(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    // Uniform per workgroup, so the early exit cannot split a workgroup at the barriers below.
    let j = linear(wg, nwg);
    if (j >= p.n_out) {
        return;
    }
    let o = j / p.inner;
    let i = j % p.inner;
    let base = o * p.red * p.inner + i;
    var acc = 0.0;
    for (var r = lidx; r < p.red; r += WG) {
        acc += x[base + r * p.inner];
    }
    partial[lidx] = acc;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (lidx < s) {
            partial[lidx] += partial[lidx + s];
        }
        workgroupBarrier();
    }
    if (lidx == 0u) {
        y[j] = partial[0];
    }
}

// Max over the middle axis and the index of the first maximum, as the CPU kernel: a NaN maximum is
// replaced by the next real value.
@compute @workgroup_size(64)
fn max_axis(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let j = linear(wg, nwg) * WG + lidx;
    if (j >= p.n_out) {
        return;
    }
    let o = j / p.inner;
    let i = j % p.inner;
    let base = o * p.red * p.inner + i;
    var best = x[base];
    var bi = 0u;
    for (var k = 1u; k < p.red; k++) {
        let v = x[base + k * p.inner];
        if (v > best || (best != best && v == v)) {
            best = v;
            bi = k;
        }
    }
    y[j] = best;
    idx[j] = bi;
}

// Backward of max_axis as a gather (no atomics): every input position takes the output gradient if it
// was the argmax of its row, else 0. Here x is the output gradient (outer, inner), y the input gradient.
@compute @workgroup_size(64)
fn max_backward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let t = linear(wg, nwg) * WG + lidx;
    if (t >= p.n_out * p.red) {
        return;
    }
    let i = t % p.inner;
    let k = (t / p.inner) % p.red;
    let o = t / (p.inner * p.red);
    let j = o * p.inner + i;
    y[t] = select(0.0, x[j], idx[j] == k);
}
