// Element-wise f32 kernels: unary maps, binary ops with broadcasting, fill. Compiled at run time by NVRTC
// (src/backend/cuda/nvrtc.rs), and as C++ for the CPU emulation (kernels/emu/cuda_emu.h).
//
// NVRTC ships without the CUDA headers, so this file includes nothing and relies only on built-ins.
// Every kernel is `extern "C"` so the host can look it up by its plain name.
//
// The op is a kernel argument rather than a template parameter: it is the same for every thread, so the
// `switch` never diverges, and one kernel per family keeps the module small. The codes mirror
// `src/ops/unary/cuda.rs` and `src/ops/binary/cuda.rs`.

#define MAX_RANK 6

// Unary op codes (UnaryOp in Rust); p0/p1 carry the op's scalar parameters.
#define U_NEG 0
#define U_EXP 1
#define U_LOG 2
#define U_SQRT 3
#define U_SIGMOID 4
#define U_TANH 5
#define U_RELU 6
#define U_ABS 7
#define U_LEAKY_RELU 8
#define U_POW 9
#define U_ADD_SCALAR 10
#define U_MUL_SCALAR 11
#define U_CLAMP 12
#define U_STEP 13
#define U_LEAKY_STEP 14
#define U_IN_RANGE 15
#define U_SIGN 16
#define U_SQUARE 17
#define U_RECIP 18

// Binary op codes (BinaryOp in Rust).
#define B_ADD 0
#define B_SUB 1
#define B_MUL 2
#define B_DIV 3
#define B_MAXIMUM 4
#define B_GE 5

__device__ __forceinline__ float unary_apply(unsigned int op, float v, float p0, float p1)
{
    switch (op) {
    case U_NEG: return -v;
    case U_EXP: return expf(v);
    case U_LOG: return logf(v);
    case U_SQRT: return sqrtf(v);
    case U_SIGMOID: {
        // Split by sign so that expf never overflows (the CPU kernel does the same).
        if (v >= 0.0f) return 1.0f / (1.0f + expf(-v));
        const float e = expf(v);
        return e / (1.0f + e);
    }
    case U_TANH: return tanhf(v);
    case U_RELU: return v > 0.0f ? v : 0.0f;
    case U_ABS: return fabsf(v);
    case U_LEAKY_RELU: return v > 0.0f ? v : v * p0;
    case U_POW: return powf(v, p0);
    case U_ADD_SCALAR: return v + p0;
    case U_MUL_SCALAR: return v * p0;
    case U_CLAMP: return v < p0 ? p0 : (v > p1 ? p1 : v);
    case U_STEP: return v > 0.0f ? 1.0f : 0.0f;
    case U_LEAKY_STEP: return v > 0.0f ? 1.0f : p0;
    case U_IN_RANGE: return (v >= p0 && v <= p1) ? 1.0f : 0.0f;
    case U_SIGN: return v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : 0.0f);
    case U_SQUARE: return v * v;
    default: return 1.0f / v;  // U_RECIP
    }
}

__device__ __forceinline__ float binary_apply(unsigned int op, float x, float y)
{
    switch (op) {
    case B_ADD: return x + y;
    case B_SUB: return x - y;
    case B_MUL: return x * y;
    case B_DIV: return x / y;
    case B_MAXIMUM: return x >= y ? x : y;
    default: return x >= y ? 1.0f : 0.0f;  // B_GE
    }
}

// y[i] = op(x[i]) for i < n. A grid-stride loop lets the host cap the grid at a few waves of the GPU and
// keeps the kernel correct whatever grid it gets; the index is 64-bit because the loop only adds and
// compares (no division), so wide indices cost nothing and never wrap.
extern "C" __global__ void unary_f32(const float *__restrict__ x, float *__restrict__ y,
                                     unsigned long long n, unsigned int op, float p0, float p1)
{
    const unsigned long long stride = (unsigned long long)blockDim.x * gridDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        y[i] = unary_apply(op, x[i], p0, p1);
    }
}

