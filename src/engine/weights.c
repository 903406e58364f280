/*
 * weights.c — a model component's safetensors file onto a backend, by name (see weights.h).
 */
#include "engine/weights.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define WEIGHTS_NAME_MAX 512
/* A module's name leaves room for the ".weight" or ".bias" the layer helpers append. */
#define WEIGHTS_MODULE_MAX (WEIGHTS_NAME_MAX - sizeof ".weight")

static sdxl_status format_name(char *out, size_t size, sdxl_error *err, const char *fmt,
                               va_list args) SDXL_PRINTF(4, 0);

static sdxl_status format_name(char *out, size_t size, sdxl_error *err, const char *fmt,
                               va_list args)
{
    int n = vsnprintf(out, size, fmt, args);
    if (n < 0 || (size_t)n >= size)
        return error_set(err, SDXL_ERR_INTERNAL, "tensor name longer than %zu bytes: %s...",
                         size - 1, out);
    return SDXL_OK;
}

/* In a function taking (..., const char *fmt, ...): declares char name[size] holding the
 * formatted name, or returns the failure when it does not fit. */
#define FORMAT_NAME_OR_RETURN(name, size, err, fmt)                                              \
    char name[size];                                                                             \
    do {                                                                                         \
        va_list args_;                                                                           \
        va_start(args_, fmt);                                                                    \
        sdxl_status format_st_ = format_name(name, sizeof name, err, fmt, args_);                \
        va_end(args_);                                                                           \
        if (format_st_ != SDXL_OK)                                                               \
            return format_st_;                                                                   \
    } while (0)

sdxl_status weights_find_file(const char *model_dir, const char *component, const char *base,
                              char *path, size_t path_size, sdxl_error *err)
{
    static const char *const suffixes[] = {".fp16.safetensors", ".safetensors"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        int n = snprintf(path, path_size, "%s/%s/%s%s", model_dir, component, base, suffixes[i]);
        if (n < 0 || (size_t)n >= path_size)
            return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "model path too long: %s",
                             model_dir);
        if (access(path, R_OK) == 0)
            return SDXL_OK;
    }
    return error_set(err, SDXL_ERR_NOT_FOUND,
                     "%s/%s: no weights (expected %s.fp16.safetensors or %s.safetensors); "
                     "is this a diffusers model directory?",
                     model_dir, component, base, base);
}

sdxl_status weights_open(weights *w, const char *model_dir, const char *component,
                         const char *base, backend *be, weights_progress *progress,
                         sdxl_error *err)
{
    memset(w, 0, sizeof *w);
    char path[1024];
    sdxl_status st = weights_find_file(model_dir, component, base, path, sizeof path, err);
    if (st != SDXL_OK)
        return st;
    st = safetensors_open(&w->file, path, err);
    if (st != SDXL_OK)
        return st;
    w->used = calloc(w->file.n_tensors ? w->file.n_tensors : 1, sizeof *w->used);
    if (!w->used) {
        safetensors_close(&w->file);
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    w->be = be;
    w->progress = progress;
    return SDXL_OK;
}

void weights_close(weights *w)
{
    safetensors_close(&w->file);
    free(w->used);
    w->used = NULL;
}

static const char *shape_str(int ndim, const int64_t *shape, char *buf, size_t n)
{
    size_t used = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? ", %lld" : "%lld",
                                 (long long)shape[i]);
    if (used < n)
        snprintf(buf + used, n - used, "]");
    return buf;
}

/* Once a tensor is on the backend its bytes in the mapped file are not needed again: dropping
 * their pages keeps resident memory near the size of the converted weights alone instead of
 * converted weights plus the whole file (10.3 + 5.1 GB for a full-size fp16 UNet). Only whole
 * pages inside the tensor are dropped; pages shared with a neighbour go with that one. */
static void release_file_pages(const st_tensor *t)
{
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0)
        return;
    uintptr_t begin = ((uintptr_t)t->data + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    uintptr_t end = ((uintptr_t)t->data + t->nbytes) & ~((uintptr_t)page - 1);
    if (end > begin)
        madvise((void *)begin, end - begin, MADV_DONTNEED);
}

