/*
 * cuda_backend.c — the cuda backend: creation (and a clear refusal on machines without a
 * usable GPU), device memory, weights, host copies and its op table.
 */
#include "backend/cuda/cuda_backend.h"

#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"

static void cuda_destroy(backend *b)
{
    cuda_backend *cb = cuda_of(b);
    if (cb->stream)
        cudaStreamSynchronize(cb->stream);
    /* Plans hold the library handles: free them first. */
    cuda_gemm_plans_free(cb);
    cuda_conv_plans_free(cb);
    cuda_sdpa_plans_free(cb);
    cuda_buffer_release(&cb->conv_workspace);
    cuda_buffer_release(&cb->scratch);
    cuda_buffer_release(&cb->staging);
    if (cb->gemm_workspace)
        cudaFree(cb->gemm_workspace);
    if (cb->dnn)
        cudnnDestroy(cb->dnn);
    if (cb->lt)
        cublasLtDestroy(cb->lt);
    if (cb->queued)
        cudaEventDestroy(cb->queued);
    if (cb->stream)
        cudaStreamDestroy(cb->stream);
    free(cb);
}

static sdxl_status device_alloc(cuda_backend *cb, size_t bytes, const char *what, void **out,
                                sdxl_error *err)
{
    *out = NULL;
    cudaError_t e = cudaMalloc(out, bytes);
    if (e == cudaSuccess)
        return SDXL_OK;
    *out = NULL;
    cudaGetLastError(); /* a failed allocation leaves no sticky error */
    return error_set(err, SDXL_ERR_OUT_OF_MEMORY,
                     "cuda backend: cannot allocate %zu bytes for %s on GPU %d (%s); lower the "
                     "image size or batch size, or free GPU memory",
                     bytes, what, cb->device, cudaGetErrorString(e));
}

static sdxl_status cuda_buffer_alloc(backend *b, size_t bytes, void **out, sdxl_error *err)
{
    /* cudaMalloc's blocks are 256-byte aligned: TENSOR_ALIGN. */
    return device_alloc(cuda_of(b), bytes, "an activation buffer", out, err);
}

static void cuda_buffer_free(backend *b, void *buffer)
{
    cudaFree(buffer);
}

/* Host f32 in the backend's layout for the weight (see cuda_internal.h); NULL when out of
 * memory. */
static float *weight_layout(const tensor *w, dtype src_type, const void *src)
{
    size_t n = (size_t)tensor_numel(w);
    float *f = malloc(n * sizeof(float));
    if (!f)
        return NULL;
    dtype_to_f32(src_type, src, f, n);
    if (w->kind != TENSOR_WEIGHT_CONV)
        return f;
    float *arranged = malloc(n * sizeof(float));
    if (arranged)
        cuda_conv_weight_layout(f, arranged, w->shape[0], w->shape[1], w->shape[2], w->shape[3]);
    free(f);
    return arranged;
}

static sdxl_status cuda_weight_upload(backend *b, tensor *out, dtype src_type, const void *src,
                                      sdxl_error *err)
{
    cuda_backend *cb = cuda_of(b);
    size_t n = (size_t)tensor_numel(out), bytes = tensor_nbytes(out);
    /* Stored as given (an fp16 file into an fp16 backend): copied as it is, no conversion. */
    bool as_given = src_type == out->type && out->kind != TENSOR_WEIGHT_CONV;
    float *f = as_given ? NULL : weight_layout(out, src_type, src);
    void *host = as_given ? (void *)src : f;
    if (f && out->type != DTYPE_F32) {
        host = malloc(bytes);
        if (host)
            dtype_from_f32(out->type, f, host, n);
    }
    sdxl_status st = SDXL_OK;
    if (!host)
        st = error_set(err, SDXL_ERR_OUT_OF_MEMORY,
                       "cuda backend: out of host memory converting a weight of %zu elements", n);
    void *dev = NULL;
    if (!st)
        st = device_alloc(cb, bytes, "a weight", &dev, err);
    if (!st)
        st = cuda_check(cudaMemcpyAsync(dev, host, bytes, cudaMemcpyHostToDevice, cb->stream),
                        "uploading a weight", err);
    /* The host copy is freed below: wait until the device has it. */
    if (!st)
        st = cuda_check(cudaStreamSynchronize(cb->stream), "uploading a weight", err);
    if (host != f && !as_given)
        free(host);
    free(f);
    if (st) {
        if (dev)
            cudaFree(dev);
        return st;
    }
    out->data = dev;
    return SDXL_OK;
}

static void cuda_weight_free(backend *b, tensor *t)
{
    cudaFree(t->data);
}

