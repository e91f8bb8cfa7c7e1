// Single-level 2-D Haar DWT over NCHW f32, used to move images into the frequency domain before hiding.
//
// Layout: input (N, C, H, W) with H, W even -> output (N, 4C, H/2, W/2), channels ordered
// [LL(C), HL(C), LH(C), HH(C)] so that each sub-band is a contiguous block of C channels (the network
// consumes/produces whole sub-bands).
//
// One invocation per 2x2 input block rather than per output element: the four outputs of a block share
// the same four inputs, so this reads each input exactly once.
//
// Dispatch convention as in elementwise.wgsl: linear index rebuilt from a possibly 2-D/3-D grid.

const WG: u32 = 64u;

struct Params {
    // Number of 2x2 blocks = N * C * (H/2) * (W/2).
    blocks: u32,
    c: u32,
    h2: u32,
    w2: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn haar_dwt(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let i = ((wg.z * nwg.y + wg.y) * nwg.x + wg.x) * WG + lidx;
    if (i >= p.blocks) {
        return;
    }
    // Block index i enumerates (n, ci, r, q) in row-major order, so consecutive invocations walk along
    // a row and their reads/writes stay coalesced.
    let q = i % p.w2;
    let r = (i / p.w2) % p.h2;
    let nc = i / (p.w2 * p.h2);   // n * C + ci
    let ci = nc % p.c;
    let n = nc / p.c;

    let w = 2u * p.w2;
    let src = nc * (4u * p.h2 * p.w2) + (2u * r) * w + 2u * q;
    // Halve each pixel before summing, as the definition does: the halving is exact in binary floating
    // point, so the only rounding left is that of the three additions per sub-band.
    let a = x[src] * 0.5;          // row 0, col 0
    let c = x[src + 1u] * 0.5;     // row 0, col 1
    let b = x[src + w] * 0.5;      // row 1, col 0
    let d = x[src + w + 1u] * 0.5; // row 1, col 1

    let plane = p.h2 * p.w2;
    let dst = (n * 4u * p.c + ci) * plane + r * p.w2 + q;
    let band = p.c * plane;        // distance between the same channel of consecutive sub-bands
    y[dst] = a + b + c + d;                 // LL
    y[dst + band] = -a - b + c + d;         // HL
    y[dst + 2u * band] = -a + b - c + d;    // LH
    y[dst + 3u * band] = a - b - c + d;     // HH
}

// Inverse transform, (N, 4C, H2, W2) -> (N, C, 2*H2, 2*W2), the exact inverse (and, the transform being
// orthonormal, the adjoint) of haar_dwt. One invocation per output 2x2 block; same Params, with `blocks` =
// N * C * H2 * W2 and `c` the output channels.
@compute @workgroup_size(64)
fn haar_iwt(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let i = ((wg.z * nwg.y + wg.y) * nwg.x + wg.x) * WG + lidx;
    if (i >= p.blocks) {
        return;
    }
    let q = i % p.w2;
    let r = (i / p.w2) % p.h2;
    let nc = i / (p.w2 * p.h2);
    let ci = nc % p.c;
    let n = nc / p.c;

    let plane = p.h2 * p.w2;
    let band = p.c * plane;
    let src = (n * 4u * p.c + ci) * plane + r * p.w2 + q;
    let ll = x[src];
    let hl = x[src + band];
    let lh = x[src + 2u * band];
    let hh = x[src + 3u * band];

    let w = 2u * p.w2;
    let dst = nc * (4u * plane) + (2u * r) * w + 2u * q;
    y[dst] = (ll - hl - lh + hh) * 0.5;          // a: row 0, col 0
    y[dst + w] = (ll - hl + lh - hh) * 0.5;      // b: row 1, col 0
    y[dst + 1u] = (ll + hl - lh - hh) * 0.5;     // c: row 0, col 1
    y[dst + w + 1u] = (ll + hl + lh + hh) * 0.5; // d: row 1, col 1
}