/* The tensor `name` of the file, which must have exactly the given shape. */
static sdxl_status find_tensor(const weights *w, const char *name, int ndim,
                               const int64_t *shape, const st_tensor **out, sdxl_error *err)
{
    const st_tensor *t = safetensors_find(&w->file, name);
    char want[96], have[96];
    if (!t)
        return error_set(err, SDXL_ERR_NOT_FOUND,
                         "%s: tensor \"%s\" %s is missing: the weights do not match the "
                         "model's config.json",
                         w->file.path, name, shape_str(ndim, shape, want, sizeof want));
    bool same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++)
        same = t->shape[i] == shape[i];
    if (!same)
        return error_set(err, SDXL_ERR_FORMAT,
                         "%s: tensor \"%s\" has shape %s but the model's config.json implies %s",
                         w->file.path, name, shape_str(t->ndim, t->shape, have, sizeof have),
                         shape_str(ndim, shape, want, sizeof want));
    *out = t;
    return SDXL_OK;
}

/* After t is on the backend: marks it used, drops its pages, reports progress. */
static sdxl_status tensor_uploaded(weights *w, const st_tensor *t, sdxl_error *err)
{
    w->used[t - w->file.tensors] = true;
    release_file_pages(t);
    if (w->progress) {
        w->progress->done += t->nbytes;
        if (w->progress->fn &&
            !w->progress->fn(w->progress->user, w->progress->done, w->progress->total))
            return error_set(err, SDXL_ERR_CANCELLED, "model loading cancelled");
    }
    return SDXL_OK;
}

sdxl_status weights_load(weights *w, tensor_kind kind, int ndim, const int64_t *shape,
                         tensor *out, sdxl_error *err, const char *name_fmt, ...)
{
    FORMAT_NAME_OR_RETURN(name, WEIGHTS_NAME_MAX, err, name_fmt);
    const st_tensor *t;
    SDXL_TRY(find_tensor(w, name, ndim, shape, &t, err));
    sdxl_status st = backend_weight_upload(w->be, kind, ndim, shape, t->type, t->data, out, err);
    if (st != SDXL_OK)
        return error_prefix(err, st, "%s: tensor \"%s\"", w->file.path, name);
    return tensor_uploaded(w, t, err);
}

sdxl_status weights_load_vector(weights *w, int64_t n, tensor *t, sdxl_error *err,
                                const char *name_fmt, ...)
{
    FORMAT_NAME_OR_RETURN(name, WEIGHTS_NAME_MAX, err, name_fmt);
    return weights_load(w, TENSOR_WEIGHT_VECTOR, 1, &n, t, err, "%s", name);
}

sdxl_status weights_load_linear(weights *w, int64_t out, int64_t in, tensor *weight,
                                tensor *bias, sdxl_error *err, const char *name_fmt, ...)
{
    FORMAT_NAME_OR_RETURN(name, WEIGHTS_MODULE_MAX, err, name_fmt);
    SDXL_TRY(weights_load(w, TENSOR_WEIGHT_LINEAR, 2, (int64_t[]){out, in}, weight, err,
                          "%s.weight", name));
    return bias ? weights_load_vector(w, out, bias, err, "%s.bias", name) : SDXL_OK;
}

static bool is_float_type(dtype t)
{
    return t == DTYPE_F32 || t == DTYPE_F16 || t == DTYPE_BF16 || t == DTYPE_F64;
}

/* Uploads the n tensors ts, of equal sizes, one after another as one weight of the given kind
 * and shape. Tensors of one type go as they are; of mixed float types, through f32 (the
 * backends convert through f32 anyway, so the bits are those of separate uploads). */
