/*
 * model_tensor.c — tensor kinds, sizes, and the sink the tensor lists emit through (see
 * model_tensor.h).
 */
#include "engine/model_tensor.h"

#include <stdarg.h>
#include <stdio.h>

const char *model_tensor_kind_name(model_tensor_kind kind)
{
    switch (kind) {
    case MODEL_TENSOR_LINEAR_WEIGHT: return "linear_weight";
    case MODEL_TENSOR_CONV_WEIGHT: return "conv_weight";
    case MODEL_TENSOR_NORM_SCALE: return "norm_scale";
    case MODEL_TENSOR_BIAS: return "bias";
    case MODEL_TENSOR_EMBEDDING: return "embedding";
    }
    return "unknown";
}

int64_t model_tensor_numel(const model_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

int64_t model_tensor_fan_in(const model_tensor *t)
{
    if (t->kind != MODEL_TENSOR_LINEAR_WEIGHT && t->kind != MODEL_TENSOR_CONV_WEIGHT)
        return 1;
    int64_t n = 1;
    for (int i = 1; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

void model_tensor_sink_init(model_tensor_sink *s, model_tensor_fn fn, void *ctx, sdxl_error *err)
{
    s->fn = fn;
    s->ctx = ctx;
    s->err = err;
    s->status = SDXL_OK;
}

/* Formats a name into out; false (and the sink failed) when it does not fit. */
static bool format_name(model_tensor_sink *s, char *out, size_t n, const char *fmt, va_list ap)
    SDXL_PRINTF(4, 0);

static bool format_name(model_tensor_sink *s, char *out, size_t n, const char *fmt, va_list ap)
{
    int len = vsnprintf(out, n, fmt, ap);
    if (len < 0 || (size_t)len >= n) {
        s->status = error_set(s->err, SDXL_ERR_INTERNAL, "tensor name longer than %zu bytes: %s",
                              n - 1, out);
        return false;
    }
    return true;
}

static void emit_named(model_tensor_sink *s, const char *name, model_tensor_kind kind, int ndim,
                       const int64_t *shape)
{
    if (s->status)
        return;
    model_tensor t = {.name = name, .kind = kind, .ndim = ndim};
    for (int i = 0; i < ndim; i++)
        t.shape[i] = shape[i];
    s->status = s->fn(s->ctx, &t, s->err);
}

/* PREFIX.SUFFIX into out. */
static void emit_suffixed(model_tensor_sink *s, const char *prefix, const char *suffix,
                          model_tensor_kind kind, int ndim, const int64_t *shape)
{
    char name[MODEL_TENSOR_MAX_NAME];
    int len = snprintf(name, sizeof name, "%s.%s", prefix, suffix);
    if (len < 0 || (size_t)len >= sizeof name) {
        if (!s->status)
            s->status =
                error_set(s->err, SDXL_ERR_INTERNAL, "tensor name longer than %zu bytes: %s.%s",
                          sizeof name - 1, prefix, suffix);
        return;
    }
    emit_named(s, name, kind, ndim, shape);
}

void model_tensor_emit(model_tensor_sink *s, model_tensor_kind kind, int ndim,
                       const int64_t *shape, const char *fmt, ...)
{
    char name[MODEL_TENSOR_MAX_NAME];
    va_list ap;
    va_start(ap, fmt);
    bool ok = !s->status && format_name(s, name, sizeof name, fmt, ap);
    va_end(ap);
    if (ok)
        emit_named(s, name, kind, ndim, shape);
}

static void emit_linear(model_tensor_sink *s, const char *prefix, int out, int in, bool bias)
{
    emit_suffixed(s, prefix, "weight", MODEL_TENSOR_LINEAR_WEIGHT, 2, (int64_t[]){out, in});
    if (bias)
        emit_suffixed(s, prefix, "bias", MODEL_TENSOR_BIAS, 1, (int64_t[]){out});
}

static void emit_conv(model_tensor_sink *s, const char *prefix, int out, int in, int k)
{
    emit_suffixed(s, prefix, "weight", MODEL_TENSOR_CONV_WEIGHT, 4, (int64_t[]){out, in, k, k});
    emit_suffixed(s, prefix, "bias", MODEL_TENSOR_BIAS, 1, (int64_t[]){out});
}

static void emit_norm(model_tensor_sink *s, const char *prefix, int c)
{
    emit_suffixed(s, prefix, "weight", MODEL_TENSOR_NORM_SCALE, 1, (int64_t[]){c});
    emit_suffixed(s, prefix, "bias", MODEL_TENSOR_BIAS, 1, (int64_t[]){c});
}

void model_tensor_emit_linear(model_tensor_sink *s, int out, int in, bool bias, const char *fmt,
                              ...)
{
    char prefix[MODEL_TENSOR_MAX_NAME];
    va_list ap;
    va_start(ap, fmt);
    bool ok = !s->status && format_name(s, prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    if (ok)
        emit_linear(s, prefix, out, in, bias);
}

void model_tensor_emit_conv(model_tensor_sink *s, int out, int in, int k, const char *fmt, ...)
{
    char prefix[MODEL_TENSOR_MAX_NAME];
    va_list ap;
    va_start(ap, fmt);
    bool ok = !s->status && format_name(s, prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    if (ok)
        emit_conv(s, prefix, out, in, k);
}

void model_tensor_emit_norm(model_tensor_sink *s, int c, const char *fmt, ...)
{
    char prefix[MODEL_TENSOR_MAX_NAME];
    va_list ap;
    va_start(ap, fmt);
    bool ok = !s->status && format_name(s, prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    if (ok)
        emit_norm(s, prefix, c);
}

void model_tensor_emit_resnet(model_tensor_sink *s, int in, int out, int temb, const char *fmt,
                              ...)
{
    char prefix[MODEL_TENSOR_MAX_NAME];
    va_list ap;
    va_start(ap, fmt);
    bool ok = !s->status && format_name(s, prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    if (!ok)
        return;
    char part[MODEL_TENSOR_MAX_NAME + 16];
    snprintf(part, sizeof part, "%s.norm1", prefix);
    emit_norm(s, part, in);
    snprintf(part, sizeof part, "%s.conv1", prefix);
    emit_conv(s, part, out, in, 3);
    if (temb > 0) {
        snprintf(part, sizeof part, "%s.time_emb_proj", prefix);
        emit_linear(s, part, out, temb, true);
    }
    snprintf(part, sizeof part, "%s.norm2", prefix);
    emit_norm(s, part, out);
    snprintf(part, sizeof part, "%s.conv2", prefix);
    emit_conv(s, part, out, out, 3);
    if (in != out) {
        snprintf(part, sizeof part, "%s.conv_shortcut", prefix);
        emit_conv(s, part, out, in, 1);
    }
}
