// Optimizer updates on the device, one pass over each parameter (the composite form runs about ten
// element-wise kernels per parameter and step). The formulas are those of src/optim/{sgd,adam}.rs.
// The parameter is updated in place; the optimizer state goes to new buffers (tensors never change in
// place, except parameters). Compiled by NVRTC, and as C++ for the emulation.

// SGD with momentum, dampening, Nesterov and L2 weight decay (torch.optim.SGD):
//   d = g + wd * p;  buf = first ? d : momentum * buf + (1 - dampening) * d
//   d = nesterov ? d + momentum * buf : buf   (when momentum != 0);  p -= lr * d
extern "C" __global__ void sgd_step_f32(float *__restrict__ p, const float *__restrict__ g,
                                        const float *__restrict__ buf_in, float *__restrict__ buf_out,
                                        unsigned long long n, float lr, float momentum, float dampening,
                                        float wd, int nesterov, int first)
{
    const unsigned long long stride = (unsigned long long)blockDim.x * gridDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const float pv = p[i];
        float d = g[i] + wd * pv;
        if (momentum != 0.0f) {
            const float b = first ? d : momentum * buf_in[i] + (1.0f - dampening) * d;
            buf_out[i] = b;
            d = nesterov ? d + momentum * b : b;
        }
        p[i] = pv - lr * d;
    }
}

// Adam (decoupled = 0, L2 added to the gradient) and AdamW (decoupled = 1, p scaled by 1 - lr * wd):
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p = base - lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps), bc = 1 - beta^t (from the host).
extern "C" __global__ void adam_step_f32(float *__restrict__ p, const float *__restrict__ g,
                                         const float *__restrict__ m_in, const float *__restrict__ v_in,
                                         float *__restrict__ m_out, float *__restrict__ v_out,
                                         unsigned long long n, float lr, float b1, float b2, float eps,
                                         float wd, int decoupled, float bc1, float bc2)
{
    const float step = lr / bc1, inv_sqrt_bc2 = 1.0f / sqrtf(bc2);
    const unsigned long long stride = (unsigned long long)blockDim.x * gridDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const float pv = p[i];
        float gv = g[i];
        float base = pv;
        if (wd != 0.0f) {
            if (decoupled) base = pv * (1.0f - lr * wd);
            else gv += wd * pv;
        }
        const float m = b1 * m_in[i] + (1.0f - b1) * gv;
        const float v = b2 * v_in[i] + (1.0f - b2) * gv * gv;
        m_out[i] = m;
        v_out[i] = v;
        p[i] = base - step * m / (sqrtf(v) * inv_sqrt_bc2 + eps);
    }
}