/* Writes and reads wait for the copy, so the caller may reuse its host memory at once
 * (whether it is pageable or pinned). A host side of another type (fp32 for an fp16 or bf16
 * tensor) travels as fp32 through the staging buffer and is converted on the GPU. */
static sdxl_status cuda_tensor_write(backend *b, tensor *t, dtype host_type, const void *src,
                                     sdxl_error *err)
{
    cuda_backend *cb = cuda_of(b);
    int64_t n = tensor_numel(t);
    size_t bytes = (size_t)n * dtype_size(host_type);
    void *to = t->data;
    if (host_type != t->type) {
        SDXL_TRY(cuda_buffer_reserve(cb, &cb->staging, bytes, "host copy staging", err));
        to = cb->staging.data;
    }
    SDXL_TRY(cuda_check(cudaMemcpyAsync(to, src, bytes, cudaMemcpyHostToDevice, cb->stream),
                        "writing a tensor", err));
    if (host_type != t->type)
        SDXL_TRY(cuda_convert(cb, host_type, to, t->type, t->data, n, err));
    return cuda_check(cudaStreamSynchronize(cb->stream), "writing a tensor", err);
}

static sdxl_status cuda_tensor_read(backend *b, const tensor *t, dtype host_type, void *dst,
                                    sdxl_error *err)
{
    cuda_backend *cb = cuda_of(b);
    int64_t n = tensor_numel(t);
    size_t bytes = (size_t)n * dtype_size(host_type);
    const void *from = t->data;
    if (host_type != t->type) {
        SDXL_TRY(cuda_buffer_reserve(cb, &cb->staging, bytes, "host copy staging", err));
        SDXL_TRY(cuda_convert(cb, t->type, t->data, host_type, cb->staging.data, n, err));
        from = cb->staging.data;
    }
    SDXL_TRY(cuda_check(cudaMemcpyAsync(dst, from, bytes, cudaMemcpyDeviceToHost, cb->stream),
                        "reading a tensor", err));
    /* Also where a failure of an earlier queued op is reported. */
    return cuda_check(cudaStreamSynchronize(cb->stream), "running queued ops", err);
}

static sdxl_status cuda_synchronize(backend *b, sdxl_error *err)
{
    return cuda_check(cudaStreamSynchronize(cuda_of(b)->stream), "running queued ops", err);
}

/* other's queue so far marked by its event; b's queue waits for the mark on the GPU. */
static sdxl_status cuda_wait_for(backend *b, backend *other, sdxl_error *err)
{
    cuda_backend *ob = cuda_of(other);
    SDXL_TRY(cuda_check(cudaEventRecord(ob->queued, ob->stream), "marking a queue", err));
    return cuda_check(cudaStreamWaitEvent(cuda_of(b)->stream, ob->queued, 0),
                      "waiting for another queue", err);
}

static const backend_ops cuda_ops = {
    .name = "cuda",
    .destroy = cuda_destroy,
    .buffer_alloc = cuda_buffer_alloc,
    .buffer_free = cuda_buffer_free,
    .weight_upload = cuda_weight_upload,
    .weight_free = cuda_weight_free,
    .tensor_write = cuda_tensor_write,
    .tensor_read = cuda_tensor_read,
    .synchronize = cuda_synchronize,
    .wait_for = cuda_wait_for,
    .record_begin = cuda_record_begin,
    .record_end = cuda_record_end,
    .graph_current = cuda_graph_current,
    .graph_launch = cuda_graph_launch,
    .graph_free = cuda_graph_free,
    .linear = cuda_linear,
    .linear_add = cuda_linear_add,
    .linear_groups = cuda_linear_groups,
    .matmul = cuda_matmul,
    .conv2d = cuda_conv2d,
    .group_norm = cuda_group_norm,
    .layer_norm = cuda_layer_norm,
    .softmax = cuda_softmax,
    .attention = cuda_attention,
    .unary = cuda_unary,
    .geglu = cuda_geglu,
    .binary = cuda_binary,
    .add_scaled = cuda_add_scaled,
    .scale = cuda_scale,
    .div_scalar = cuda_div_scalar,
    .clamp = cuda_clamp,
    .gaussian_sample = cuda_gaussian_sample,
    .convert = cuda_convert_tensor,
    .normalize_pixels = cuda_normalize_pixels,
    .denormalize_pixels = cuda_denormalize_pixels,
    .add_channels = cuda_add_channels,
    .upsample_nearest2x = cuda_upsample_nearest2x,
    .concat_channels = cuda_concat_channels,
    .slice_channels = cuda_slice_channels,
    .timestep_embedding = cuda_timestep_embedding,
    .gather_rows = cuda_gather_rows,
    .copy = cuda_copy,
    .zero = cuda_zero,
};

