// Matrix products as tiled GEMMs through shared memory: batched matmul, and conv2d as an implicit GEMM
// (forward with fused bias and LeakyReLU, input gradient, weight gradient), all from one tile routine
// with different operand loaders. Compiled by NVRTC, and as C++ for the emulation.
//
// Tiling: a block of 256 threads computes a 64x64 tile of C, stepping through K 16 at a time. Each step
// stages a 64x16 slice of A and a 16x64 slice of B in shared memory (each thread loads 4 of each), then
// every thread accumulates a 4x4 block of C in registers from them: 16 FMAs per 8 shared loads. The 4x4
// block is strided by 16 rows and columns (thread (tx, ty) owns rows ty + 16i, columns tx + 16j), so the
// threads of a warp read 16 consecutive B values and one broadcast A value per load.
//
// Implicit GEMM: the conv loaders compute the im2col element on the fly from the image, so no unfolded
// copy of the input is ever written. Indices are 32-bit inside a tensor (the host checks every tensor has
// fewer than 2^31 elements) and 64-bit for the final addresses.

#define BM 64
#define BN 64
#define BK 16
#define GEMM_THREADS 256

template <class Op>
__device__ __forceinline__ void gemm_tile(const Op &op, int M, int N, int k_begin, int k_end)
{
    // A is stored transposed (k-major) so the inner loop reads a row of it; the +1 column keeps the
    // transposing stores (consecutive threads, consecutive k, addresses 65 floats apart) on distinct banks.
    __shared__ float As[BK][BM + 1];
    __shared__ float Bs[BK][BN];
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;

    for (int k0 = k_begin; k0 < k_end; k0 += BK) {
#pragma unroll
        for (int l = 0; l < 4; ++l) {
            const int e = tid + GEMM_THREADS * l;
            // A: consecutive threads walk k (contiguous in a row-major A), B: consecutive threads walk n.
            const int am = e / BK, ak = e % BK;
            const int gm = m0 + am, gka = k0 + ak;
            As[ak][am] = (gm < M && gka < k_end) ? op.a(gm, gka) : 0.0f;
            const int bk = e / BN, bn = e % BN;
            const int gkb = k0 + bk, gn = n0 + bn;
            Bs[bk][bn] = (gkb < k_end && gn < N) ? op.b(gkb, gn) : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; ++i) a[i] = As[kk][ty + 16 * i];
#pragma unroll
            for (int j = 0; j < 4; ++j) b[j] = Bs[kk][tx + 16 * j];
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
        __syncthreads();  // the next step overwrites the tiles
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const int m = m0 + ty + 16 * i, n = n0 + tx + 16 * j;
            if (m < M && n < N) op.store(m, n, acc[i][j]);
        }
    }
}

// ------------------------------------------------------------------ matmul

struct MatmulOp {
    const float *A, *B;
    float *C;
    int K, N;
    __device__ __forceinline__ float a(int m, int k) const { return A[(long long)m * K + k]; }
    __device__ __forceinline__ float b(int k, int n) const { return B[(long long)k * N + n]; }
    __device__ __forceinline__ void store(int m, int n, float v) const { C[(long long)m * N + n] = v; }
};

// C[b] (M x N) = A[b] (M x K) * B[b] (K x N), row-major, for b = batch_base + blockIdx.z; a stride of 0
// shares an operand across the batch (a linear layer's weight). Grid (N tiles, M tiles, batch entries);
// the host launches batches above 65535 (gridDim.z's limit) in several launches via batch_base. One
// batch entry per block rather than a loop over the batch: the loop's 64-bit pointer arithmetic cost
// registers that sm_90 then spilled.
extern "C" __global__ void __launch_bounds__(GEMM_THREADS) matmul_f32(const float *__restrict__ A,
                                                                     const float *__restrict__ B,
                                                                     float *__restrict__ C, int M, int N, int K,
                                                                     long long stride_a, long long stride_b,
                                                                     long long stride_c, int batch_base)
{
    const long long bi = (long long)batch_base + blockIdx.z;
    MatmulOp op{A + bi * stride_a, B + bi * stride_b, C + bi * stride_c, K, N};
    gemm_tile(op, M, N, 0, K);
}

// ------------------------------------------------------------------ conv2d

// Geometry of a convolution (NCHW input, OIHW weight), as in src/ops/conv2d. Mirrored by `ConvArgs` in
// src/ops/conv2d/cuda.rs.
struct ConvArgs {
    int n, cin, h, w, cout, kh, kw, sh, sw, ph, pw, ho, wo, pad;
};

// Forward: M = Cout, N = batch * Ho*Wo (column = (image, output position)), K = Cin*kh*kw (tap).
struct ConvForwardOp {
    const float *x, *w, *bias;
    float *y;
    ConvArgs g;
    int has_bias, act;
    float slope;
    __device__ __forceinline__ float a(int m, int k) const { return w[(long long)m * (g.cin * g.kh * g.kw) + k]; }
    __device__ __forceinline__ float b(int k, int col) const
    {
        const int P = g.ho * g.wo, khw = g.kh * g.kw;
        const int n = col / P, p = col - n * P;
        const int oh = p / g.wo, ow = p - oh * g.wo;
        const int ci = k / khw, r = k - ci * khw;
        const int i = r / g.kw, j = r - i * g.kw;
        const int ih = oh * g.sh - g.ph + i, iw = ow * g.sw - g.pw + j;
        // Unsigned compares: a negative coordinate (in the top/left padding) wraps to a huge value.
        if ((unsigned)ih >= (unsigned)g.h || (unsigned)iw >= (unsigned)g.w) return 0.0f;
        return x[((long long)(n * g.cin + ci) * g.h + ih) * g.w + iw];
    }
    __device__ __forceinline__ void store(int m, int col, float v) const
    {
        const int P = g.ho * g.wo;
        const int n = col / P, p = col - n * P;
        if (has_bias) v += bias[m];
        if (act) v = v > 0.0f ? v : v * slope;  // fused LeakyReLU (conv2d_leaky_relu)
        y[((long long)n * g.cout + m) * P + p] = v;
    }
};

