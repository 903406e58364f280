/*
 * cuda_layout.cu — ops that move data rather than compute: nearest upsampling, channel concat
 * and slice (strided 2-D copies), row gather, copy, zero; and the sinusoidal timestep embedding,
 * which makes data from a handful of numbers.
 */
#include "backend/cuda/cuda_device.cuh"

#include <math.h>

using namespace sdxl_cuda;

/* y [N, 2H, 2W, C] from x [N, H, W, C]: one thread per input vector (C a multiple of the
 * vector width), written to its four output pixels; index arithmetic in I (32 bits when the
 * output allows). */
template <typename T, typename I>
__global__ void upsample_vec_kernel(const T *x, T *y, I h, I w, I c, I n_in)
{
    constexpr int N = VEC<T>;
    for (I i = (I)global_thread() * N; i < n_in; i += (I)global_stride() * N) {
        I ch = i % c, rest = i / c;
        I ix = rest % w;
        rest /= w;
        I iy = rest % h, image = rest / h;
        T v[N];
        load_vec(x + i, v);
        T *out = y + ((image * 2 * h + 2 * iy) * 2 * w + 2 * ix) * c + ch;
        store_vec(out, v);
        store_vec(out + c, v);
        store_vec(out + 2 * w * c, v);
        store_vec(out + 2 * w * c + c, v);
    }
}

/* y [N, 2H, 2W, C] from x [N, H, W, C]: one thread per output element. */
template <typename T>
__global__ void upsample_kernel(const T *x, T *y, int64_t h, int64_t w, int64_t c, int64_t n)
{
    for (int64_t i = global_thread(); i < n; i += global_stride()) {
        int64_t ch = i % c, rest = i / c;
        int64_t ox = rest % (2 * w);
        rest /= 2 * w;
        int64_t oy = rest % (2 * h), image = rest / (2 * h);
        y[i] = x[((image * h + oy / 2) * w + ox / 2) * c + ch];
    }
}

/* Follows diffusers' get_timestep_embedding in float32, the precision torch computes it in:
 * exponent = -ln(max_period) * i / (half - shift); arg = t * exp(exponent). The arguments reach
 * ~1000 radians, where one rounding of arg moves sin by ~3e-5, so every float rounding is
 * torch's: no contraction into fused multiply-adds (--fmad=false), exp correctly rounded (in
 * double, then rounded once: CUDA's expf may be 2 ulp off), sin and cos in double. */
template <typename T>
__global__ void timestep_kernel(const float *t, T *y, int64_t rows, int64_t dim,
                                float neg_log_period, float denom, bool flip)
{
    int64_t half = dim / 2;
    for (int64_t i = global_thread(); i < rows * half; i += global_stride()) {
        int64_t r = i / half, j = i % half;
        float exponent = neg_log_period * (float)j;
        exponent = exponent / denom;
        float arg = t[r] * (float)exp((double)exponent);
        float s = (float)sin((double)arg), c = (float)cos((double)arg);
        T *row = y + r * dim;
        row[j] = from_float<T>(flip ? c : s);
        row[half + j] = from_float<T>(flip ? s : c);
        if ((dim & 1) && j == 0)
            row[dim - 1] = from_float<T>(0.0f);
    }
}

/* y[i, :] = table[ids[i], :]. A GPU cannot report a bad id as it happens: the row becomes NaN,
 * which shows up downstream, rather than a read outside the table. */
template <typename T>
__global__ void gather_kernel(const T *table, const int32_t *ids, T *y, int64_t rows_in_table,
                              int64_t c, int64_t n)
{
    for (int64_t i = global_thread(); i < n; i += global_stride()) {
        int64_t id = ids[i / c];
        y[i] = id >= 0 && id < rows_in_table ? table[id * c + i % c] : from_float<T>(NAN);
    }
}

extern "C" sdxl_status cuda_upsample_nearest2x(backend *b, const tensor *x, tensor *y,
                                               sdxl_error *err)
{
    int64_t n = tensor_numel(y), n_in = tensor_numel(x);
    int64_t h = x->shape[1], w = x->shape[2], c = x->shape[3];
    cudaStream_t s = cuda_of(b)->stream;
    bool vec = vec_ok(dtype_size(x->type), {x->data, y->data}, {c});
    dispatch_float_type(x->type, [&](auto tag) {
        using T = decltype(tag);
        if (vec)
            dispatch_index_type(n, [&](auto index) {
                using I = decltype(index);
                upsample_vec_kernel<T, I><<<grid_for(n_in / VEC<T>), BLOCK, 0, s>>>(
                    (const T *)x->data, (T *)y->data, (I)h, (I)w, (I)c, (I)n_in);
            });
        else
            upsample_kernel<T><<<grid_for(n), BLOCK, 0, s>>>((const T *)x->data, (T *)y->data, h,
                                                             w, c, n);
    });
    return cuda_check_launch("upsample kernel", err);
}

