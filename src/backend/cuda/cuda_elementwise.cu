/*
 * cuda_elementwise.cu — element-wise ops: activations, GEGLU, add / multiply with repetition
 * over leading dimensions, scaled add, affine scale, division by a scalar, clamp, the VAE's
 * Gaussian sample, a per-image vector added at every position (the UNet's time embedding into
 * a resnet; also a conv's bias), conversion between float types, and pixels to and from the
 * VAE's [-1, 1].
 *
 * One thread per output element, grid-stride; each element is computed on its own, so in-place
 * use (y == x) is safe and the bits do not depend on the launch shape. Kernels take the
 * element type from the tensors (dispatch_float_type), so the scheduler's F32 latents run on a
 * backend computing in F16 or BF16 too. The build's --fmad=false keeps every product rounded
 * on its own and `/` is IEEE division (no fast-math), so on F32 tensors add_scaled, scale,
 * div_scalar and clamp give the cpu backend's bits, and the pixel ops give them on every type.
 */
#include "backend/cuda/cuda_device.cuh"

using namespace sdxl_cuda;

template <typename T> __global__ void unary_kernel(backend_unary_op op, const T *x, T *y, int64_t n)
{
    for (int64_t i = global_thread(); i < n; i += global_stride())
        y[i] = from_float<T>(activate(op, to_float(x[i])));
}

/* y [rows, F] = x[:, :F] * gelu(x[:, F:]) with x [rows, 2F]. */
template <typename T> __global__ void geglu_kernel(const T *x, T *y, int64_t f, int64_t n)
{
    for (int64_t i = global_thread(); i < n; i += global_stride()) {
        int64_t r = i / f, j = i % f;
        const T *row = x + r * 2 * f;
        y[i] = from_float<T>(to_float(row[j]) * gelu(to_float(row[f + j])));
    }
}

/* y = x op z, z repeated every nz elements (z is x's trailing dimensions). */
template <typename T>
__global__ void binary_kernel(backend_binary_op op, const T *x, const T *z, T *y, int64_t n,
                              int64_t nz)
{
    for (int64_t i = global_thread(); i < n; i += global_stride()) {
        float a = to_float(x[i]), b = to_float(z[i % nz]);
        y[i] = from_float<T>(op == BACKEND_BINARY_ADD ? a + b : a * b);
    }
}

/* The same, a 16-byte vector per thread (n and nz multiples of the vector width), with index
 * arithmetic in I (32 bits when n allows: 64-bit division costs more than the memory). */
template <typename T, typename I>
__global__ void binary_vec_kernel(backend_binary_op op, const T *x, const T *z, T *y, I n, I nz)
{
    constexpr int N = VEC<T>;
    for (I i = (I)global_thread() * N; i < n; i += (I)global_stride() * N) {
        T xv[N], zv[N], yv[N];
        load_vec(x + i, xv);
        load_vec(z + i % nz, zv);
#pragma unroll
        for (int k = 0; k < N; k++) {
            float a = to_float(xv[k]), b = to_float(zv[k]);
            yv[k] = from_float<T>(op == BACKEND_BINARY_ADD ? a + b : a * b);
        }
        store_vec(y + i, yv);
    }
}

template <typename T>
__global__ void add_scaled_kernel(float alpha, const T *x, float beta, const T *z, T *y, int64_t n)
{
    for (int64_t i = global_thread(); i < n; i += global_stride())
        y[i] = from_float<T>(alpha * to_float(x[i]) + beta * to_float(z[i]));
}

/* The element-wise ops of x and two scalars a, b (one op per launch). */
enum scalar_op {
    SCALAR_AFFINE, /* a · x + b */
    SCALAR_DIV,    /* x / a */
    SCALAR_CLAMP,  /* x within [a, b]; comparisons with NaN are false, so NaN stays NaN (fminf
                    * and fmaxf would drop it) */
};

__device__ __forceinline__ float scalar_apply(scalar_op op, float v, float a, float b)
{
    switch (op) {
    case SCALAR_AFFINE:
        return a * v + b;
    case SCALAR_DIV:
        return v / a;
    default:
        return v < a ? a : v > b ? b : v;
    }
}

template <typename T>
__global__ void scalar_kernel(scalar_op op, const T *x, float a, float b, T *y, int64_t n)
{
    for (int64_t i = global_thread(); i < n; i += global_stride())
        y[i] = from_float<T>(scalar_apply(op, to_float(x[i]), a, b));
}

