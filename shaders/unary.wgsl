// Element-wise unary ops (src/ops/unary): one entry point, the op chosen by a code in the uniform, because
// all of them share the same memory pattern (read one, write one) and one pipeline per op would only add
// pipeline-cache entries. Codes match `op_code` in src/ops/unary/wgpu.rs.
//
// Dispatch convention as in elementwise.wgsl: the linear index is rebuilt from a possibly 2-D/3-D grid.

const WG: u32 = 64u;

struct Params {
    n: u32,
    op: u32,
    // Scalar arguments: slope, exponent, scalar, or the clamp / in_range bounds (lo = a, hi = b).
    a: f32,
    b: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

// Sigmoid split by sign so exp never overflows (as the CPU kernel).
fn sigmoid(v: f32) -> f32 {
    if (v >= 0.0) {
        return 1.0 / (1.0 + exp(-v));
    }
    let e = exp(v);
    return e / (1.0 + e);
}

// tanh via exp of a non-positive argument: WGSL's tanh may overflow to NaN for large |v| on some drivers.
fn stable_tanh(v: f32) -> f32 {
    let e = exp(-2.0 * abs(v));
    return sign(v) * (1.0 - e) / (1.0 + e);
}

// pow for any sign of the base, as Rust's powf: WGSL's pow is undefined for a negative base, so integer
// exponents are handled by the sign of the magnitude's power.
fn powf(v: f32, e: f32) -> f32 {
    if (v >= 0.0) {
        if (v == 0.0) {
            if (e == 0.0) { return 1.0; }
            if (e > 0.0) { return 0.0; }
            return bitcast<f32>(0x7f800000u);
        }
        return pow(v, e);
    }
    if (e == floor(e)) {
        let m = pow(-v, e);
        if (abs(e % 2.0) == 1.0) {
            return -m;
        }
        return m;
    }
    return bitcast<f32>(0x7fc00000u);
}

fn apply(op: u32, v: f32) -> f32 {
    switch op {
        case 0u: { return -v; }
        case 1u: { return exp(v); }
        case 2u: { return log(v); }
        case 3u: { return sqrt(v); }
        case 4u: { return sigmoid(v); }
        case 5u: { return stable_tanh(v); }
        case 6u: { return select(0.0, v, v > 0.0); }
        case 7u: { return abs(v); }
        case 8u: { return select(v * p.a, v, v > 0.0); }
        case 9u: { return powf(v, p.a); }
        case 10u: { return v + p.a; }
        case 11u: { return v * p.a; }
        // clamp written as the CPU kernel does, so NaN passes through unchanged.
        case 12u: { if (v < p.a) { return p.a; } if (v > p.b) { return p.b; } return v; }
        case 13u: { return select(0.0, 1.0, v > 0.0); }
        case 14u: { return select(p.a, 1.0, v > 0.0); }
        case 15u: { return select(0.0, 1.0, v >= p.a && v <= p.b); }
        case 16u: { return sign(v); }
        case 17u: { return v * v; }
        case 18u: { return 1.0 / v; }
        default: { return v; }
    }
}

@compute @workgroup_size(64)
fn unary(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let i = ((wg.z * nwg.y + wg.y) * nwg.x + wg.x) * WG + lidx;
    if (i >= p.n) {
        return;
    }
    y[i] = apply(p.op, x[i]);
}