static sdxl_status upload_stack(weights *w, tensor_kind kind, const st_tensor *const *ts, int n,
                                int ndim, const int64_t *shape, tensor *out, sdxl_error *err)
{
    dtype type = ts[0]->type;
    for (int i = 1; i < n; i++)
        if (ts[i]->type != type)
            type = DTYPE_F32;
    for (int i = 0; type == DTYPE_F32 && i < n; i++)
        if (!is_float_type(ts[i]->type))
            return error_set(err, SDXL_ERR_UNSUPPORTED,
                             "%s: tensor \"%s\" is %s; weights are F32, F16, BF16 or F64",
                             w->file.path, ts[i]->name, dtype_name(ts[i]->type));
    size_t each = ts[0]->numel * dtype_size(type);
    unsigned char *host = malloc(each * (size_t)n);
    if (!host)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY,
                         "%s: out of memory stacking %d tensors of %zu bytes from \"%s\"",
                         w->file.path, n, each, ts[0]->name);
    for (int i = 0; i < n; i++) {
        if (ts[i]->type == type)
            memcpy(host + (size_t)i * each, ts[i]->data, each);
        else
            dtype_to_f32(ts[i]->type, ts[i]->data, (float *)(host + (size_t)i * each),
                         ts[i]->numel);
    }
    sdxl_status st = backend_weight_upload(w->be, kind, ndim, shape, type, host, out, err);
    free(host);
    if (st != SDXL_OK)
        return error_prefix(err, st, "%s: tensor \"%s\" and the %d stacked after it",
                            w->file.path, ts[0]->name, n - 1);
    for (int i = 0; i < n; i++)
        SDXL_TRY(tensor_uploaded(w, ts[i], err));
    return SDXL_OK;
}

sdxl_status weights_load_linear_stack(weights *w, const char *prefix, int groups,
                                      const char *const *modules, int64_t out, int64_t in,
                                      tensor *weight, tensor *bias, sdxl_error *err)
{
    const st_tensor *ws[WEIGHTS_STACK_MAX], *bs[WEIGHTS_STACK_MAX];
    if (groups < 1 || groups > WEIGHTS_STACK_MAX)
        return error_set(err, SDXL_ERR_INTERNAL, "%s: %d weights to stack (1 to %d)", prefix,
                         groups, WEIGHTS_STACK_MAX);
    for (int g = 0; g < groups; g++) {
        char name[WEIGHTS_NAME_MAX];
        int len = snprintf(name, sizeof name, "%s.%s.weight", prefix, modules[g]);
        if (len < 0 || (size_t)len >= sizeof name)
            return error_set(err, SDXL_ERR_INTERNAL, "tensor name longer than %zu bytes: %s...",
                             sizeof name - 1, name);
        SDXL_TRY(find_tensor(w, name, 2, (int64_t[]){out, in}, &ws[g], err));
        if (!bias)
            continue;
        snprintf(name, sizeof name, "%s.%s.bias", prefix, modules[g]); /* shorter: fits */
        SDXL_TRY(find_tensor(w, name, 1, &out, &bs[g], err));
    }
    SDXL_TRY(upload_stack(w, TENSOR_WEIGHT_LINEAR, ws, groups, 2, (int64_t[]){groups * out, in},
                          weight, err));
    return bias ? upload_stack(w, TENSOR_WEIGHT_VECTOR, bs, groups, 1,
                               (int64_t[]){groups * out}, bias, err)
                : SDXL_OK;
}

sdxl_status weights_load_conv(weights *w, int64_t out, int64_t in, int64_t k, tensor *weight,
                              tensor *bias, sdxl_error *err, const char *name_fmt, ...)
{
    FORMAT_NAME_OR_RETURN(name, WEIGHTS_MODULE_MAX, err, name_fmt);
    SDXL_TRY(weights_load(w, TENSOR_WEIGHT_CONV, 4, (int64_t[]){out, in, k, k}, weight, err,
                          "%s.weight", name));
    return weights_load_vector(w, out, bias, err, "%s.bias", name);
}

sdxl_status weights_load_norm(weights *w, int64_t c, tensor *gamma, tensor *beta,
                              sdxl_error *err, const char *name_fmt, ...)
{
    FORMAT_NAME_OR_RETURN(name, WEIGHTS_MODULE_MAX, err, name_fmt);
    SDXL_TRY(weights_load_vector(w, c, gamma, err, "%s.weight", name));
    return weights_load_vector(w, c, beta, err, "%s.bias", name);
}

sdxl_status weights_prefix(char *out, size_t size, sdxl_error *err, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    sdxl_status st = format_name(out, size, err, fmt, args);
    va_end(args);
    return st;
}

sdxl_status weights_finish(const weights *w, sdxl_error *err)
{
    for (size_t i = 0; i < w->file.n_tensors; i++)
        if (!w->used[i])
            return error_set(err, SDXL_ERR_FORMAT,
                             "%s: unexpected tensor \"%s\": the weights do not match the "
                             "model's config.json",
                             w->file.path, w->file.tensors[i].name);
    return SDXL_OK;
}