/* Rows of `width` bytes from src (rows src_pitch apart) to dst (dst_pitch apart). */
static sdxl_status copy_rows(cuda_backend *cb, void *dst, size_t dst_pitch, const void *src,
                             size_t src_pitch, size_t width, size_t rows, const char *what,
                             sdxl_error *err)
{
    return cuda_check(cudaMemcpy2DAsync(dst, dst_pitch, src, src_pitch, width, rows,
                                        cudaMemcpyDeviceToDevice, cb->stream),
                      what, err);
}

extern "C" sdxl_status cuda_concat_channels(backend *b, const tensor *a, const tensor *c, tensor *y,
                                            sdxl_error *err)
{
    cuda_backend *cb = cuda_of(b);
    size_t es = dtype_size(y->type), rows = (size_t)tensor_rows(y);
    size_t ca = (size_t)tensor_last_dim(a) * es, cc = (size_t)tensor_last_dim(c) * es;
    size_t cy = ca + cc;
    sdxl_status st = copy_rows(cb, y->data, cy, a->data, ca, ca, rows, "concat", err);
    if (st)
        return st;
    return copy_rows(cb, (unsigned char *)y->data + ca, cy, c->data, cc, cc, rows, "concat", err);
}

extern "C" sdxl_status cuda_slice_channels(backend *b, const tensor *x, int64_t first, tensor *y,
                                           sdxl_error *err)
{
    size_t es = dtype_size(y->type), rows = (size_t)tensor_rows(y);
    size_t cx = (size_t)tensor_last_dim(x) * es, cy = (size_t)tensor_last_dim(y) * es;
    return copy_rows(cuda_of(b), y->data, cy, (const unsigned char *)x->data + (size_t)first * es,
                     cx, cy, rows, "slice", err);
}

extern "C" sdxl_status cuda_timestep_embedding(backend *b, const tensor *t, bool flip_sin_to_cos,
                                               float downscale_freq_shift, float max_period,
                                               tensor *y, sdxl_error *err)
{
    int64_t rows = t->shape[0], dim = y->shape[1];
    float neg_log_period = (float)-log((double)max_period);
    float denom = (float)(dim / 2) - downscale_freq_shift;
    cudaStream_t s = cuda_of(b)->stream;
    dispatch_float_type(y->type, [&](auto tag) {
        using T = decltype(tag);
        timestep_kernel<T><<<grid_for(rows * (dim / 2)), BLOCK, 0, s>>>(
            (const float *)t->data, (T *)y->data, rows, dim, neg_log_period, denom,
            flip_sin_to_cos);
    });
    return cuda_check_launch("timestep embedding kernel", err);
}

extern "C" sdxl_status cuda_gather_rows(backend *b, const tensor *table, const tensor *ids,
                                        tensor *y, sdxl_error *err)
{
    int64_t n = tensor_numel(y), c = table->shape[1];
    cudaStream_t s = cuda_of(b)->stream;
    dispatch_float_type(y->type, [&](auto tag) {
        using T = decltype(tag);
        gather_kernel<T><<<grid_for(n), BLOCK, 0, s>>>((const T *)table->data,
                                                       (const int32_t *)ids->data, (T *)y->data,
                                                       table->shape[0], c, n);
    });
    return cuda_check_launch("gather kernel", err);
}

extern "C" sdxl_status cuda_copy(backend *b, const tensor *x, tensor *y, sdxl_error *err)
{
    return cuda_check(cudaMemcpyAsync(y->data, x->data, tensor_nbytes(x), cudaMemcpyDeviceToDevice,
                                      cuda_of(b)->stream),
                      "copy", err);
}

extern "C" sdxl_status cuda_zero(backend *b, tensor *y, sdxl_error *err)
{
    return cuda_check(cudaMemsetAsync(y->data, 0, tensor_nbytes(y), cuda_of(b)->stream), "zero",
                      err);
}
