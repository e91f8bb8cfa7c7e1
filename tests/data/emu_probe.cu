// Kernels that probe the CUDA emulation itself (tests/cuda_emulator.rs): the built-in indices, warp
// shuffles, atomics and barriers must behave as on a GPU, and deliberate bugs must be reported.

// out[global linear thread id] = a code of (blockIdx, threadIdx) so the host can check every thread ran
// exactly once with the right indices, on a 3-D grid of 3-D blocks.
extern "C" __global__ void probe_indices(unsigned int *out)
{
    const unsigned int block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    const unsigned int thread = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    const unsigned int per_block = blockDim.x * blockDim.y * blockDim.z;
    out[block * per_block + thread] = block * 10000u + thread;
}

// Five shuffles of v = lane per warp (64 threads: two warps), 5 outputs per thread.
extern "C" __global__ void probe_shuffles(float *out)
{
    const int lane = threadIdx.x & 31;
    const float v = (float)lane;
    float *o = out + 5 * threadIdx.x;
    o[0] = __shfl_down_sync(0xffffffffu, v, 3);
    o[1] = __shfl_up_sync(0xffffffffu, v, 2);
    o[2] = __shfl_xor_sync(0xffffffffu, v, 5);
    o[3] = __shfl_sync(0xffffffffu, v, 31 - lane);
    o[4] = __shfl_down_sync(0xffffffffu, v, 1, 8);  // within segments of 8 lanes
}

// Every thread of every block adds 1 to a counter and its global id to a float sum.
extern "C" __global__ void probe_atomics(unsigned int *count, float *sum)
{
    atomicAdd(count, 1u);
    atomicAdd(sum, (float)(blockIdx.x * blockDim.x + threadIdx.x));
}

// A shared-memory tree sum per block: only correct if __syncthreads really separates the phases.
extern "C" __global__ void probe_block_sum(const float *x, float *out)
{
    __shared__ float s[256];
    const unsigned int t = threadIdx.x;
    s[t] = x[blockIdx.x * blockDim.x + t];
    __syncthreads();
    for (unsigned int half = blockDim.x / 2; half > 0; half /= 2) {
        if (t < half) s[t] += s[t + half];
        __syncthreads();
    }
    if (t == 0) out[blockIdx.x] = s[0];
}

// Bug: writes one element past the end of y.
extern "C" __global__ void bug_write_past_end(float *y, int n)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i <= n) y[i] = 1.0f;
}

// Bug: odd and even threads wait at different barriers (undefined behaviour in CUDA).
extern "C" __global__ void bug_divergent_barrier(float *y)
{
    if (threadIdx.x & 1) {
        __syncthreads();
    } else {
        __syncthreads();
    }
    y[threadIdx.x] = 1.0f;
}

// Bug: a shuffle whose mask leaves out live lanes.
extern "C" __global__ void bug_shuffle_mask(float *y)
{
    y[threadIdx.x] = __shfl_down_sync(0x0000ffffu, (float)threadIdx.x, 1);
}
