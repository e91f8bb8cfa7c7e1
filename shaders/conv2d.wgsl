// 2-D convolution as implicit GEMM (src/ops/conv2d): forward, input gradient and weight gradient, each a
// matrix product whose operands are read straight from the NCHW tensors (im2col is never materialised):
//
//   forward      out (Cout x N*Ho*Wo)   = W (Cout x Cin*kh*kw)   * cols(x)    (Cin*kh*kw x N*Ho*Wo)
//   input grad   dx  (Cin x N*H*W)      = W^T (Cin x Cout*kh*kw) * rows(dy)   (Cout*kh*kw x N*H*W)
//   weight grad  dw  (Cout x Cin*kh*kw) = dy (Cout x N*Ho*Wo)    * cols(x)^T  (N*Ho*Wo x Cin*kh*kw)
//
// where cols(x)[(ci,i,j), (n,oh,ow)] = x[n, ci, oh*sh + i - ph, ow*sw + j - pw] (0 in the padding) and
// rows(dy)[(co,i,j), (n,ih,iw)] = dy[n, co, oh, ow] for the (oh, ow) that read (ih, iw) through tap (i, j),
// 0 when there is none. The forward pass fuses the bias and, when asked, a LeakyReLU.
//
// Blocking: a workgroup of 64 invocations owns 64 consecutive GEMM columns and 16 rows; each invocation
// keeps one column's 16 results in four vec4 accumulators. Per depth step it loads one B value (its own
// column; neighbouring invocations read neighbouring addresses) and 16 A values that are the same for the
// whole workgroup (e.g. the weights of 16 output channels), as four vec4 from the packed A operand, so
// every loaded B value feeds 16 FMAs and no workgroup memory or barrier is needed. (A 64x64 tile staged through workgroup memory, the textbook GPU
// layout, measured 3x slower on lavapipe, where a barrier switches coroutines and tile reads become
// gathers; this layout is also sound on GPUs, the A values being broadcast from cache.)
//
// No loader divides inside the k loop (integer division by a runtime value runs lane by lane on CPU
// SIMD): each invocation's column is decomposed once, and the decomposition of the depth index k comes
// from a per-shape table `ktab` built and cached on the host (src/ops/conv2d/wgpu.rs).
//
// Bindings: src0 (0, the B source), src1 (1, packed A), bias (2, forward with bias only), dst (3),
// uniform (4), ktab (5).
// The loop is written out once per entry point (WGSL has no generics); keep the copies identical except
// for their loaders and stores.

const COLS: u32 = 64u;
const ROWS: u32 = 16u;

struct Params {
    n: u32,
    cin: u32,
    h: u32,
    w: u32,
    cout: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    ph: u32,
    pw: u32,
    ho: u32,
    wo: u32,
    // GEMM sizes of this entry point: rows, columns, depth.
    gm: u32,
    gn: u32,
    gk: u32,
    // Workgroups along the rows (ceil(gm / 16)) and the columns (ceil(gn / 64)).
    tiles_m: u32,
    tiles_n: u32,
    // bit 0: add bias; bit 1: LeakyReLU with `slope` (forward only).
    flags: u32,
    slope: f32,
    // Row count of the packed A operand (gm rounded up to 16).
    mp: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> src0: array<f32>;
// The A operand packed by the host as [k][row] with the row count padded to `mp` (a multiple of 16, the
// padding zero): the 16 values a workgroup needs per depth step are four aligned vec4 loads.
@group(0) @binding(1) var<storage, read> src1: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
// Per depth index k, four u32 whose meaning depends on the entry point (see each one).
@group(0) @binding(5) var<storage, read> ktab: array<vec4<u32>>;

fn pick(c0: vec4<f32>, c1: vec4<f32>, c2: vec4<f32>, c3: vec4<f32>, i: u32) -> f32 {
    switch i / 4u {
        case 0u: { return c0[i % 4u]; }
        case 1u: { return c1[i % 4u]; }
        case 2u: { return c2[i % 4u]; }
        default: { return c3[i % 4u]; }
    }
}

// Forward: rows = Cout, columns = N*Ho*Wo, depth = Cin*kh*kw; src0 = x, src1 = w packed as [k][co].
@compute @workgroup_size(64)
fn conv2d_forward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let t = (wg.z * nwg.y + wg.y) * nwg.x + wg.x;
    if (t >= p.tiles_m * p.tiles_n) {
        return;
    }
    let r0 = (t / p.tiles_n) * ROWS;
    let col = (t % p.tiles_n) * COLS + lidx;
    let col_ok = col < p.gn;
    // Column (n, oh, ow): where its receptive field starts.
    var x_base = 0u;
    var ih0 = 0;
    var iw0 = 0;
    if (col_ok) {
        let plane = p.ho * p.wo;
        let n = col / plane;
        let pp = col % plane;
        x_base = n * p.cin * p.h * p.w;
        ih0 = i32((pp / p.wo) * p.sh) - i32(p.ph);
        iw0 = i32((pp % p.wo) * p.sw) - i32(p.pw);
    }
    var c0 = vec4<f32>(0.0);
    var c1 = vec4<f32>(0.0);
    var c2 = vec4<f32>(0.0);
    var c3 = vec4<f32>(0.0);
    for (var k = 0u; k < p.gk; k++) {
        let tk = ktab[k];
        var vb = 0.0;
        if (col_ok) {
            // ktab[k] = (unused, ci * H * W, i, j) for tap k = (ci, i, j).
            let ih = ih0 + i32(tk.z);
            let iw = iw0 + i32(tk.w);
            if (ih >= 0 && iw >= 0 && ih < i32(p.h) && iw < i32(p.w)) {
                vb = src0[x_base + tk.y + u32(ih) * p.w + u32(iw)];
            }
        }
        let ab = (k * p.mp + r0) / 4u;
        c0 += vb * src1[ab];
        c1 += vb * src1[ab + 1u];
        c2 += vb * src1[ab + 2u];
        c3 += vb * src1[ab + 3u];
    }
    if (!col_ok) {
        return;
    }
    for (var i = 0u; i < ROWS; i++) {
        let row = r0 + i;
        if (row < p.gm) {
            var v = pick(c0, c1, c2, c3, i);
            if ((p.flags & 1u) != 0u) {
                v += bias[row];
            }
            if ((p.flags & 2u) != 0u && !(v > 0.0)) {
                v = v * p.slope;
            }
            let plane = p.ho * p.wo;
            dst[((col / plane) * p.cout + row) * plane + col % plane] = v;
        }
    }
}

