/*
 * tensor.c — tensor sizes, arena allocation and views (see tensor.h).
 */
#include "backend/tensor.h"

#include <stdio.h>
#include <string.h>

int64_t tensor_numel(const tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

size_t tensor_nbytes(const tensor *t)
{
    return (size_t)tensor_numel(t) * dtype_size(t->type);
}

bool tensor_same_shape(const tensor *a, const tensor *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return false;
    return true;
}

int64_t tensor_last_dim(const tensor *t)
{
    return t->shape[t->ndim - 1];
}

int64_t tensor_rows(const tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i + 1 < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

const char *tensor_shape_str(const tensor *t, char *buf, size_t n)
{
    size_t used = 0;
    if (n == 0)
        return buf;
    buf[0] = '\0';
    used += (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < t->ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%lld", i ? ", " : "",
                                 (long long)t->shape[i]);
    if (used < n)
        snprintf(buf + used, n - used, "]");
    return buf;
}

/* Shapes are checked so that element counts and byte sizes cannot overflow. */
static sdxl_status check_shape(int ndim, const int64_t *shape, dtype type, sdxl_error *err)
{
    if (ndim < 1 || ndim > TENSOR_MAX_DIMS)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "tensor: %d dimensions; a tensor has 1 to %d", ndim, TENSOR_MAX_DIMS);
    if ((int)type < 0 || (int)type >= DTYPE_COUNT)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "tensor: unknown dtype %d", (int)type);
    int64_t limit = INT64_MAX / 16;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 1)
            return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                             "tensor: dimension %d is %lld; every dimension must be >= 1", i,
                             (long long)shape[i]);
        if (shape[i] > limit / n)
            return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                             "tensor: the shape's element count overflows");
        n *= shape[i];
    }
    return SDXL_OK;
}

sdxl_status tensor_alloc(tensor *t, arena *a, dtype type, int ndim, const int64_t *shape,
                         sdxl_error *err)
{
    sdxl_status st = check_shape(ndim, shape, type, err);
    if (st)
        return st;
    tensor r;
    memset(&r, 0, sizeof(r));
    r.type = type;
    r.kind = TENSOR_ACTIVATION;
    r.ndim = ndim;
    for (int i = 0; i < ndim; i++)
        r.shape[i] = shape[i];
    size_t bytes = tensor_nbytes(&r);
    if (!a->planning && arena_full(a, bytes, TENSOR_ALIGN)) {
        char buf[96];
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY,
                         "tensor %s: %zu bytes do not fit in the activation arena (%zu of %zu "
                         "bytes used); plan the arena with the same sizes as the run",
                         tensor_shape_str(&r, buf, sizeof(buf)), bytes, a->used, a->capacity);
    }
    r.data = arena_alloc(a, bytes, TENSOR_ALIGN);
    *t = r;
    return SDXL_OK;
}

sdxl_status tensor_alloc_like(tensor *t, arena *a, const tensor *like, sdxl_error *err)
{
    return tensor_alloc(t, a, like->type, like->ndim, like->shape, err);
}

sdxl_status tensor_view_outer(tensor *view, const tensor *t, int64_t first, int64_t count,
                              sdxl_error *err)
{
    char buf[96];
    if (t->kind != TENSOR_ACTIVATION)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "tensor view: %s is a weight; only activations have views",
                         tensor_shape_str(t, buf, sizeof(buf)));
    if (first < 0 || count < 1 || first > t->shape[0] - count)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "tensor view: rows %lld..%lld are outside %s", (long long)first,
                         (long long)(first + count - 1), tensor_shape_str(t, buf, sizeof(buf)));
    tensor r = *t;
    r.shape[0] = count;
    size_t stride = tensor_nbytes(&r) / (size_t)count;
    /* A planned tensor has no memory: its views have none either. */
    r.data = t->data ? (unsigned char *)t->data + (size_t)first * stride : NULL;
    *view = r;
    return SDXL_OK;
}

sdxl_status tensor_view_slice(tensor *view, const tensor *t, int64_t index, sdxl_error *err)
{
    char buf[96];
    if (t->ndim < 2)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "tensor slice: %s has one dimension; a slice keeps at least one",
                         tensor_shape_str(t, buf, sizeof(buf)));
    tensor one;
    SDXL_TRY(tensor_view_outer(&one, t, index, 1, err));
    tensor r = one;
    r.ndim = t->ndim - 1;
    for (int i = 0; i < TENSOR_MAX_DIMS; i++)
        r.shape[i] = i < r.ndim ? t->shape[i + 1] : 0;
    *view = r;
    return SDXL_OK;
}

sdxl_status tensor_reshape(tensor *view, const tensor *t, int ndim, const int64_t *shape,
                           sdxl_error *err)
{
    char buf[96];
    if (t->kind != TENSOR_ACTIVATION)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "tensor reshape: %s is a weight; only activations can be reshaped",
                         tensor_shape_str(t, buf, sizeof(buf)));
    sdxl_status st = check_shape(ndim, shape, t->type, err);
    if (st)
        return st;
    tensor r = *t;
    r.ndim = ndim;
    for (int i = 0; i < TENSOR_MAX_DIMS; i++)
        r.shape[i] = i < ndim ? shape[i] : 0;
    if (tensor_numel(&r) != tensor_numel(t)) {
        char buf2[96];
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "tensor reshape: %s has %lld elements, %s has %lld",
                         tensor_shape_str(t, buf, sizeof(buf)), (long long)tensor_numel(t),
                         tensor_shape_str(&r, buf2, sizeof(buf2)), (long long)tensor_numel(&r));
    }
    *view = r;
    return SDXL_OK;
}