/* CUDA's accurate expf (2 ulp at most), not __expf. */
template <typename T>
__global__ void gaussian_sample_kernel(const T *mean, const T *logvar, const T *noise, T *y,
                                       int64_t n)
{
    for (int64_t i = global_thread(); i < n; i += global_stride()) {
        float sd = expf(0.5f * to_float(logvar[i]));
        float scaled = sd * to_float(noise[i]);
        y[i] = from_float<T>(to_float(mean[i]) + scaled);
    }
}

/* 2 · (x / 255) − 1, one float rounding per operation (backend.h). */
template <typename T>
__global__ void normalize_pixels_kernel(const uint8_t *x, T *y, int64_t n)
{
    for (int64_t i = global_thread(); i < n; i += global_stride()) {
        float unit = (float)x[i] / 255.0f;
        float twice = 2.0f * unit;
        y[i] = from_float<T>(twice - 1.0f);
    }
}

/* round(clamp(x / 2 + 0.5, 0, 1) · 255), half to even (rintf); NaN → 0. */
template <typename T>
__global__ void denormalize_pixels_kernel(const T *x, uint8_t *y, int64_t n)
{
    for (int64_t i = global_thread(); i < n; i += global_stride()) {
        float half = to_float(x[i]) / 2.0f;
        float v = half + 0.5f;
        if (isnan(v)) {
            y[i] = 0;
            continue;
        }
        v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
        y[i] = (uint8_t)rintf(v * 255.0f);
    }
}

/* y[n, p, c] = x[n, p, c] + e[n, c] over `per_image` = positions * C elements per image. */
template <typename T>
__global__ void add_channels_kernel(const T *x, const T *e, T *y, int64_t n, int64_t per_image,
                                    int64_t c)
{
    for (int64_t i = global_thread(); i < n; i += global_stride())
        y[i] = from_float<T>(to_float(x[i]) + to_float(e[(i / per_image) * c + i % c]));
}

extern "C" sdxl_status cuda_unary(backend *b, backend_unary_op op, const tensor *x, tensor *y,
                                  sdxl_error *err)
{
    int64_t n = tensor_numel(x);
    cudaStream_t s = cuda_of(b)->stream;
    dispatch_float_type(x->type, [&](auto tag) {
        using T = decltype(tag);
        unary_kernel<T><<<grid_for(n), BLOCK, 0, s>>>(op, (const T *)x->data, (T *)y->data, n);
    });
    return cuda_check_launch("activation kernel", err);
}

extern "C" sdxl_status cuda_geglu(backend *b, const tensor *x, tensor *y, sdxl_error *err)
{
    int64_t n = tensor_numel(y), f = tensor_last_dim(y);
    cudaStream_t s = cuda_of(b)->stream;
    dispatch_float_type(x->type, [&](auto tag) {
        using T = decltype(tag);
        geglu_kernel<T><<<grid_for(n), BLOCK, 0, s>>>((const T *)x->data, (T *)y->data, f, n);
    });
    return cuda_check_launch("geglu kernel", err);
}

extern "C" sdxl_status cuda_binary(backend *b, backend_binary_op op, const tensor *x,
                                   const tensor *z, tensor *y, sdxl_error *err)
{
    int64_t n = tensor_numel(x), nz = tensor_numel(z);
    cudaStream_t s = cuda_of(b)->stream;
    bool vec = vec_ok(dtype_size(x->type), {x->data, z->data, y->data}, {nz});
    dispatch_float_type(x->type, [&](auto tag) {
        using T = decltype(tag);
        if (vec)
            dispatch_index_type(n, [&](auto index) {
                using I = decltype(index);
                binary_vec_kernel<T, I><<<grid_for(n / VEC<T>), BLOCK, 0, s>>>(
                    op, (const T *)x->data, (const T *)z->data, (T *)y->data, (I)n, (I)nz);
            });
        else
            binary_kernel<T><<<grid_for(n), BLOCK, 0, s>>>(op, (const T *)x->data,
                                                           (const T *)z->data, (T *)y->data, n, nz);
    });
    return cuda_check_launch(op == BACKEND_BINARY_ADD ? "add kernel" : "mul kernel", err);
}

extern "C" sdxl_status cuda_add_scaled(backend *b, float alpha, const tensor *x, float beta,
                                       const tensor *z, tensor *y, sdxl_error *err)
{
    int64_t n = tensor_numel(x);
    cudaStream_t s = cuda_of(b)->stream;
    dispatch_float_type(x->type, [&](auto tag) {
        using T = decltype(tag);
        add_scaled_kernel<T><<<grid_for(n), BLOCK, 0, s>>>(alpha, (const T *)x->data, beta,
                                                           (const T *)z->data, (T *)y->data, n);
    });
    return cuda_check_launch("add_scaled kernel", err);
}

