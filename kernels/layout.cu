// Layout kernels: strided copies (permute, broadcast_to), a tiled transpose, and 2-D block copies
// (concat, narrow and its gradient). Compiled by NVRTC, and as C++ for the emulation.

#define MAX_RANK 6
#define TILE 32
#define ROWS_PER_PASS 8

// y (contiguous, shape `shape`) from x read at sum(coord[d] * strides[d]). Mirrored by `StridedArgs` in
// src/ops/layout/cuda.rs.
struct StridedArgs {
    unsigned long long numel;
    unsigned int rank;
    unsigned int pad;
    unsigned long long shape[MAX_RANK];
    unsigned long long strides[MAX_RANK];
};

// Writes are coalesced (consecutive threads, consecutive outputs); reads follow the strides, which is
// why plain transposes of the last two axes go to transpose_f32 instead.
extern "C" __global__ void strided_copy_f32(const float *__restrict__ x, float *__restrict__ y, StridedArgs p)
{
    const unsigned long long stride = (unsigned long long)blockDim.x * gridDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < p.numel; i += stride) {
        unsigned long long rest = i, off = 0;
#pragma unroll
        for (int d = MAX_RANK - 1; d >= 0; --d) {
            if (d < (int)p.rank) {
                const unsigned long long q = rest / p.shape[d];
                off += (rest - q * p.shape[d]) * p.strides[d];
                rest = q;
            }
        }
        y[i] = x[off];
    }
}

// y[b, c, r] = x[b, r, c] for x of shape (batch, rows, cols). A 32x32 tile goes through shared memory
// so that both the reads (along x's rows) and the writes (along y's rows) are coalesced; the tile has 33
// columns so that reading a column of it touches 32 different banks. Block (32, 8): each thread moves
// 4 elements. The grid is (col tiles, row tiles, min(batch, 65535)); blocks loop over the rest of the batch.
extern "C" __global__ void __launch_bounds__(TILE * ROWS_PER_PASS) transpose_f32(const float *__restrict__ x,
                                                                                  float *__restrict__ y,
                                                                                  unsigned int batch,
                                                                                  unsigned int rows,
                                                                                  unsigned int cols)
{
    __shared__ float tile[TILE][TILE + 1];
    const unsigned int c0 = blockIdx.x * TILE, r0 = blockIdx.y * TILE;
    for (unsigned int b = blockIdx.z; b < batch; b += gridDim.z) {
        const float *xb = x + (unsigned long long)b * rows * cols;
        float *yb = y + (unsigned long long)b * rows * cols;
        for (unsigned int k = threadIdx.y; k < TILE; k += ROWS_PER_PASS) {
            const unsigned int r = r0 + k, c = c0 + threadIdx.x;
            if (r < rows && c < cols) tile[k][threadIdx.x] = xb[(unsigned long long)r * cols + c];
        }
        __syncthreads();
        for (unsigned int k = threadIdx.y; k < TILE; k += ROWS_PER_PASS) {
            const unsigned int c = c0 + k, r = r0 + threadIdx.x;
            if (r < rows && c < cols) yb[(unsigned long long)c * rows + r] = tile[threadIdx.x][k];
        }
        __syncthreads();  // the tile is refilled for the next batch entry
    }
}

// dst[row * dst_stride + dst_off + j] = src[row * src_stride + src_off + j] for row < rows, j < cols:
// one kernel for concat (each input into its slot), narrow (a slot out), and narrow's gradient.
extern "C" __global__ void copy2d_f32(const float *__restrict__ src, float *__restrict__ dst,
                                      unsigned long long rows, unsigned long long cols,
                                      unsigned long long src_stride, unsigned long long src_off,
                                      unsigned long long dst_stride, unsigned long long dst_off)
{
    const unsigned long long total = rows * cols;
    const unsigned long long stride = (unsigned long long)blockDim.x * gridDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        const unsigned long long r = i / cols, j = i - r * cols;
        dst[r * dst_stride + dst_off + j] = src[r * src_stride + src_off + j];
    }
}