// y = conv2d(x, w) (+ bias) (then LeakyReLU when act = 1). Grid (ceil(N*Ho*Wo / 64), ceil(Cout / 64)).
extern "C" __global__ void __launch_bounds__(GEMM_THREADS) conv2d_f32(const float *__restrict__ x,
                                                                     const float *__restrict__ w,
                                                                     const float *__restrict__ bias,
                                                                     float *__restrict__ y, ConvArgs g,
                                                                     int has_bias, int act, float slope)
{
    ConvForwardOp op{x, w, bias, y, g, has_bias, act, slope};
    gemm_tile(op, g.cout, g.n * g.ho * g.wo, 0, g.cin * g.kh * g.kw);
}

// Input gradient (the transposed convolution): M = Cin, N = batch * H*W (column = input pixel),
// K = Cout*kh*kw. The B element for tap (co, i, j) at input pixel (ih, iw) is the output gradient at the
// output position whose window puts tap (i, j) on that pixel, if there is one: (ih + ph - i) must be a
// non-negative multiple of the stride below Ho * sh (likewise for columns).
struct ConvInputGradOp {
    const float *dy, *w;
    float *dx;
    ConvArgs g;
    __device__ __forceinline__ float a(int ci, int k) const
    {
        const int khw = g.kh * g.kw;
        const int co = k / khw, r = k - co * khw;
        return w[((long long)co * g.cin + ci) * khw + r];
    }
    __device__ __forceinline__ float b(int k, int col) const
    {
        const int HW = g.h * g.w, khw = g.kh * g.kw;
        const int n = col / HW, q = col - n * HW;
        const int ih = q / g.w, iw = q - ih * g.w;
        const int co = k / khw, r = k - co * khw;
        const int i = r / g.kw, j = r - i * g.kw;
        const int th = ih + g.ph - i, tw = iw + g.pw - j;
        if (th < 0 || tw < 0) return 0.0f;
        const int oh = th / g.sh, ow = tw / g.sw;
        if (oh * g.sh != th || ow * g.sw != tw || oh >= g.ho || ow >= g.wo) return 0.0f;
        return dy[((long long)(n * g.cout + co) * g.ho + oh) * g.wo + ow];
    }
    __device__ __forceinline__ void store(int ci, int col, float v) const
    {
        const int HW = g.h * g.w;
        const int n = col / HW, q = col - n * HW;
        dx[((long long)n * g.cin + ci) * HW + q] = v;
    }
};

extern "C" __global__ void __launch_bounds__(GEMM_THREADS) conv2d_input_grad_f32(const float *__restrict__ dy,
                                                                                const float *__restrict__ w,
                                                                                float *__restrict__ dx,
                                                                                ConvArgs g)
{
    ConvInputGradOp op{dy, w, dx, g};
    gemm_tile(op, g.cin, g.n * g.h * g.w, 0, g.cout * g.kh * g.kw);
}

// Weight gradient: M = Cout, N = Cin*kh*kw (column = tap), K = batch * Ho*Wo. K is long (every output
// position of every image) while M x N is small, so K is split across gridDim.z blocks of `k_chunk`
// (a multiple of BK) and the partial tiles are added into dw (zeroed by the host) with atomics; the
// summation order therefore varies in the last bits between runs.
struct ConvWeightGradOp {
    const float *x, *dy;
    float *dw;
    ConvArgs g;
    __device__ __forceinline__ float a(int co, int k) const
    {
        const int P = g.ho * g.wo;
        const int n = k / P, p = k - n * P;
        return dy[((long long)n * g.cout + co) * P + p];
    }
    __device__ __forceinline__ float b(int k, int tap) const
    {
        const int P = g.ho * g.wo, khw = g.kh * g.kw;
        const int n = k / P, p = k - n * P;
        const int oh = p / g.wo, ow = p - oh * g.wo;
        const int ci = tap / khw, r = tap - ci * khw;
        const int i = r / g.kw, j = r - i * g.kw;
        const int ih = oh * g.sh - g.ph + i, iw = ow * g.sw - g.pw + j;
        if ((unsigned)ih >= (unsigned)g.h || (unsigned)iw >= (unsigned)g.w) return 0.0f;
        return x[((long long)(n * g.cin + ci) * g.h + ih) * g.w + iw];
    }
    __device__ __forceinline__ void store(int co, int tap, float v) const
    {
        atomicAdd(dw + (long long)co * (g.cin * g.kh * g.kw) + tap, v);
    }
};

extern "C" __global__ void __launch_bounds__(GEMM_THREADS) conv2d_weight_grad_f32(const float *__restrict__ x,
                                                                                 const float *__restrict__ dy,
                                                                                 float *__restrict__ dw,
                                                                                 ConvArgs g, int k_chunk)
{
    ConvWeightGradOp op{x, dy, dw, g};
    const int K = g.n * g.ho * g.wo;
    const int k_begin = blockIdx.z * k_chunk;
    const int k_end = k_begin + k_chunk < K ? k_begin + k_chunk : K;
    gemm_tile(op, g.cout, g.cin * g.kh * g.kw, k_begin, k_end);
}
