// Haar discrete wavelet transform (one level), compiled at run time by NVRTC (src/backend/cuda/nvrtc.rs).
// NVRTC ships without the CUDA headers, so this file includes nothing and relies only on built-ins.

// Input  x: (N, C, H, W), contiguous, H and W even (the host checks).
// Output y: (N, 4C, H/2, W/2), channel blocks in the order [LL(C), HL(C), LH(C), HH(C)].
//
// For each 2x2 block, with a = (row 0, col 0), b = (row 1, col 0), c = (row 0, col 1),
// d = (row 1, col 1), each divided by 2:
//   LL =  a + b + c + d
//   HL = -a - b + c + d
//   LH = -a + b - c + d
//   HH =  a - b - c + d
// The 1/2 scale makes the 4x4 butterfly orthonormal: the inverse is its transpose and the transform
// keeps the energy of the image (no growth through stacked levels).

// One thread per 2x2 block: it reads the block once and writes the four sub-bands, so every input
// element is loaded exactly once. `Index` is 32-bit when the host says every index fits below 2^31
// (a 32-bit division is a short instruction sequence, a 64-bit one a long software routine), and
// 64-bit otherwise.
template <typename Index>
__device__ __forceinline__ void haar_dwt_loop(const float *__restrict__ x, float *__restrict__ y,
                                              Index c, Index h, Index w, Index blocks)
{
    const Index h2 = h / 2;
    const Index w2 = w / 2;
    const Index plane = h2 * w2;  // one output channel
    const Index stride = (Index)blockDim.x * gridDim.x;

    for (Index i = (Index)blockIdx.x * blockDim.x + threadIdx.x; i < blocks; i += stride) {
        // i walks the output plane fastest, so neighbouring threads read neighbouring column pairs
        // and write neighbouring outputs: both sides of the transform stay coalesced.
        const Index col = i % w2;
        const Index row = (i / w2) % h2;
        const Index nc = i / plane;  // n * C + channel
        const Index n = nc / c;
        const Index ch = nc - n * c;

        // W is even and the buffer starts on an allocation boundary, so each column pair is one
        // 8-byte aligned float2: two vector loads per block instead of four scalar ones.
        const Index top = nc * h * w + (2 * row) * w + 2 * col;
        const float2 r0 = *reinterpret_cast<const float2 *>(x + top);
        const float2 r1 = *reinterpret_cast<const float2 *>(x + top + w);
        const float a = 0.5f * r0.x;
        const float cc = 0.5f * r0.y;
        const float b = 0.5f * r1.x;
        const float d = 0.5f * r1.y;

        // Output channel k*C + ch of image n, at the same position in the half-size plane.
        const Index out = (n * 4 * c + ch) * plane + (i - nc * plane);
        y[out] = a + b + cc + d;                  // LL
        y[out + c * plane] = -a - b + cc + d;     // HL
        y[out + 2 * c * plane] = -a + b - cc + d; // LH
        y[out + 3 * c * plane] = a - b - cc + d;  // HH
    }
}

// `wide` is the same for every thread, so the branch never diverges; both loops are compiled and the
// register report covers the larger one.
extern "C" __global__ void haar_dwt_f32(const float *__restrict__ x,
                                        float *__restrict__ y,
                                        unsigned long long c,
                                        unsigned long long h,
                                        unsigned long long w,
                                        unsigned long long blocks,  // N * C * (H/2) * (W/2)
                                        unsigned int wide)
{
    if (wide) {
        haar_dwt_loop<unsigned long long>(x, y, c, h, w, blocks);
    } else {
        haar_dwt_loop<unsigned int>(x, y, (unsigned int)c, (unsigned int)h, (unsigned int)w,
                                    (unsigned int)blocks);
    }
}

// Inverse of haar_dwt_f32: x (N, 4C, H, W) with channel blocks [LL, HL, LH, HH] -> y (N, C, 2H, 2W).
// One thread per output 2x2 block: it reads the four sub-band values once and writes the block as two
// float2 rows (the butterfly is its own transpose, so the same sums with the roles swapped).
template <typename Index>
__device__ __forceinline__ void haar_iwt_loop(const float *__restrict__ x, float *__restrict__ y,
                                              Index c, Index h, Index w, Index blocks)
{
    const Index plane = h * w;  // one sub-band channel
    const Index stride = (Index)blockDim.x * gridDim.x;
    for (Index i = (Index)blockIdx.x * blockDim.x + threadIdx.x; i < blocks; i += stride) {
        const Index col = i % w;
        const Index row = (i / w) % h;
        const Index nc = i / plane;  // n * C + channel
        const Index n = nc / c;
        const Index ch = nc - n * c;
        const Index in = (n * 4 * c + ch) * plane + (i - nc * plane);
        const float ll = 0.5f * x[in];
        const float hl = 0.5f * x[in + c * plane];
        const float lh = 0.5f * x[in + 2 * c * plane];
        const float hh = 0.5f * x[in + 3 * c * plane];
        // a = (row 0, col 0), b = (row 1, col 0), c = (row 0, col 1), d = (row 1, col 1)
        const float a = ll - hl - lh + hh;
        const float b = ll - hl + lh - hh;
        const float cc = ll + hl - lh - hh;
        const float d = ll + hl + lh + hh;
        const Index top = nc * (4 * plane) + (2 * row) * (2 * w) + 2 * col;
        *reinterpret_cast<float2 *>(y + top) = make_float2(a, cc);
        *reinterpret_cast<float2 *>(y + top + 2 * w) = make_float2(b, d);
    }
}

extern "C" __global__ void haar_iwt_f32(const float *__restrict__ x,
                                        float *__restrict__ y,
                                        unsigned long long c,   // output channels (input has 4c)
                                        unsigned long long h,   // input height (output 2h)
                                        unsigned long long w,   // input width (output 2w)
                                        unsigned long long blocks,  // N * C * H * W
                                        unsigned int wide)
{
    if (wide) {
        haar_iwt_loop<unsigned long long>(x, y, c, h, w, blocks);
    } else {
        haar_iwt_loop<unsigned int>(x, y, (unsigned int)c, (unsigned int)h, (unsigned int)w,
                                    (unsigned int)blocks);
    }
}
