/*
 * cuda_status.c — turning CUDA, cuBLASLt and cuDNN failures into sdxl_status with the
 * library's own message, and the grow-once device buffers and plan lists of the backend.
 */
#include "backend/cuda/cuda_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

sdxl_status cuda_check(cudaError_t e, const char *what, sdxl_error *err)
{
    if (e == cudaSuccess)
        return SDXL_OK;
    sdxl_status code = e == cudaErrorMemoryAllocation ? SDXL_ERR_OUT_OF_MEMORY : SDXL_ERR_BACKEND;
    return error_set(err, code, "cuda backend: %s: %s (%s)", what, cudaGetErrorString(e),
                     cudaGetErrorName(e));
}

sdxl_status cuda_check_blas(cublasStatus_t s, const char *what, sdxl_error *err)
{
    if (s == CUBLAS_STATUS_SUCCESS)
        return SDXL_OK;
    sdxl_status code = s == CUBLAS_STATUS_ALLOC_FAILED ? SDXL_ERR_OUT_OF_MEMORY : SDXL_ERR_BACKEND;
    return error_set(err, code, "cuda backend: %s: cuBLASLt: %s (%s)", what,
                     cublasLtGetStatusString(s), cublasLtGetStatusName(s));
}

sdxl_status cuda_check_dnn(cudnnStatus_t s, const char *what, sdxl_error *err)
{
    if (s == CUDNN_STATUS_SUCCESS)
        return SDXL_OK;
    /* cuDNN keeps a longer explanation of its last failure than the status's name. */
    char detail[256];
    cudnnGetLastErrorString(detail, sizeof(detail));
    return error_set(err, SDXL_ERR_BACKEND, "cuda backend: %s: cuDNN: %s%s%s", what,
                     cudnnGetErrorString(s), detail[0] ? ": " : "", detail);
}

sdxl_status cuda_check_launch(const char *kernel, sdxl_error *err)
{
    return cuda_check(cudaGetLastError(), kernel, err);
}

sdxl_status cuda_buffer_reserve(cuda_backend *cb, cuda_buffer *buf, size_t bytes, const char *what,
                                sdxl_error *err)
{
    if (buf->bytes >= bytes)
        return SDXL_OK;
    if (cb->base.recording)
        return error_set(err, SDXL_ERR_UNSUPPORTED,
                         "cuda backend: %s must grow to %zu bytes while a graph is recording; run "
                         "the same ops once before recording them",
                         what, bytes);
    /* Queued ops may still read the old block. */
    sdxl_status st = cuda_check(cudaStreamSynchronize(cb->stream), "waiting to grow scratch", err);
    if (st)
        return st;
    cuda_buffer_release(buf);
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess) {
        cudaGetLastError(); /* an allocation failure is not sticky: leave no trace of it */
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY,
                         "cuda backend: cannot allocate %zu bytes of %s on the GPU (%s); use a "
                         "smaller image or batch",
                         bytes, what, cudaGetErrorString(e));
    }
    buf->data = p;
    buf->bytes = bytes;
    buf->replacements++;
    return SDXL_OK;
}

void cuda_buffer_release(cuda_buffer *buf)
{
    if (buf->data)
        cudaFree(buf->data);
    buf->data = NULL;
    buf->bytes = 0;
}

sdxl_status cuda_plan_cache_add(cuda_plan_cache *cache, void *plan, sdxl_error *err)
{
    if (cache->count == cache->capacity) {
        size_t cap = cache->capacity ? 2 * cache->capacity : 64;
        void **grown = realloc(cache->plans, cap * sizeof(*grown));
        if (!grown)
            return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "cuda backend: out of host memory");
        cache->plans = grown;
        cache->capacity = cap;
    }
    cache->plans[cache->count++] = plan;
    return SDXL_OK;
}

void *cuda_plan_cache_find(const cuda_plan_cache *cache, const void *key, size_t key_bytes)
{
    for (size_t i = 0; i < cache->count; i++)
        if (memcmp(cache->plans[i], key, key_bytes) == 0)
            return cache->plans[i];
    return NULL;
}

int cuda_alignment(const void *p, size_t offset_bytes)
{
    uintptr_t bits = (uintptr_t)p | (uintptr_t)offset_bytes | CUDA_ALIGNMENT_CAP;
    return (int)(bits & (~bits + 1)); /* the lowest set bit */
}
