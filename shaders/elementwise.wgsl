// Element-wise binary ops on flat f32 storage buffers.
//
// Dispatch convention (shared with `WgpuBackend::dispatch`): the host splits a 1-D count of workgroups over
// x (and y, z) because one dimension may hold at most 65535 workgroups; every entry point therefore rebuilds
// a linear invocation index from workgroup_id and num_workgroups and drops the tail past `n`.
//
// Every entry point of this file shares one uniform struct: auto-derived pipeline layouts put the uniform at
// the binding right after the storage buffers, and one struct per file keeps a single host-side mirror
// (`Params` in src/ops/binary/wgpu.rs) in sync with it.

const WG: u32 = 64u;
const MAX_RANK: u32 = 6u;

struct Params {
    // Number of output elements.
    n: u32,
    // Number of axes in use (<= 6); unused only by `add`.
    rank: u32,
    // Op code of `binary` (add 0, sub 1, mul 2, div 3, maximum 4, ge 5; `op_code` in
    // src/ops/binary/wgpu.rs); unused by `add` and `add_broadcast`.
    op: u32,
    _pad1: u32,
    // Six u32 per array, packed as two vec4: uniform arrays need a 16-byte element stride, so a plain
    // array<u32, 6> would not be allowed in the uniform address space.
    out_shape: array<vec4<u32>, 2>,
    // Element strides of each input over the *output* axes; 0 on axes where that input is broadcast.
    a_strides: array<vec4<u32>, 2>,
    b_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

fn linear_id(wg: vec3<u32>, nwg: vec3<u32>, lidx: u32) -> u32 {
    return ((wg.z * nwg.y + wg.y) * nwg.x + wg.x) * WG + lidx;
}

fn axis(v: array<vec4<u32>, 2>, d: u32) -> u32 {
    return v[d / 4u][d % 4u];
}

@compute @workgroup_size(64)
fn add(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let i = linear_id(wg, nwg, lidx);
    if (i >= p.n) {
        return;
    }
    out[i] = a[i] + b[i];
}

@compute @workgroup_size(64)
fn add_broadcast(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let i = linear_id(wg, nwg, lidx);
    if (i >= p.n) {
        return;
    }
    // Peel output coordinates off from the innermost axis outwards; a zero stride makes the broadcast input
    // re-read the same element along that axis, so no expanded copy of it is ever materialised.
    var rem = i;
    var ia = 0u;
    var ib = 0u;
    for (var k = 0u; k < p.rank; k++) {
        let d = p.rank - 1u - k;
        let size = axis(p.out_shape, d);
        let coord = rem % size;
        rem = rem / size;
        ia += coord * axis(p.a_strides, d);
        ib += coord * axis(p.b_strides, d);
    }
    out[i] = a[ia] + b[ib];
}

// Same comparisons as the CPU kernel (src/ops/binary/cpu.rs), so NaN handling agrees: maximum keeps `x`
// only when x >= y holds.
fn combine(op: u32, x: f32, y: f32) -> f32 {
    switch op {
        case 0u: { return x + y; }
        case 1u: { return x - y; }
        case 2u: { return x * y; }
        case 3u: { return x / y; }
        case 4u: { return select(y, x, x >= y); }
        case 5u: { return select(0.0, 1.0, x >= y); }
        default: { return x; }
    }
}

// Every broadcasting binary op: indices as in `add_broadcast`; with rank 0 (same shapes, contiguous) the
// index loop does nothing and both inputs are read at i, which the host uses for the dense case.
@compute @workgroup_size(64)
fn binary(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let i = linear_id(wg, nwg, lidx);
    if (i >= p.n) {
        return;
    }
    var ia = i;
    var ib = i;
    if (p.rank > 0u) {
        var rem = i;
        ia = 0u;
        ib = 0u;
        for (var k = 0u; k < p.rank; k++) {
            let d = p.rank - 1u - k;
            let size = axis(p.out_shape, d);
            let coord = rem % size;
            rem = rem / size;
            ia += coord * axis(p.a_strides, d);
            ib += coord * axis(p.b_strides, d);
        }
    }
    out[i] = combine(p.op, a[ia], b[ib]);
}
