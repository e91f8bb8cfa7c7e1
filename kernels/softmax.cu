// log_softmax along one axis, fused: each line (the axis at fixed outer and inner coordinates) is
// reduced by one block, max then sum of exponentials (warp shuffles, then shared memory), so the input
// is read twice and the output written once instead of the ~6 kernels of the composite form.
// cross_entropy is built on it (src/nn/functional.rs). Compiled by NVRTC, and as C++ for the emulation.

#define SM_THREADS 256
#define SM_WARPS (SM_THREADS / 32)

// Reduces `v` over the block with `op` (max or sum), returned to every thread. Ends with a barrier so
// callers may reduce again right away.
template <bool IsMax>
__device__ __forceinline__ float block_reduce(float v, float *partial)
{
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
        const float o = __shfl_xor_sync(0xffffffffu, v, off);
        v = IsMax ? fmaxf(v, o) : v + o;
    }
    if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = v;
    __syncthreads();
    float t = partial[0];
    for (int w = 1; w < SM_WARPS; ++w) t = IsMax ? fmaxf(t, partial[w]) : t + partial[w];
    __syncthreads();
    return t;
}

// y = x - max - log(sum(exp(x - max))) along lines of n elements spaced `inner` apart; line l starts at
// (l / inner) * n * inner + l % inner. One block per line; blocks loop over lines.
extern "C" __global__ void __launch_bounds__(SM_THREADS) log_softmax_f32(const float *__restrict__ x, float *__restrict__ y,
                                                                        unsigned long long lines, unsigned long long n,
                                                                        unsigned long long inner)
{
    __shared__ float partial[SM_WARPS];
    for (unsigned long long l = blockIdx.x; l < lines; l += gridDim.x) {
        const unsigned long long base = (l / inner) * n * inner + l % inner;
        float m = -3.402823466e38f;
        for (unsigned long long j = threadIdx.x; j < n; j += blockDim.x) m = fmaxf(m, x[base + j * inner]);
        m = block_reduce<true>(m, partial);
        float s = 0.0f;
        for (unsigned long long j = threadIdx.x; j < n; j += blockDim.x) s += expf(x[base + j * inner] - m);
        const float lse = m + logf(block_reduce<false>(s, partial));
        for (unsigned long long j = threadIdx.x; j < n; j += blockDim.x) y[base + j * inner] = x[base + j * inner] - lse;
    }
}

// dx = g - exp(y) * sum(g) along each line (y is the forward output).
extern "C" __global__ void __launch_bounds__(SM_THREADS) log_softmax_backward_f32(const float *__restrict__ y,
                                                                                 const float *__restrict__ g,
                                                                                 float *__restrict__ dx,
                                                                                 unsigned long long lines,
                                                                                 unsigned long long n,
                                                                                 unsigned long long inner)
{
    __shared__ float partial[SM_WARPS];
    for (unsigned long long l = blockIdx.x; l < lines; l += gridDim.x) {
        const unsigned long long base = (l / inner) * n * inner + l % inner;
        float s = 0.0f;
        for (unsigned long long j = threadIdx.x; j < n; j += blockDim.x) s += g[base + j * inner];
        s = block_reduce<false>(s, partial);
        for (unsigned long long j = threadIdx.x; j < n; j += blockDim.x) {
            const unsigned long long at = base + j * inner;
            dx[at] = g[at] - expf(y[at]) * s;
        }
    }
}
