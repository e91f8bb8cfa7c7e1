// 2-D average and max pooling over NCHW planes, forward and backward (src/ops/pool). Semantics as the CPU
// kernels: average pooling counts padding as zeros (divisor kh*kw); max pooling treats padding as -inf
// and records, per output, the index `ih * W + iw` of the first maximum within its plane (a NaN wins).
//
// Both backwards are gathers (one thread per input element, looping over the outputs whose window holds
// it) rather than scatters: WGSL has no float atomics and overlapping windows would race.
//
// Bindings: x (0), y (1), idx (2, u32, max pooling only), uniform (3); host in src/ops/pool/wgpu.rs.

const WG: u32 = 64u;

struct Params {
    nc: u32,
    h: u32,
    w: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    ph: u32,
    pw: u32,
    ho: u32,
    wo: u32,
    // Threads doing work: nc * ho * wo (forward) or nc * h * w (backward).
    total: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> idx: array<u32>;
@group(0) @binding(3) var<uniform> p: Params;

fn linear(wg: vec3<u32>, nwg: vec3<u32>, lidx: u32) -> u32 {
    return ((wg.z * nwg.y + wg.y) * nwg.x + wg.x) * WG + lidx;
}

// In-bounds input range [lo, hi) of the window of output o along an axis (stride s, padding pd, kernel k,
// length n).
fn window(o: u32, s: u32, pd: u32, k: u32, n: u32) -> vec2<u32> {
    let start = o * s;
    let lo = select(0u, start - pd, start >= pd);
    let end = start + k;
    let hi = min(select(0u, end - pd, end >= pd), n);
    return vec2<u32>(lo, hi);
}

// Outputs [lo, hi] (inclusive, hi < lo when none) whose window along an axis holds input position i.
fn covering(i: u32, s: u32, pd: u32, k: u32, n_out: u32) -> vec2<i32> {
    // o * s - pd <= i  and  i < o * s - pd + k   <=>   (i + pd - k + 1) / s <= o <= (i + pd) / s
    let top = i32(i + pd);
    let lo = max(0, (top - i32(k) + 1 + i32(s) - 1) / i32(s));
    let hi = min(i32(n_out) - 1, top / i32(s));
    return vec2<i32>(lo, hi);
}

@compute @workgroup_size(64)
fn avg_pool_forward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let t = linear(wg, nwg, lidx);
    if (t >= p.total) {
        return;
    }
    let ow = t % p.wo;
    let oh = (t / p.wo) % p.ho;
    let plane = t / (p.wo * p.ho);
    let rows = window(oh, p.sh, p.ph, p.kh, p.h);
    let cols = window(ow, p.sw, p.pw, p.kw, p.w);
    var s = 0.0;
    for (var ih = rows.x; ih < rows.y; ih++) {
        for (var iw = cols.x; iw < cols.y; iw++) {
            s += x[(plane * p.h + ih) * p.w + iw];
        }
    }
    y[t] = s / f32(p.kh * p.kw);
}

// x = output gradient (nc, ho, wo), y = input gradient (nc, h, w).
@compute @workgroup_size(64)
fn avg_pool_backward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let t = linear(wg, nwg, lidx);
    if (t >= p.total) {
        return;
    }
    let iw = t % p.w;
    let ih = (t / p.w) % p.h;
    let plane = t / (p.w * p.h);
    let r = covering(ih, p.sh, p.ph, p.kh, p.ho);
    let c = covering(iw, p.sw, p.pw, p.kw, p.wo);
    var s = 0.0;
    for (var oh = r.x; oh <= r.y; oh++) {
        for (var ow = c.x; ow <= c.y; ow++) {
            s += x[(plane * p.ho + u32(oh)) * p.wo + u32(ow)];
        }
    }
    y[t] = s / f32(p.kh * p.kw);
}

@compute @workgroup_size(64)
fn max_pool_forward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let t = linear(wg, nwg, lidx);
    if (t >= p.total) {
        return;
    }
    let ow = t % p.wo;
    let oh = (t / p.wo) % p.ho;
    let plane = t / (p.wo * p.ho);
    let rows = window(oh, p.sh, p.ph, p.kh, p.h);
    let cols = window(ow, p.sw, p.pw, p.kw, p.w);
    // Validation on the host guarantees a non-empty window.
    var bi = rows.x * p.w + cols.x;
    var best = x[plane * p.h * p.w + bi];
    for (var ih = rows.x; ih < rows.y; ih++) {
        for (var iw = cols.x; iw < cols.y; iw++) {
            let v = x[(plane * p.h + ih) * p.w + iw];
            if (best == best && (v > best || v != v)) {
                best = v;
                bi = ih * p.w + iw;
            }
        }
    }
    y[t] = best;
    idx[t] = bi;
}

// x = output gradient, y = input gradient, idx = the forward's argmax per output.
@compute @workgroup_size(64)
fn max_pool_backward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let t = linear(wg, nwg, lidx);
    if (t >= p.total) {
        return;
    }
    let iw = t % p.w;
    let ih = (t / p.w) % p.h;
    let plane = t / (p.w * p.h);
    let me = ih * p.w + iw;
    let r = covering(ih, p.sh, p.ph, p.kh, p.ho);
    let c = covering(iw, p.sw, p.pw, p.kw, p.wo);
    var s = 0.0;
    for (var oh = r.x; oh <= r.y; oh++) {
        for (var ow = c.x; ow <= c.y; ow++) {
            let o = (plane * p.ho + u32(oh)) * p.wo + u32(ow);
            if (idx[o] == me) {
                s += x[o];
            }
        }
    }
    y[t] = s;
}
