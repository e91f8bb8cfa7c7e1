// Row gathers along the first axis (index_select, mini-batches) and their gradient, a scatter-add.
// Compiled by NVRTC, and as C++ for the emulation.

// y[i, :] = x[idx[i], :] for i < nidx, rows of `row` floats. The host checked every index.
extern "C" __global__ void gather_rows_f32(const float *__restrict__ x, const unsigned int *__restrict__ idx,
                                           float *__restrict__ y, unsigned long long nidx,
                                           unsigned long long row)
{
    const unsigned long long total = nidx * row;
    const unsigned long long stride = (unsigned long long)blockDim.x * gridDim.x;
    for (unsigned long long t = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += stride) {
        const unsigned long long i = t / row, j = t - i * row;
        y[t] = x[(unsigned long long)idx[i] * row + j];
    }
}

// dx[idx[i], :] += g[i, :] (dx zeroed by the host). A repeated index makes several threads add into the
// same element, hence the atomics; their order varies, so repeated rows may differ in the last bits from
// run to run (rows selected once are exact).
extern "C" __global__ void scatter_add_rows_f32(const float *__restrict__ g, const unsigned int *__restrict__ idx,
                                                float *__restrict__ dx, unsigned long long nidx,
                                                unsigned long long row)
{
    const unsigned long long total = nidx * row;
    const unsigned long long stride = (unsigned long long)blockDim.x * gridDim.x;
    for (unsigned long long t = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += stride) {
        const unsigned long long i = t / row, j = t - i * row;
        atomicAdd(dx + (unsigned long long)idx[i] * row + j, g[t]);
    }
}