// out[i] = op(a[i], b[i]) for two inputs of the same shape.
extern "C" __global__ void binary_f32(const float *__restrict__ a, const float *__restrict__ b,
                                      float *__restrict__ out, unsigned long long n, unsigned int op)
{
    const unsigned long long stride = (unsigned long long)blockDim.x * gridDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        out[i] = binary_apply(op, a[i], b[i]);
    }
}

// y[i] = v for i < n.
extern "C" __global__ void fill_f32(float *__restrict__ y, unsigned long long n, float v)
{
    const unsigned long long stride = (unsigned long long)blockDim.x * gridDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        y[i] = v;
    }
}

// Shape of a broadcast op, passed by value (it lands in the constant bank, read once per warp).
// Axes run outermost first; only the first `rank` entries are meaningful. A stride of 0 on an axis
// makes every coordinate along it read the same input element: that is the whole broadcast.
// Mirrored by `BroadcastArgs` in src/ops/binary/cuda.rs.
struct BroadcastArgs {
    unsigned long long numel;  // product of shape[0..rank]
    unsigned int rank;         // 0..=MAX_RANK (0: a scalar)
    unsigned int wide;         // 1 unless numel and every input offset stay below 2^31 (see below)
    unsigned long long shape[MAX_RANK];
    unsigned long long a_strides[MAX_RANK];
    unsigned long long b_strides[MAX_RANK];
};

// Splits the flat output index into coordinates and returns both input offsets.
//
// Integer division is the cost of this kernel (one per axis), and a 64-bit division is a long software
// routine on the GPU while a 32-bit one is a short sequence, so callers pick `Index` = 32-bit whenever
// every index fits (`wide` == 0). The host asks for 32 bits only below 2^31, not 2^32, so that the
// grid-stride step `i += stride` cannot wrap around past the end. The loop bound is the constant
// MAX_RANK with a `d < rank` guard so that it unrolls and every `shape[d]` is a constant-bank operand
// instead of a local-memory array.
template <typename Index>
__device__ __forceinline__ void broadcast_offsets(Index i, const BroadcastArgs &p, Index &off_a, Index &off_b)
{
    off_a = 0;
    off_b = 0;
#pragma unroll
    for (int d = MAX_RANK - 1; d >= 0; --d) {
        if (d < (int)p.rank) {
            const Index dim = (Index)p.shape[d];
            // The outermost axis needs no division: what is left of the index is its coordinate.
            const Index q = d > 0 ? i / dim : 0;
            const Index coord = i - q * dim;
            off_a += coord * (Index)p.a_strides[d];
            off_b += coord * (Index)p.b_strides[d];
            i = q;
        }
    }
}

template <typename Index>
__device__ __forceinline__ void binary_broadcast_loop(const float *__restrict__ a, const float *__restrict__ b,
                                                      float *__restrict__ out, unsigned int op,
                                                      const BroadcastArgs &p)
{
    const Index n = (Index)p.numel;
    const Index stride = (Index)blockDim.x * gridDim.x;
    for (Index i = (Index)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        Index off_a, off_b;
        broadcast_offsets<Index>(i, p, off_a, off_b);
        out[i] = binary_apply(op, a[off_a], b[off_b]);
    }
}

// out[i] = op(a[offset_a(i)], b[offset_b(i)]) over the (contiguous) output shape `p.shape`.
// `p.wide` is the same for every thread, so the branch never diverges; both loops are compiled and the
// register report covers the larger one.
extern "C" __global__ void binary_broadcast_f32(const float *__restrict__ a, const float *__restrict__ b,
                                                float *__restrict__ out, unsigned int op, BroadcastArgs p)
{
    if (p.wide) {
        binary_broadcast_loop<unsigned long long>(a, b, out, op, p);
    } else {
        binary_broadcast_loop<unsigned int>(a, b, out, op, p);
    }
}
