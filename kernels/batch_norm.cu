// Training-mode batch normalisation, fused: per-channel statistics, the normalisation, and the
// backward's per-channel sums and input gradient. Channel ch of an (N, C, S) view (S = H*W) is N runs of
// S contiguous floats. Compiled by NVRTC, and as C++ for the emulation.

#define BN_THREADS 256
#define BN_WARPS (BN_THREADS / 32)

__device__ __forceinline__ float bn_warp_sum(float v)
{
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;  // every lane holds the total (butterfly)
}

// Block-wide sum, returned to every thread (the warp totals meet in shared memory, then every warp
// reduces the same 8 values, so no second broadcast is needed). Ends with a barrier: callers may call it
// again right away.
__device__ __forceinline__ float bn_block_sum(float v, float *partial)
{
    v = bn_warp_sum(v);
    if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = v;
    __syncthreads();
    float t = (threadIdx.x & 31) < BN_WARPS ? partial[threadIdx.x & 31] : 0.0f;
    t = bn_warp_sum(t);
    __syncthreads();
    return t;
}

// stats[ch] = mean, stats[C + ch] = biased variance of channel ch. One block per channel; two passes
// (mean, then squared deviations) rather than E[x^2] - E[x]^2, which cancels badly in f32.
extern "C" __global__ void __launch_bounds__(BN_THREADS) bn_stats_f32(const float *__restrict__ x,
                                                                     float *__restrict__ stats, int n, int c,
                                                                     int s)
{
    __shared__ float partial[BN_WARPS];
    const int ch = blockIdx.x;
    const long long m = (long long)n * s;
    float acc = 0.0f;
    for (long long t = threadIdx.x; t < m; t += blockDim.x) {
        const long long i = t / s, j = t - i * s;
        acc += x[(i * c + ch) * s + j];
    }
    const float mean = bn_block_sum(acc, partial) / (float)m;
    float sq = 0.0f;
    for (long long t = threadIdx.x; t < m; t += blockDim.x) {
        const long long i = t / s, j = t - i * s;
        const float d = x[(i * c + ch) * s + j] - mean;
        sq += d * d;
    }
    const float var = bn_block_sum(sq, partial) / (float)m;
    if (threadIdx.x == 0) {
        stats[ch] = mean;
        stats[c + ch] = var;
    }
}

// y = x * scale[ch] + shift[ch], with coef = [scale (C), shift (C)] (computed on the host from the stats).
extern "C" __global__ void bn_normalize_f32(const float *__restrict__ x, float *__restrict__ y,
                                            const float *__restrict__ coef, int n, int c, int s)
{
    const long long total = (long long)n * c * s;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (long long)blockDim.x * gridDim.x) {
        const int ch = (int)((t / s) % c);
        y[t] = x[t] * coef[ch] + coef[c + ch];
    }
}

// sums[ch] = sum(g), sums[C + ch] = sum(g * xhat) over channel ch, with xhat = (x - mean) * invstd and
// params = [mean (C), invstd (C)]. One block per channel.
extern "C" __global__ void __launch_bounds__(BN_THREADS) bn_backward_reduce_f32(const float *__restrict__ g,
                                                                               const float *__restrict__ x,
                                                                               const float *__restrict__ params,
                                                                               float *__restrict__ sums, int n,
                                                                               int c, int s)
{
    __shared__ float partial[BN_WARPS];
    const int ch = blockIdx.x;
    const float mean = params[ch], invstd = params[c + ch];
    const long long m = (long long)n * s;
    float sg = 0.0f, sgx = 0.0f;
    for (long long t = threadIdx.x; t < m; t += blockDim.x) {
        const long long i = t / s, j = t - i * s;
        const long long at = (i * c + ch) * s + j;
        const float gv = g[at];
        sg += gv;
        sgx += gv * (x[at] - mean) * invstd;
    }
    sg = bn_block_sum(sg, partial);
    sgx = bn_block_sum(sgx, partial);
    if (threadIdx.x == 0) {
        sums[ch] = sg;
        sums[c + ch] = sgx;
    }
}

// dx = a * g - b - cx * (x - mean) per channel, coef = [a, b, cx, mean] (4C, from the host): the closed
// form w * invstd / M * (M g - sum(g) - xhat * sum(g xhat)).
extern "C" __global__ void bn_backward_dx_f32(const float *__restrict__ g, const float *__restrict__ x,
                                              const float *__restrict__ coef, float *__restrict__ dx, int n,
                                              int c, int s)
{
    const long long total = (long long)n * c * s;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (long long)blockDim.x * gridDim.x) {
        const int ch = (int)((t / s) % c);
        dx[t] = coef[ch] * g[t] - coef[c + ch] - coef[2 * c + ch] * (x[t] - coef[3 * c + ch]);
    }
}
