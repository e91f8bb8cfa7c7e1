// Reductions: sums over any set of axes (block-wide tree: warp shuffles, then shared memory), and max
// over one axis with its index. Compiled by NVRTC, and as C++ for the emulation (kernels/emu/cuda_emu.h).

#define MAX_RANK 6
#define REDUCE_THREADS 256
#define WARPS (REDUCE_THREADS / 32)

// A reduction seen as two index spaces: the outputs (kept axes) and, for each output, the elements
// summed into it (reduced axes). Each has its shape and the input strides of its axes, so any set of
// axes reduces in place, without a transposing copy first. Mirrored by `ReduceArgs` in
// src/ops/reduce/cuda.rs.
struct ReduceArgs {
    unsigned long long outputs;  // product of out_shape
    unsigned long long count;    // product of red_shape
    unsigned int out_rank;
    unsigned int red_rank;
    unsigned long long out_shape[MAX_RANK];
    unsigned long long out_strides[MAX_RANK];
    unsigned long long red_shape[MAX_RANK];
    unsigned long long red_strides[MAX_RANK];
};

// Input offset of flat index `i` of an index space (outermost axis first).
__device__ __forceinline__ unsigned long long space_offset(unsigned long long i, unsigned int rank,
                                                           const unsigned long long *shape,
                                                           const unsigned long long *strides)
{
    unsigned long long off = 0;
#pragma unroll
    for (int d = MAX_RANK - 1; d >= 0; --d) {
        if (d < (int)rank) {
            const unsigned long long q = i / shape[d];
            off += (i - q * shape[d]) * strides[d];
            i = q;
        }
    }
    return off;
}

// Sum of `v` over the warp, in lane 0 (a butterfly of shuffles: 5 steps, no shared memory).
__device__ __forceinline__ float warp_sum(float v)
{
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    return v;
}

// Sum over the block, valid in thread 0. Each warp reduces with shuffles, the warp totals meet in
// shared memory, and the first warp reduces those. The trailing barrier lets the caller loop and reuse
// `partial` safely.
__device__ __forceinline__ float block_sum(float v, float *partial)
{
    const unsigned int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_sum(v);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < WARPS ? partial[lane] : 0.0f;
        v = warp_sum(v);
    }
    __syncthreads();
    return v;
}

// out[o] = sum over the reduced index space of x[offset(o) + offset(r)]. One block per output (the grid
// loops when there are more outputs than blocks); the block's threads stride over the reduced elements,
// so long reductions use the whole block and consecutive threads read consecutive elements when the
// innermost reduced axis is contiguous.
extern "C" __global__ void __launch_bounds__(REDUCE_THREADS) sum_reduce_f32(const float *__restrict__ x,
                                                                           float *__restrict__ out,
                                                                           ReduceArgs p)
{
    __shared__ float partial[WARPS];
    for (unsigned long long o = blockIdx.x; o < p.outputs; o += gridDim.x) {
        const unsigned long long base = space_offset(o, p.out_rank, p.out_shape, p.out_strides);
        float acc = 0.0f;
        for (unsigned long long r = threadIdx.x; r < p.count; r += blockDim.x) {
            acc += x[base + space_offset(r, p.red_rank, p.red_shape, p.red_strides)];
        }
        acc = block_sum(acc, partial);
        if (threadIdx.x == 0) out[o] = acc;
    }
}

// The same sum with one thread per output, for short reductions (the host picks it when `count` is
// small): a block per output would leave most of its threads idle and pay two barriers per output.
extern "C" __global__ void sum_reduce_short_f32(const float *__restrict__ x, float *__restrict__ out, ReduceArgs p)
{
    const unsigned long long stride = (unsigned long long)blockDim.x * gridDim.x;
    for (unsigned long long o = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; o < p.outputs; o += stride) {
        const unsigned long long base = space_offset(o, p.out_rank, p.out_shape, p.out_strides);
        float acc = 0.0f;
        for (unsigned long long r = 0; r < p.count; ++r) acc += x[base + space_offset(r, p.red_rank, p.red_shape, p.red_strides)];
        out[o] = acc;
    }
}

// Maximum over the middle axis of x seen as (outer, n, inner), with the index of the first maximum
// (written as the bits of an unsigned int into a float buffer; the host reads it back as integers).
// One thread per (outer, inner) pair: neighbouring threads read neighbouring `inner` positions.
extern "C" __global__ void max_axis_f32(const float *__restrict__ x, float *__restrict__ out,
                                        unsigned int *__restrict__ idx, unsigned long long outer,
                                        unsigned long long n, unsigned long long inner)
{
    const unsigned long long total = outer * inner;
    const unsigned long long stride = (unsigned long long)blockDim.x * gridDim.x;
    for (unsigned long long t = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += stride) {
        const unsigned long long o = t / inner, i = t - o * inner;
        const float *row = x + o * n * inner + i;
        float best = row[0];
        unsigned int arg = 0;
        for (unsigned long long j = 1; j < n; ++j) {
            const float v = row[j * inner];
            if (v > best) {  // strict: ties keep the first maximum, as the CPU kernel
                best = v;
                arg = (unsigned int)j;
            }
        }
        out[t] = best;
        idx[t] = arg;
    }
}

// Gradient of max_axis: dx is g at the first maximum of each (outer, inner) line and 0 elsewhere. The
// maximum is found again from x rather than stored by the forward pass: that costs one more read of the
// line but no index buffer kept alive in the graph, and every dx element is written by exactly one thread.
extern "C" __global__ void max_axis_backward_f32(const float *__restrict__ x, const float *__restrict__ g,
                                                 float *__restrict__ dx, unsigned long long outer,
                                                 unsigned long long n, unsigned long long inner)
{
    const unsigned long long total = outer * inner;
    const unsigned long long stride = (unsigned long long)blockDim.x * gridDim.x;
    for (unsigned long long t = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += stride) {
        const unsigned long long o = t / inner, i = t - o * inner;
        const unsigned long long base = o * n * inner + i;
        float best = x[base];
        unsigned long long arg = 0;
        for (unsigned long long j = 1; j < n; ++j) {
            const float v = x[base + j * inner];
            if (v > best) {
                best = v;
                arg = j;
            }
        }
        const float gv = g[t];
        for (unsigned long long j = 0; j < n; ++j) dx[base + j * inner] = j == arg ? gv : 0.0f;
    }
}
