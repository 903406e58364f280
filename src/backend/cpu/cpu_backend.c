/*
 * cpu_backend.c — the cpu backend: creation, memory, weights, host copies and its op table.
 */
#include "backend/cpu/cpu_backend.h"

#include <stdlib.h>
#include <string.h>

static void cpu_destroy(backend *b)
{
    cpu_backend *cb = cpu_of(b);
    if (cb->scratch)
        for (int i = 0; i < cb->n_threads; i++)
            cpu_platform_free(cb->scratch[i]);
    free(cb->scratch);
    free(cb->scratch_floats);
    cpu_platform_free(cb->shared);
    threadpool_destroy(cb->pool);
    free(cb);
}

sdxl_status cpu_scratch_reserve(cpu_backend *cb, size_t floats, sdxl_error *err)
{
    for (int i = 0; i < cb->n_threads; i++) {
        if (cb->scratch_floats[i] >= floats)
            continue;
        cpu_platform_free(cb->scratch[i]);
        cb->scratch_floats[i] = 0;
        cb->scratch[i] = cpu_platform_alloc(floats * sizeof(float));
        if (!cb->scratch[i])
            return error_set(err, SDXL_ERR_OUT_OF_MEMORY,
                             "cpu backend: cannot allocate %zu bytes of scratch per thread; "
                             "use fewer threads or a smaller image",
                             floats * sizeof(float));
        cb->scratch_floats[i] = floats;
    }
    return SDXL_OK;
}

sdxl_status cpu_shared_reserve(cpu_backend *cb, size_t bytes, sdxl_error *err)
{
    if (cb->shared_bytes >= bytes)
        return SDXL_OK;
    cpu_platform_free(cb->shared);
    cb->shared_bytes = 0;
    cb->shared = cpu_platform_alloc(bytes);
    if (!cb->shared)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY,
                         "cpu backend: cannot allocate %zu bytes of scratch", bytes);
    cb->shared_bytes = bytes;
    return SDXL_OK;
}

static sdxl_status cpu_buffer_alloc(backend *b, size_t bytes, void **out, sdxl_error *err)
{
    /* TENSOR_ALIGN, not the platform's 64: arenas carve tensors at offsets aligned to it. */
    size_t rounded = (bytes + TENSOR_ALIGN - 1) / TENSOR_ALIGN * TENSOR_ALIGN;
    *out = rounded >= bytes ? aligned_alloc(TENSOR_ALIGN, rounded) : NULL;
    if (!*out)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY,
                         "cpu backend: cannot allocate %zu bytes; lower the image size or batch "
                         "size, or free memory",
                         bytes);
    return SDXL_OK;
}

static void cpu_buffer_free(backend *b, void *buffer)
{
    free(buffer);
}

static sdxl_status cpu_weight_upload(backend *b, tensor *out, dtype src_type, const void *src,
                                     sdxl_error *err)
{
    size_t n = (size_t)tensor_numel(out);
    float *data = cpu_platform_alloc(n * sizeof(float));
    if (!data)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY,
                         "cpu backend: cannot allocate %zu bytes for a weight",
                         n * sizeof(float));
    if (out->kind == TENSOR_WEIGHT_CONV) {
        float *tmp = cpu_platform_alloc(n * sizeof(float));
        if (!tmp) {
            cpu_platform_free(data);
            return error_set(err, SDXL_ERR_OUT_OF_MEMORY,
                             "cpu backend: cannot allocate %zu bytes for a weight",
                             n * sizeof(float));
        }
        dtype_to_f32(src_type, src, tmp, n);
        cpu_conv_weight_layout(tmp, data, (int)out->shape[0], (int)out->shape[1],
                               (int)out->shape[2], (int)out->shape[3]);
        cpu_platform_free(tmp);
    } else {
        dtype_to_f32(src_type, src, data, n);
    }
    out->data = data;
    return SDXL_OK;
}

