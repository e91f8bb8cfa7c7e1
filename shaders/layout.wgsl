// Strided copy: the one kernel behind every layout op on wgpu (permute/transpose, broadcast_to, narrow,
// its backward, concat). Tensors are contiguous, so each of those is a copy between two strided views:
//   dst[dst_off + sum_d c_d * dst_strides[d]] = src[src_off + sum_d c_d * src_strides[d]]
// over all coordinates c of `shape` (rank <= 6). A zero source stride repeats (broadcast); offsets and
// destination strides place a block inside a larger tensor (concat, narrow backward).
//
// Dispatch convention as in elementwise.wgsl.

const WG: u32 = 64u;

struct Params {
    n: u32,
    rank: u32,
    src_off: u32,
    dst_off: u32,
    // Six u32 per array packed as two vec4 (uniform arrays need a 16-byte element stride).
    shape: array<vec4<u32>, 2>,
    src_strides: array<vec4<u32>, 2>,
    dst_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

fn axis(v: array<vec4<u32>, 2>, d: u32) -> u32 {
    return v[d / 4u][d % 4u];
}

@compute @workgroup_size(64)
fn strided_copy(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let i = ((wg.z * nwg.y + wg.y) * nwg.x + wg.x) * WG + lidx;
    if (i >= p.n) {
        return;
    }
    var rem = i;
    var is = p.src_off;
    var id = p.dst_off;
    for (var k = 0u; k < p.rank; k++) {
        let d = p.rank - 1u - k;
        let size = axis(p.shape, d);
        let c = rem % size;
        rem = rem / size;
        is += c * axis(p.src_strides, d);
        id += c * axis(p.dst_strides, d);
    }
    dst[id] = src[is];
}

// Fast path of the same copy when the view is `rows` runs of `cols` contiguous elements on both sides
// (concat, narrow and its backward, after the host merged the axes): shape = (rows, cols, col_blocks),
// strides[0] = the row strides. Each workgroup copies 256 consecutive columns of one row, so the only
// division is per workgroup (uniform) instead of per element: integer division by a runtime value runs
// lane by lane on CPU SIMD, and dominated the general kernel on lavapipe.
@compute @workgroup_size(64)
fn copy_rows(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let w = (wg.z * nwg.y + wg.y) * nwg.x + wg.x;
    let rows = axis(p.shape, 0u);
    let cols = axis(p.shape, 1u);
    let blocks = axis(p.shape, 2u);
    let row = w / blocks;
    if (row >= rows) {
        return;
    }
    let c0 = (w % blocks) * 256u + lidx;
    let s = p.src_off + row * axis(p.src_strides, 0u);
    let d = p.dst_off + row * axis(p.dst_strides, 0u);
    for (var q = 0u; q < 4u; q++) {
        let c = c0 + 64u * q;
        if (c < cols) {
            dst[d + c] = src[s + c];
        }
    }
}