/* The device to use, or SDXL_ERR_UNSUPPORTED saying why there is none. */
static sdxl_status find_device(int device, struct cudaDeviceProp *prop, sdxl_error *err)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count < 1) {
        cudaGetLastError();
        return error_set(err, SDXL_ERR_UNSUPPORTED,
                         "no CUDA device: %s; use the cpu backend (--backend cpu)",
                         e != cudaSuccess ? cudaGetErrorString(e) : "the driver reports none");
    }
    if (device < 0 || device >= count)
        return error_set(err, SDXL_ERR_UNSUPPORTED,
                         "no CUDA device: device %d was asked for; this machine has %d (0..%d)",
                         device, count, count - 1);
    SDXL_TRY(
        cuda_check(cudaGetDeviceProperties(prop, device), "reading the device's properties", err));
    if (prop->major < 8)
        return error_set(err, SDXL_ERR_UNSUPPORTED,
                         "no CUDA device: GPU %d (%s) has compute capability %d.%d; the cuda "
                         "backend needs 8.0 (Ampere) or newer",
                         device, prop->name, prop->major, prop->minor);
    return SDXL_OK;
}

/* SDXLD_CUDA_ATTENTION (docs/OPERATIONS.md): which attention runs. The forced values exist to
 * measure one against the other, so a misspelt value is an error, not the default. */
static sdxl_status attention_path(cuda_attention_path *out, sdxl_error *err)
{
    static const struct {
        const char *value;
        cuda_attention_path path;
    } accepted[] = {
        {"auto", CUDA_ATTENTION_AUTO},
        {"flash", CUDA_ATTENTION_FLASH},
        {"cudnn", CUDA_ATTENTION_CUDNN},
    };
    const char *value = getenv("SDXLD_CUDA_ATTENTION");
    *out = CUDA_ATTENTION_AUTO;
    if (!value)
        return SDXL_OK;
    for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++)
        if (strcmp(value, accepted[i].value) == 0) {
            *out = accepted[i].path;
            return SDXL_OK;
        }
    return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                     "cuda backend: SDXLD_CUDA_ATTENTION is \"%s\"; accepted values: \"auto\" "
                     "(the default when unset: each shape to the faster of the two), \"flash\" "
                     "(our kernel only) or \"cudnn\" (cuDNN's fused attention only, for "
                     "measuring)",
                     value);
}

sdxl_status cuda_backend_create(const backend_params *params, backend **out, sdxl_error *err)
{
    *out = NULL;
    dtype type = params->compute_type;
    if (type != DTYPE_F16 && type != DTYPE_BF16 && type != DTYPE_F32)
        return error_set(err, SDXL_ERR_UNSUPPORTED,
                         "cuda backend: compute type %s is not supported; use F16, BF16, or F32 "
                         "for checks",
                         dtype_name(type));
    /* Before the device: a bad value is reported on any machine. */
    cuda_attention_path attention;
    SDXL_TRY(attention_path(&attention, err));
    struct cudaDeviceProp prop;
    SDXL_TRY(find_device(params->device, &prop, err));
    cuda_backend *cb = calloc(1, sizeof(*cb));
    if (!cb)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "cuda backend: out of host memory");
    cb->attention = attention;
    cb->base.ops = &cuda_ops;
    cb->base.params = *params;
    cb->device = params->device;
    cb->max_shared_optin = (int)prop.sharedMemPerBlockOptin;
    cb->multiprocessors = prop.multiProcessorCount;
    sdxl_status st = cuda_check(cudaSetDevice(cb->device), "selecting the GPU", err);
    if (!st)
        st = cuda_check(cudaStreamCreateWithFlags(&cb->stream, cudaStreamNonBlocking),
                        "creating a stream", err);
    if (!st)
        st = cuda_check(cudaEventCreateWithFlags(&cb->queued, cudaEventDisableTiming),
                        "creating an event", err);
    if (!st)
        st = cuda_check_blas(cublasLtCreate(&cb->lt), "starting cuBLASLt", err);
    if (!st)
        st = cuda_check_dnn(cudnnCreate(&cb->dnn), "starting cuDNN", err);
    if (!st)
        st = cuda_check_dnn(cudnnSetStream(cb->dnn, cb->stream), "starting cuDNN", err);
    if (!st)
        st = device_alloc(cb, CUDA_GEMM_WORKSPACE, "the matrix-product workspace",
                          &cb->gemm_workspace, err);
    if (st) {
        cuda_destroy(&cb->base);
        return st;
    }
    *out = &cb->base;
    return SDXL_OK;
}
