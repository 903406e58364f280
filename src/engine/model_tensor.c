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

/* In an emitter taking (model_tensor_sink *s, ..., const char *fmt, ...): declares char
 * name[MODEL_TENSOR_MAX_NAME] holding the formatted name, or returns when the sink has failed
 * already or the name does not fit. */
#define FORMAT_NAME_OR_RETURN(s, name, fmt)                                                      \
    char name[MODEL_TENSOR_MAX_NAME];                                                            \
    do {                                                                                         \
        if ((s)->status)                                                                         \
            return;                                                                              \
        va_list ap_;                                                                             \
        va_start(ap_, fmt);                                                                      \
        bool formatted_ = format_name(s, name, sizeof name, fmt, ap_);                           \
        va_end(ap_);                                                                             \
        if (!formatted_)                                                                         \
            return;                                                                              \
    } while (0)

void model_tensor_emit(model_tensor_sink *s, model_tensor_kind kind, int ndim,
                       const int64_t *shape, const char *fmt, ...)
{
    FORMAT_NAME_OR_RETURN(s, name, fmt);
    model_tensor t = {.name = name, .kind = kind, .ndim = ndim};
    for (int i = 0; i < ndim; i++)
        t.shape[i] = shape[i];
    s->status = s->fn(s->ctx, &t, s->err);
}

void model_tensor_emit_linear(model_tensor_sink *s, int out, int in, bool bias, const char *fmt,
                              ...)
{
    FORMAT_NAME_OR_RETURN(s, prefix, fmt);
    model_tensor_emit(s, MODEL_TENSOR_LINEAR_WEIGHT, 2, (int64_t[]){out, in}, "%s.weight", prefix);
    if (bias)
        model_tensor_emit(s, MODEL_TENSOR_BIAS, 1, (int64_t[]){out}, "%s.bias", prefix);
}

void model_tensor_emit_conv(model_tensor_sink *s, int out, int in, int k, const char *fmt, ...)
{
    FORMAT_NAME_OR_RETURN(s, prefix, fmt);
    model_tensor_emit(s, MODEL_TENSOR_CONV_WEIGHT, 4, (int64_t[]){out, in, k, k}, "%s.weight",
                      prefix);
    model_tensor_emit(s, MODEL_TENSOR_BIAS, 1, (int64_t[]){out}, "%s.bias", prefix);
}

void model_tensor_emit_norm(model_tensor_sink *s, int c, const char *fmt, ...)
{
    FORMAT_NAME_OR_RETURN(s, prefix, fmt);
    model_tensor_emit(s, MODEL_TENSOR_NORM_SCALE, 1, (int64_t[]){c}, "%s.weight", prefix);
    model_tensor_emit(s, MODEL_TENSOR_BIAS, 1, (int64_t[]){c}, "%s.bias", prefix);
}

void model_tensor_emit_resnet(model_tensor_sink *s, int in, int out, int temb, const char *fmt,
                              ...)
{
    FORMAT_NAME_OR_RETURN(s, prefix, fmt);
    model_tensor_emit_norm(s, in, "%s.norm1", prefix);
    model_tensor_emit_conv(s, out, in, 3, "%s.conv1", prefix);
    if (temb > 0)
        model_tensor_emit_linear(s, out, temb, true, "%s.time_emb_proj", prefix);
    model_tensor_emit_norm(s, out, "%s.norm2", prefix);
    model_tensor_emit_conv(s, out, out, 3, "%s.conv2", prefix);
    if (in != out)
        model_tensor_emit_conv(s, out, in, 1, "%s.conv_shortcut", prefix);
}