static void cpu_weight_free(backend *b, tensor *t)
{
    cpu_platform_free(t->data);
}

static sdxl_status cpu_tensor_write(backend *b, tensor *t, dtype host_type, const void *src,
                                    sdxl_error *err)
{
    memcpy(t->data, src, tensor_nbytes(t));
    return SDXL_OK;
}

static sdxl_status cpu_tensor_read(backend *b, const tensor *t, dtype host_type, void *dst,
                                   sdxl_error *err)
{
    memcpy(dst, t->data, tensor_nbytes(t));
    return SDXL_OK;
}

static sdxl_status cpu_synchronize(backend *b, sdxl_error *err)
{
    return SDXL_OK;
}

/* Every op has finished when its call returns: nothing to order. */
static sdxl_status cpu_wait_for(backend *b, backend *other, sdxl_error *err)
{
    return SDXL_OK;
}

static const backend_ops cpu_ops = {
    .name = "cpu",
    .destroy = cpu_destroy,
    .buffer_alloc = cpu_buffer_alloc,
    .buffer_free = cpu_buffer_free,
    .weight_upload = cpu_weight_upload,
    .weight_free = cpu_weight_free,
    .tensor_write = cpu_tensor_write,
    .tensor_read = cpu_tensor_read,
    .synchronize = cpu_synchronize,
    .wait_for = cpu_wait_for,
    .linear = cpu_linear,
    .linear_add = cpu_linear_add,
    .linear_groups = cpu_linear_groups,
    .matmul = cpu_matmul,
    .conv2d = cpu_conv2d,
    .group_norm = cpu_group_norm,
    .layer_norm = cpu_layer_norm,
    .softmax = cpu_softmax,
    .attention = cpu_attention,
    .unary = cpu_unary,
    .geglu = cpu_geglu,
    .binary = cpu_binary,
    .add_scaled = cpu_add_scaled,
    .scale = cpu_scale,
    .div_scalar = cpu_div_scalar,
    .clamp = cpu_clamp,
    .gaussian_sample = cpu_gaussian_sample,
    .convert = cpu_convert,
    .normalize_pixels = cpu_normalize_pixels,
    .denormalize_pixels = cpu_denormalize_pixels,
    .add_channels = cpu_add_channels,
    .upsample_nearest2x = cpu_upsample_nearest2x,
    .concat_channels = cpu_concat_channels,
    .slice_channels = cpu_slice_channels,
    .timestep_embedding = cpu_timestep_embedding,
    .gather_rows = cpu_gather_rows,
    .copy = cpu_copy,
    .zero = cpu_zero,
};

sdxl_status cpu_backend_create(const backend_params *params, backend **out, sdxl_error *err)
{
    *out = NULL;
    if (params->compute_type != DTYPE_F32)
        return error_set(err, SDXL_ERR_UNSUPPORTED,
                         "cpu backend: compute type %s is not supported; the cpu backend "
                         "computes in F32",
                         dtype_name(params->compute_type));
    cpu_backend *cb = calloc(1, sizeof(*cb));
    if (!cb)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "cpu backend: out of memory");
    cb->base.ops = &cpu_ops;
    cb->base.params = *params;
    sdxl_error pool_err;
    cb->pool = threadpool_create(params->n_threads, &pool_err);
    if (!cb->pool) {
        free(cb);
        return error_set(err, pool_err.code, "cpu backend: %s", pool_err.message);
    }
    cb->n_threads = threadpool_size(cb->pool);
    cb->base.params.n_threads = cb->n_threads;
    cb->scratch = calloc((size_t)cb->n_threads, sizeof(*cb->scratch));
    cb->scratch_floats = calloc((size_t)cb->n_threads, sizeof(*cb->scratch_floats));
    if (!cb->scratch || !cb->scratch_floats) {
        cpu_destroy(&cb->base);
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "cpu backend: out of memory");
    }
    cpu_platform_blas_single_thread();
    *out = &cb->base;
    return SDXL_OK;
}
