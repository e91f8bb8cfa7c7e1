// 2-D pooling over NCHW planes: average (padding counts as zeros in the divisor kh*kw, PyTorch's
// count_include_pad) and max (padding acts as -inf, the first maximum in row-major window order wins, a
// NaN wins and sticks, as in the CPU kernel). Backward kernels gather: one thread per input element
// visits the windows that cover it, so every element is written once and no atomics are needed.
// Compiled by NVRTC, and as C++ for the emulation.

// Mirrored by `PoolArgs` in src/ops/pool/cuda.rs. `nc` planes of h x w pooled to ho x wo.
struct PoolArgs {
    int nc, h, w, kh, kw, sh, sw, ph, pw, ho, wo, pad;
};

// First and one-past-last output index whose window covers input index `i` along one axis.
__device__ __forceinline__ void covering(int i, int s, int p, int k, int out, int &lo, int &hi)
{
    // Window o covers [o*s - p, o*s - p + k): o*s <= i + p and o*s > i + p - k.
    const int t = i + p - k + 1;
    lo = t <= 0 ? 0 : (t + s - 1) / s;
    hi = (i + p) / s + 1;
    if (hi > out) hi = out;
}

// Index (within the plane) of the first maximum of window (oh, ow), clipped to the input.
__device__ __forceinline__ int window_argmax(const float *plane, const PoolArgs &g, int oh, int ow, float &best)
{
    const int r0 = oh * g.sh - g.ph, c0 = ow * g.sw - g.pw;
    const int ra = r0 < 0 ? 0 : r0, ca = c0 < 0 ? 0 : c0;
    const int rb = r0 + g.kh < g.h ? r0 + g.kh : g.h, cb = c0 + g.kw < g.w ? c0 + g.kw : g.w;
    int bi = ra * g.w + ca;
    best = plane[bi];
    for (int ih = ra; ih < rb; ++ih) {
        for (int iw = ca; iw < cb; ++iw) {
            const float v = plane[ih * g.w + iw];
            if (!(best != best) && (v > best || v != v)) {
                best = v;
                bi = ih * g.w + iw;
            }
        }
    }
    return bi;
}

extern "C" __global__ void avg_pool2d_f32(const float *__restrict__ x, float *__restrict__ y, PoolArgs g)
{
    const long long total = (long long)g.nc * g.ho * g.wo;
    const float inv = 1.0f / (float)(g.kh * g.kw);
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (long long)blockDim.x * gridDim.x) {
        const int ow = (int)(t % g.wo), oh = (int)((t / g.wo) % g.ho);
        const long long pl = t / ((long long)g.ho * g.wo);
        const float *plane = x + pl * g.h * g.w;
        const int r0 = oh * g.sh - g.ph, c0 = ow * g.sw - g.pw;
        float s = 0.0f;
        for (int i = 0; i < g.kh; ++i) {
            const int ih = r0 + i;
            if ((unsigned)ih >= (unsigned)g.h) continue;
            for (int j = 0; j < g.kw; ++j) {
                const int iw = c0 + j;
                if ((unsigned)iw < (unsigned)g.w) s += plane[ih * g.w + iw];
            }
        }
        y[t] = s * inv;
    }
}

extern "C" __global__ void avg_pool2d_backward_f32(const float *__restrict__ gy, float *__restrict__ dx, PoolArgs g)
{
    const long long total = (long long)g.nc * g.h * g.w;
    const float inv = 1.0f / (float)(g.kh * g.kw);
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (long long)blockDim.x * gridDim.x) {
        const int iw = (int)(t % g.w), ih = (int)((t / g.w) % g.h);
        const long long pl = t / ((long long)g.h * g.w);
        const float *gp = gy + pl * g.ho * g.wo;
        int oh0, oh1, ow0, ow1;
        covering(ih, g.sh, g.ph, g.kh, g.ho, oh0, oh1);
        covering(iw, g.sw, g.pw, g.kw, g.wo, ow0, ow1);
        float s = 0.0f;
        for (int oh = oh0; oh < oh1; ++oh)
            for (int ow = ow0; ow < ow1; ++ow) s += gp[oh * g.wo + ow];
        dx[t] = s * inv;
    }
}

extern "C" __global__ void max_pool2d_f32(const float *__restrict__ x, float *__restrict__ y, PoolArgs g)
{
    const long long total = (long long)g.nc * g.ho * g.wo;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (long long)blockDim.x * gridDim.x) {
        const int ow = (int)(t % g.wo), oh = (int)((t / g.wo) % g.ho);
        const long long pl = t / ((long long)g.ho * g.wo);
        float best;
        window_argmax(x + pl * g.h * g.w, g, oh, ow, best);
        y[t] = best;
    }
}

// Each input element adds the gradient of every covering window whose (recomputed) maximum it is. The
// forward pass keeps no index buffer: recomputing costs kh*kw reads per covering window but keeps the
// graph free of device-side integer buffers.
extern "C" __global__ void max_pool2d_backward_f32(const float *__restrict__ x, const float *__restrict__ gy,
                                                   float *__restrict__ dx, PoolArgs g)
{
    const long long total = (long long)g.nc * g.h * g.w;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (long long)blockDim.x * gridDim.x) {
        const int iw = (int)(t % g.w), ih = (int)((t / g.w) % g.h);
        const long long pl = t / ((long long)g.h * g.w);
        const float *plane = x + pl * g.h * g.w;
        const float *gp = gy + pl * g.ho * g.wo;
        const int me = ih * g.w + iw;
        int oh0, oh1, ow0, ow1;
        covering(ih, g.sh, g.ph, g.kh, g.ho, oh0, oh1);
        covering(iw, g.sw, g.pw, g.kw, g.wo, ow0, ow1);
        float s = 0.0f;
        for (int oh = oh0; oh < oh1; ++oh) {
            for (int ow = ow0; ow < ow1; ++ow) {
                float best;
                if (window_argmax(plane, g, oh, ow, best) == me) s += gp[oh * g.wo + ow];
            }
        }
        dx[t] = s;
    }
}