static sdxl_status launch_scalar(backend *b, scalar_op op, const tensor *x, float a, float c,
                                 tensor *y, const char *what, sdxl_error *err)
{
    int64_t n = tensor_numel(x);
    cudaStream_t s = cuda_of(b)->stream;
    dispatch_float_type(x->type, [&](auto tag) {
        using T = decltype(tag);
        scalar_kernel<T>
            <<<grid_for(n), BLOCK, 0, s>>>(op, (const T *)x->data, a, c, (T *)y->data, n);
    });
    return cuda_check_launch(what, err);
}

extern "C" sdxl_status cuda_scale(backend *b, const tensor *x, float alpha, float beta, tensor *y,
                                  sdxl_error *err)
{
    return launch_scalar(b, SCALAR_AFFINE, x, alpha, beta, y, "scale kernel", err);
}

extern "C" sdxl_status cuda_div_scalar(backend *b, const tensor *x, float divisor, tensor *y,
                                       sdxl_error *err)
{
    return launch_scalar(b, SCALAR_DIV, x, divisor, 0.0f, y, "div_scalar kernel", err);
}

extern "C" sdxl_status cuda_clamp(backend *b, const tensor *x, float lo, float hi, tensor *y,
                                  sdxl_error *err)
{
    return launch_scalar(b, SCALAR_CLAMP, x, lo, hi, y, "clamp kernel", err);
}

extern "C" sdxl_status cuda_gaussian_sample(backend *b, const tensor *mean, const tensor *logvar,
                                            const tensor *noise, tensor *y, sdxl_error *err)
{
    int64_t n = tensor_numel(mean);
    cudaStream_t s = cuda_of(b)->stream;
    dispatch_float_type(mean->type, [&](auto tag) {
        using T = decltype(tag);
        gaussian_sample_kernel<T><<<grid_for(n), BLOCK, 0, s>>>(
            (const T *)mean->data, (const T *)logvar->data, (const T *)noise->data, (T *)y->data,
            n);
    });
    return cuda_check_launch("gaussian_sample kernel", err);
}

/* x may be another backend's (the VAE's), ordered before this call by backend_wait_for. */
extern "C" sdxl_status cuda_convert_tensor(backend *b, const tensor *x, tensor *y,
                                           sdxl_error *err)
{
    if (x->type == y->type)
        return cuda_copy(b, x, y, err);
    return cuda_convert(cuda_of(b), x->type, x->data, y->type, y->data, tensor_numel(x), err);
}

extern "C" sdxl_status cuda_normalize_pixels(backend *b, const tensor *x, tensor *y,
                                             sdxl_error *err)
{
    int64_t n = tensor_numel(x);
    cudaStream_t s = cuda_of(b)->stream;
    dispatch_float_type(y->type, [&](auto tag) {
        using T = decltype(tag);
        normalize_pixels_kernel<T>
            <<<grid_for(n), BLOCK, 0, s>>>((const uint8_t *)x->data, (T *)y->data, n);
    });
    return cuda_check_launch("normalize_pixels kernel", err);
}

extern "C" sdxl_status cuda_denormalize_pixels(backend *b, const tensor *x, tensor *y,
                                               sdxl_error *err)
{
    int64_t n = tensor_numel(x);
    cudaStream_t s = cuda_of(b)->stream;
    dispatch_float_type(x->type, [&](auto tag) {
        using T = decltype(tag);
        denormalize_pixels_kernel<T>
            <<<grid_for(n), BLOCK, 0, s>>>((const T *)x->data, (uint8_t *)y->data, n);
    });
    return cuda_check_launch("denormalize_pixels kernel", err);
}

extern "C" sdxl_status cuda_add_channels(backend *b, const tensor *x, const tensor *e, tensor *y,
                                         sdxl_error *err)
{
    int64_t n = tensor_numel(x), c = tensor_last_dim(x), per_image = n / x->shape[0];
    cudaStream_t s = cuda_of(b)->stream;
    dispatch_float_type(x->type, [&](auto tag) {
        using T = decltype(tag);
        add_channels_kernel<T><<<grid_for(n), BLOCK, 0, s>>>((const T *)x->data, (const T *)e->data,
                                                             (T *)y->data, n, per_image, c);
    });
    return cuda_check_launch("add_channels kernel", err);
}