// Forward without bias: a separate entry point because a binding the code names must be bound.
@compute @workgroup_size(64)
fn conv2d_forward_nobias(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let t = (wg.z * nwg.y + wg.y) * nwg.x + wg.x;
    if (t >= p.tiles_m * p.tiles_n) {
        return;
    }
    let r0 = (t / p.tiles_n) * ROWS;
    let col = (t % p.tiles_n) * COLS + lidx;
    let col_ok = col < p.gn;
    // Column (n, oh, ow): where its receptive field starts.
    var x_base = 0u;
    var ih0 = 0;
    var iw0 = 0;
    if (col_ok) {
        let plane = p.ho * p.wo;
        let n = col / plane;
        let pp = col % plane;
        x_base = n * p.cin * p.h * p.w;
        ih0 = i32((pp / p.wo) * p.sh) - i32(p.ph);
        iw0 = i32((pp % p.wo) * p.sw) - i32(p.pw);
    }
    var c0 = vec4<f32>(0.0);
    var c1 = vec4<f32>(0.0);
    var c2 = vec4<f32>(0.0);
    var c3 = vec4<f32>(0.0);
    for (var k = 0u; k < p.gk; k++) {
        let tk = ktab[k];
        var vb = 0.0;
        if (col_ok) {
            // ktab[k] = (unused, ci * H * W, i, j) for tap k = (ci, i, j).
            let ih = ih0 + i32(tk.z);
            let iw = iw0 + i32(tk.w);
            if (ih >= 0 && iw >= 0 && ih < i32(p.h) && iw < i32(p.w)) {
                vb = src0[x_base + tk.y + u32(ih) * p.w + u32(iw)];
            }
        }
        let ab = (k * p.mp + r0) / 4u;
        c0 += vb * src1[ab];
        c1 += vb * src1[ab + 1u];
        c2 += vb * src1[ab + 2u];
        c3 += vb * src1[ab + 3u];
    }
    if (!col_ok) {
        return;
    }
    for (var i = 0u; i < ROWS; i++) {
        let row = r0 + i;
        if (row < p.gm) {
            var v = pick(c0, c1, c2, c3, i);
            if ((p.flags & 2u) != 0u && !(v > 0.0)) {
                v = v * p.slope;
            }
            let plane = p.ho * p.wo;
            dst[((col / plane) * p.cout + row) * plane + col % plane] = v;
        }
    }
}

