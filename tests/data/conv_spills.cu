// A deliberately register-starved "conv" kernel for tests/cuda_kernels_cli.rs: __launch_bounds__(1024, 2)
// caps it at 32 registers while 64 accumulators stay live across a loop, so ptxas must spill, and
// `deephide kernels --check --extra` must fail on it.
extern "C" __global__ void __launch_bounds__(1024, 2) conv_spills_f32(const float *x, float *y, int n)
{
    float acc[64];
#pragma unroll
    for (int i = 0; i < 64; ++i) acc[i] = x[i * blockDim.x + threadIdx.x];
    for (int k = 0; k < n; ++k) {
#pragma unroll
        for (int i = 0; i < 64; ++i) acc[i] = acc[i] * acc[(i + 1) & 63] + x[k];
    }
#pragma unroll
    for (int i = 0; i < 64; ++i) y[i * blockDim.x + threadIdx.x] = acc[i];
}
