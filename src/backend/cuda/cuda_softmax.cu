/*
 * cuda_softmax.cu — softmax over the last dimension, one warp per row: the row's maximum, the
 * sum of exp(x - max), then the normalised row, each a fixed-order warp reduction.
 *
 * Also the middle step of the tiled attention path (cuda_attention.c): fp32 scores in, the
 * compute type out, with an optional causal mask.
 */
#include "backend/cuda/cuda_device.cuh"

#include <math.h>

using namespace sdxl_cuda;

/* In place (x == y, same type) is safe: each lane writes only elements it has read. */
template <typename Tin, typename Tout>
__global__ void softmax_kernel(const Tin *x, Tout *y, int64_t rows, int64_t n, bool causal,
                               int64_t period, int64_t q0)
{
    int lane = threadIdx.x % 32;
    for (int64_t r = global_thread() / 32; r < rows; r += global_stride() / 32) {
        int64_t seen = n;
        if (causal && q0 + r % period + 1 < n)
            seen = q0 + r % period + 1;
        const Tin *xr = x + r * n;
        Tout *yr = y + r * n;
        float m = -INFINITY;
        for (int64_t j = lane; j < seen; j += 32)
            m = fmaxf(m, to_float(xr[j]));
        m = warp_max(m);
        float s = 0.0f;
        for (int64_t j = lane; j < seen; j += 32)
            s += expf(to_float(xr[j]) - m);
        float inv = 1.0f / warp_sum(s);
        for (int64_t j = lane; j < n; j += 32)
            yr[j] = from_float<Tout>(j < seen ? expf(to_float(xr[j]) - m) * inv : 0.0f);
    }
}

extern "C" sdxl_status cuda_softmax_rows(cuda_backend *cb, dtype in_type, const void *x,
                                         dtype out_type, void *y, int64_t rows, int64_t n,
                                         bool causal, int64_t period, int64_t q0, sdxl_error *err)
{
    unsigned grid = grid_for(rows * 32);
    cudaStream_t s = cb->stream;
    dispatch_float_type(out_type, [&](auto tag) {
        using T = decltype(tag);
        if (in_type == DTYPE_F32)
            softmax_kernel<float, T>
                <<<grid, BLOCK, 0, s>>>((const float *)x, (T *)y, rows, n, causal, period, q0);
        else
            softmax_kernel<T, T>
                <<<grid, BLOCK, 0, s>>>((const T *)x, (T *)y, rows, n, causal, period, q0);
    });
    return cuda_check_launch("softmax kernel", err);
}

extern "C" sdxl_status cuda_softmax(backend *b, const tensor *x, tensor *y, sdxl_error *err)
{
    return cuda_softmax_rows(cuda_of(b), x->type, x->data, y->type, y->data, tensor_rows(x),
                             tensor_last_dim(x), false, 1, 0, err);
}