// Input gradient: rows = Cin, columns = N*H*W, depth = Cout*kh*kw; src0 = dy, src1 = w packed as [(co, i, j)][ci].
@compute @workgroup_size(64)
fn conv2d_input_grad(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let t = (wg.z * nwg.y + wg.y) * nwg.x + wg.x;
    if (t >= p.tiles_m * p.tiles_n) {
        return;
    }
    let r0 = (t / p.tiles_n) * ROWS;
    let col = (t % p.tiles_n) * COLS + lidx;
    let col_ok = col < p.gn;
    // Column (n, ih, iw) of the input gradient.
    var dy_base = 0u;
    var ihp = 0;
    var iwp = 0;
    if (col_ok) {
        let plane = p.h * p.w;
        let n = col / plane;
        let q = col % plane;
        dy_base = n * p.cout * p.ho * p.wo;
        ihp = i32(q / p.w + p.ph);
        iwp = i32(q % p.w + p.pw);
    }
    let unit_stride = p.sh == 1u && p.sw == 1u;
    var c0 = vec4<f32>(0.0);
    var c1 = vec4<f32>(0.0);
    var c2 = vec4<f32>(0.0);
    var c3 = vec4<f32>(0.0);
    for (var k = 0u; k < p.gk; k++) {
        let tk = ktab[k];
        var vb = 0.0;
        if (col_ok) {
            // ktab[k] = (-, co * Ho * Wo, i, j) for k = (co, i, j).
            let ohs = ihp - i32(tk.z);
            let ows = iwp - i32(tk.w);
            if (ohs >= 0 && ows >= 0) {
                var oh = u32(ohs);
                var ow = u32(ows);
                var hit = true;
                if (!unit_stride) {
                    hit = oh % p.sh == 0u && ow % p.sw == 0u;
                    oh = oh / p.sh;
                    ow = ow / p.sw;
                }
                if (hit && oh < p.ho && ow < p.wo) {
                    vb = src0[dy_base + tk.y + oh * p.wo + ow];
                }
            }
        }
        let ab = (k * p.mp + r0) / 4u;
        c0 += vb * src1[ab];
        c1 += vb * src1[ab + 1u];
        c2 += vb * src1[ab + 2u];
        c3 += vb * src1[ab + 3u];
    }
    if (!col_ok) {
        return;
    }
    for (var i = 0u; i < ROWS; i++) {
        let row = r0 + i;
        if (row < p.gm) {
            var v = pick(c0, c1, c2, c3, i);
            let plane = p.h * p.w;
            dst[((col / plane) * p.cin + row) * plane + col % plane] = v;
        }
    }
}

// Weight gradient: rows = Cout, columns = Cin*kh*kw, depth = N*Ho*Wo; src0 = x, src1 = dy packed as [(n, oh, ow)][co].
@compute @workgroup_size(64)
fn conv2d_weight_grad(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let t = (wg.z * nwg.y + wg.y) * nwg.x + wg.x;
    if (t >= p.tiles_m * p.tiles_n) {
        return;
    }
    let r0 = (t / p.tiles_n) * ROWS;
    let col = (t % p.tiles_n) * COLS + lidx;
    let col_ok = col < p.gn;
    // Column (ci, i, j) of the weight gradient.
    var x_c = 0u;
    var ci_i = 0;
    var ci_j = 0;
    if (col_ok) {
        let taps = p.kh * p.kw;
        x_c = (col / taps) * p.h * p.w;
        ci_i = i32((col % taps) / p.kw);
        ci_j = i32(col % p.kw);
    }
    let plane = p.ho * p.wo;
    var c0 = vec4<f32>(0.0);
    var c1 = vec4<f32>(0.0);
    var c2 = vec4<f32>(0.0);
    var c3 = vec4<f32>(0.0);
    for (var k = 0u; k < p.gk; k++) {
        let tk = ktab[k];
        var vb = 0.0;
        if (col_ok) {
            // ktab[k] = (-, n * Cin * H * W, oh * sh - ph, ow * sw - pw) for k = (n, oh, ow), the last two as i32 bits.
            let ih = bitcast<i32>(tk.z) + ci_i;
            let iw = bitcast<i32>(tk.w) + ci_j;
            if (ih >= 0 && iw >= 0 && ih < i32(p.h) && iw < i32(p.w)) {
                vb = src0[tk.y + x_c + u32(ih) * p.w + u32(iw)];
            }
        }
        let ab = (k * p.mp + r0) / 4u;
        c0 += vb * src1[ab];
        c1 += vb * src1[ab + 1u];
        c2 += vb * src1[ab + 2u];
        c3 += vb * src1[ab + 3u];
    }
    if (!col_ok) {
        return;
    }
    for (var i = 0u; i < ROWS; i++) {
        let row = r0 + i;
        if (row < p.gm) {
            var v = pick(c0, c1, c2, c3, i);
            dst[row * p.gn + col] = v;
        }
    }
}
