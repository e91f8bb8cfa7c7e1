// index_select along the first axis (mini-batches, sample pairing) and its backward (src/ops/index_select).
// Indices are u32 in their own buffer. Bindings: x (0), y (1), idx (2), uniform (3).

const WG: u32 = 64u;

struct Params {
    // Elements per row (the product of the non-first axes).
    row: u32,
    // Number of indices.
    count: u32,
    // Rows of the source tensor (the backward's output).
    rows: u32,
    // Threads that do work: count * row (gather) or rows * row (backward).
    total: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<u32>;
@group(0) @binding(3) var<uniform> p: Params;

fn linear(wg: vec3<u32>, nwg: vec3<u32>, lidx: u32) -> u32 {
    return ((wg.z * nwg.y + wg.y) * nwg.x + wg.x) * WG + lidx;
}

@compute @workgroup_size(64)
fn gather_rows(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let t = linear(wg, nwg, lidx);
    if (t >= p.total) {
        return;
    }
    let k = t / p.row;
    y[t] = x[idx[k] * p.row + t % p.row];
}

// Backward: row i of the source gets the sum of the gradient rows of every k with idx[k] == i. Written as
// a gather over the (short) index list rather than a scatter, because WGSL has no float atomics and a
// repeated index would race.
@compute @workgroup_size(64)
fn scatter_add_rows(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let t = linear(wg, nwg, lidx);
    if (t >= p.total) {
        return;
    }
    let i = t / p.row;
    let c = t % p.row;
    var acc = 0.0;
    for (var k = 0u; k < p.count; k++) {
        if (idx[k] == i) {
            acc += x[k * p.row + c];
        }
    }
    y[t] = acc;
}
