// Batched matrix product C[b] = A[b] (m x k) * B[b] (k x n), B optionally shared by the whole batch
// (src/ops/matmul). Tiled through workgroup memory: a workgroup of 16x16 threads computes a 64x64 tile of
// C, each thread a 4x4 block in registers; per step of 16 along k, the workgroup stages a 64x16 slab of
// A and a 16x64 slab of B in workgroup memory, so each global value is read once per tile instead of
// once per product.
//
// The workgroup grid is 1-D (spread over x/y/z by the host): workgroup t handles batch t / (tm * tn),
// tile row (t % (tm * tn)) / tn, tile column t % tn.

const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 16u;
const THREADS: u32 = 256u;

struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    tiles_m: u32,
    tiles_n: u32,
    // Elements between consecutive B matrices: k * n, or 0 when B is shared.
    b_stride: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

// Stored k-major ([kk][row]) so the inner loop reads 4 consecutive rows / columns.
var<workgroup> tile_a: array<f32, 1024>;
var<workgroup> tile_b: array<f32, 1024>;

@compute @workgroup_size(256)
fn matmul(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let t = (wg.z * nwg.y + wg.y) * nwg.x + wg.x;
    let per_batch = p.tiles_m * p.tiles_n;
    // Uniform per workgroup: no thread of a live workgroup skips the barriers.
    if (t >= per_batch * p.batch) {
        return;
    }
    let bi = t / per_batch;
    let r = t % per_batch;
    let m0 = (r / p.tiles_n) * TM;
    let n0 = (r % p.tiles_n) * TN;
    let a_base = bi * p.m * p.k;
    let b_base = bi * p.b_stride;
    let tx = lidx % 16u;
    let ty = lidx / 16u;

    var acc: array<f32, 16>;
    for (var i = 0u; i < 16u; i++) {
        acc[i] = 0.0;
    }
    for (var k0 = 0u; k0 < p.k; k0 += TK) {
        for (var q = 0u; q < 4u; q++) {
            let e = lidx + THREADS * q;
            // A: consecutive threads walk along k (contiguous in memory).
            let mm = e / TK;
            let ka = e % TK;
            var va = 0.0;
            if (m0 + mm < p.m && k0 + ka < p.k) {
                va = a[a_base + (m0 + mm) * p.k + k0 + ka];
            }
            tile_a[ka * TM + mm] = va;
            // B: consecutive threads walk along n (contiguous in memory).
            let kb = e / TN;
            let nn = e % TN;
            var vb = 0.0;
            if (k0 + kb < p.k && n0 + nn < p.n) {
                vb = b[b_base + (k0 + kb) * p.n + n0 + nn];
            }
            tile_b[kb * TN + nn] = vb;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            let av = vec4<f32>(tile_a[kk * TM + ty * 4u], tile_a[kk * TM + ty * 4u + 1u], tile_a[kk * TM + ty * 4u + 2u], tile_a[kk * TM + ty * 4u + 3u]);
            let bv = vec4<f32>(tile_b[kk * TN + tx * 4u], tile_b[kk * TN + tx * 4u + 1u], tile_b[kk * TN + tx * 4u + 2u], tile_b[kk * TN + tx * 4u + 3u]);
            for (var i = 0u; i < 4u; i++) {
                acc[i * 4u] += av[i] * bv.x;
                acc[i * 4u + 1u] += av[i] * bv.y;
                acc[i * 4u + 2u] += av[i] * bv.z;
                acc[i * 4u + 3u] += av[i] * bv.w;
            }
        }
        workgroupBarrier();
    }
    let c_base = bi * p.m * p.n;
    for (var i = 0u; i < 4u; i++) {
        let row = m0 + ty * 4u + i;
        for (var j = 0u; j < 4u; j++) {
            let col = n0 + tx * 4u + j;
            if (row < p.m && col < p.n) {
                c[c_base + row * p.n + col] = acc[i * 4u + j];
            }
        }
    }
}
