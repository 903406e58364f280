/*
 * cuda_norm.cu — group normalisation (optionally followed by SiLU) and layer normalisation.
 *
 * Group norm reduces in three launches whose cut depends on the shape of one image only:
 * partial sums of x and x² in double per (image, chunk of GN_POSITIONS positions, group); one
 * warp per (image, group) adds the chunks in a fixed order into the mean and 1/sqrt(var + eps);
 * then every element is normalised. Sums in double keep E[x²] - mean² accurate (as the cpu
 * backend does). Layer norm is one warp per row: the mean, then the variance around it, then
 * the output, each a fixed-order warp reduction.
 */
#include "backend/cuda/cuda_device.cuh"

#include <math.h>

using namespace sdxl_cuda;

/* Positions per chunk of the group-norm partial sums (fixed: it decides the summation order). */
constexpr int64_t GN_POSITIONS = 256;
/* Shared memory a kernel gets without opting in. */
constexpr size_t DEFAULT_SHARED = 48 * 1024;

/* Block (chunk, image): thread t sums channels t, t + BLOCK, ... over the chunk's positions
 * (reads along a row are coalesced across threads), then each group adds its channels. */
template <typename T>
__global__ void __launch_bounds__(BLOCK)
    group_stats_kernel(const T *x, double2 *partials, int64_t positions, int64_t c, int groups,
                       int64_t chunks)
{
    extern __shared__ double2 channel_sums[]; /* [c] */
    int64_t chunk = blockIdx.x, image = blockIdx.y;
    int64_t p0 = chunk * GN_POSITIONS;
    int64_t p1 = p0 + GN_POSITIONS < positions ? p0 + GN_POSITIONS : positions;
    const T *base = x + image * positions * c;
    for (int64_t ch = threadIdx.x; ch < c; ch += blockDim.x) {
        double s = 0.0, s2 = 0.0;
        for (int64_t p = p0; p < p1; p++) {
            double v = to_float(base[p * c + ch]);
            s += v;
            s2 += v * v;
        }
        channel_sums[ch] = make_double2(s, s2);
    }
    __syncthreads();
    int64_t cg = c / groups;
    for (int g = threadIdx.x; g < groups; g += blockDim.x) {
        double s = 0.0, s2 = 0.0;
        for (int64_t ch = g * cg; ch < (g + 1) * cg; ch++) {
            s += channel_sums[ch].x;
            s2 += channel_sums[ch].y;
        }
        partials[(image * chunks + chunk) * groups + g] = make_double2(s, s2);
    }
}

/* One warp per (image, group): stats = (mean, 1 / sqrt(var + eps)). */
__global__ void group_finalize_kernel(const double2 *partials, float2 *stats, int64_t chunks,
                                      int groups, int64_t total, double count, float eps)
{
    int lane = threadIdx.x % 32;
    for (int64_t w = global_thread() / 32; w < total; w += global_stride() / 32) {
        int64_t image = w / groups, g = w % groups;
        double s = 0.0, s2 = 0.0;
        for (int64_t i = lane; i < chunks; i += 32) {
            double2 p = partials[(image * chunks + i) * groups + g];
            s += p.x;
            s2 += p.y;
        }
        for (int offset = 16; offset > 0; offset /= 2) {
            s += __shfl_xor_sync(0xffffffffu, s, offset);
            s2 += __shfl_xor_sync(0xffffffffu, s2, offset);
        }
        double mean = s / count, var = s2 / count - mean * mean;
        var = var > 0.0 ? var : 0.0;
        if (lane == 0)
            stats[w] = make_float2((float)mean, (float)(1.0 / sqrt(var + (double)eps)));
    }
}

template <typename T>
__global__ void group_apply_kernel(const T *x, T *y, const float2 *stats, const T *gamma,
                                   const T *beta, int64_t per_image, int64_t c, int64_t cg,
                                   int groups, bool silu, int64_t n)
{
    for (int64_t i = global_thread(); i < n; i += global_stride()) {
        int64_t ch = i % c;
        float2 st = stats[(i / per_image) * groups + ch / cg];
        float v = (to_float(x[i]) - st.x) * st.y * to_float(gamma[ch]) + to_float(beta[ch]);
        y[i] = from_float<T>(silu ? x_sigmoid(v, 1.0f) : v);
    }
}

/* One warp per row of c elements. In place is safe: each lane writes only what it read. */
template <typename T>
__global__ void layer_norm_kernel(const T *x, T *y, const T *gamma, const T *beta, int64_t rows,
                                  int64_t c, float eps)
{
    int lane = threadIdx.x % 32;
    for (int64_t r = global_thread() / 32; r < rows; r += global_stride() / 32) {
        const T *xr = x + r * c;
        T *yr = y + r * c;
        float s = 0.0f;
        for (int64_t j = lane; j < c; j += 32)
            s += to_float(xr[j]);
        float mean = warp_sum(s) / (float)c;
        float d2 = 0.0f;
        for (int64_t j = lane; j < c; j += 32) {
            float d = to_float(xr[j]) - mean;
            d2 += d * d;
        }
        float rstd = 1.0f / sqrtf(warp_sum(d2) / (float)c + eps);
        for (int64_t j = lane; j < c; j += 32)
            yr[j] = from_float<T>((to_float(xr[j]) - mean) * rstd * to_float(gamma[j]) +
                                  to_float(beta[j]));
    }
}

extern "C" sdxl_status cuda_group_norm(backend *b, const tensor *x, int groups, float eps,
                                       const tensor *gamma, const tensor *beta, bool silu,
                                       tensor *y, sdxl_error *err)
{
    cuda_backend *cb = cuda_of(b);
    int64_t n = tensor_numel(x), images = x->shape[0], c = tensor_last_dim(x);
    int64_t positions = n / (images * c), chunks = (positions + GN_POSITIONS - 1) / GN_POSITIONS;
    size_t shared = (size_t)c * sizeof(double2);
    if (shared > (size_t)cb->max_shared_optin)
        return error_set(err, SDXL_ERR_UNSUPPORTED,
                         "group_norm: %lld channels need %zu bytes of shared memory; this GPU "
                         "gives a block at most %d",
                         (long long)c, shared, cb->max_shared_optin);
    size_t partial_bytes = (size_t)(images * chunks * groups) * sizeof(double2);
    size_t stats_bytes = (size_t)(images * groups) * sizeof(float2);
    sdxl_status st = cuda_buffer_reserve(cb, &cb->scratch, partial_bytes + stats_bytes,
                                         "group norm scratch", err);
    if (st)
        return st;
    double2 *partials = (double2 *)cb->scratch.data;
    float2 *stats = (float2 *)((unsigned char *)cb->scratch.data + partial_bytes);
    cudaStream_t s = cb->stream;
    cudaError_t attr = cudaSuccess;
    dispatch_float_type(x->type, [&](auto tag) {
        using T = decltype(tag);
        if (shared > DEFAULT_SHARED)
            attr = cudaFuncSetAttribute(group_stats_kernel<T>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shared);
        if (attr == cudaSuccess)
            group_stats_kernel<T><<<dim3((unsigned)chunks, (unsigned)images), BLOCK, shared, s>>>(
                (const T *)x->data, partials, positions, c, groups, chunks);
    });
    st = cuda_check(attr, "group norm shared memory", err);
    if (!st)
        st = cuda_check_launch("group norm statistics kernel", err);
    if (st)
        return st;
    int64_t total = images * groups;
    group_finalize_kernel<<<grid_for(total * 32), BLOCK, 0, s>>>(
        partials, stats, chunks, groups, total, (double)(positions * (c / groups)), eps);
    st = cuda_check_launch("group norm finalize kernel", err);
    if (st)
        return st;
    dispatch_float_type(x->type, [&](auto tag) {
        using T = decltype(tag);
        group_apply_kernel<T><<<grid_for(n), BLOCK, 0, s>>>(
            (const T *)x->data, (T *)y->data, stats, (const T *)gamma->data, (const T *)beta->data,
            n / images, c, c / groups, groups, silu, n);
    });
    return cuda_check_launch("group norm kernel", err);
}

extern "C" sdxl_status cuda_layer_norm(backend *b, const tensor *x, float eps, const tensor *gamma,
                                       const tensor *beta, tensor *y, sdxl_error *err)
{
    int64_t rows = tensor_rows(x), c = tensor_last_dim(x);
    cudaStream_t s = cuda_of(b)->stream;
    dispatch_float_type(x->type, [&](auto tag) {
        using T = decltype(tag);
        layer_norm_kernel<T><<<grid_for(rows * 32), BLOCK, 0, s>>>(
            (const T *)x->data, (T *)y->data, (const T *)gamma->data, (const T *)beta->data, rows,
            c, eps);
    });
    return cuda_check_launch("layer norm kernel", err);
}
