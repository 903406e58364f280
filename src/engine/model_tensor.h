/*
 * model_tensor.h — the tensors a model's weights consist of: name, shape and kind, as the
 * tensor lists (unet_tensors.h, vae_tensors.h, clip_tensors.h) report them.
 *
 * A tensor list calls back once per tensor, with its exact state-dict name in diffusers or
 * transformers ("down_blocks.1.attentions.0.proj_in.weight"), in the order the PyTorch module
 * registers it (so the order of model.state_dict()). mkmodel uses the lists to know what to
 * write, and test_model_configs checks them against diffusers; the loaders (unet_load.c, vae*.c,
 * clip_load.c) ask weights.h for the same tensors by the same names.
 *
 * The second half of this header is for the list implementations: a sink that formats names,
 * remembers the first failure (so a list reads as a plain description of the model, with no
 * error check after every line), and the building blocks that diffusers' UNet and VAE share.
 */
#ifndef SDXL_ENGINE_MODEL_TENSOR_H
#define SDXL_ENGINE_MODEL_TENSOR_H

#include <stdbool.h>
#include <stdint.h>

#include "base/status.h"

typedef enum model_tensor_kind {
    MODEL_TENSOR_LINEAR_WEIGHT = 0, /* [out, in] */
    MODEL_TENSOR_CONV_WEIGHT = 1,   /* [out, in, kh, kw] */
    MODEL_TENSOR_NORM_SCALE = 2,    /* group or layer norm γ [C] */
    MODEL_TENSOR_BIAS = 3,          /* linear or conv bias, or a norm's β [C] */
    MODEL_TENSOR_EMBEDDING = 4,     /* lookup table [rows, dim] (tokens, positions) */
} model_tensor_kind;

#define MODEL_TENSOR_KIND_COUNT 5
#define MODEL_TENSOR_MAX_DIMS 4
#define MODEL_TENSOR_MAX_NAME 160

typedef struct model_tensor {
    const char *name; /* valid during the callback only */
    model_tensor_kind kind;
    int ndim;
    int64_t shape[MODEL_TENSOR_MAX_DIMS];
} model_tensor;

/* Called once per tensor; a non-OK return stops the list, which returns that status. */
typedef sdxl_status (*model_tensor_fn)(void *ctx, const model_tensor *t, sdxl_error *err);

/* "linear_weight", "conv_weight", "norm_scale", "bias", "embedding". */
const char *model_tensor_kind_name(model_tensor_kind kind);
int64_t model_tensor_numel(const model_tensor *t);
/* Inputs feeding one output of a linear or conv weight: in × kh × kw (1 for other kinds). */
int64_t model_tensor_fan_in(const model_tensor *t);

/* ---- for the list implementations ---- */

typedef struct model_tensor_sink {
    model_tensor_fn fn;
    void *ctx;
    sdxl_error *err;
    sdxl_status status; /* the first failure; once set, emits do nothing */
} model_tensor_sink;

void model_tensor_sink_init(model_tensor_sink *s, model_tensor_fn fn, void *ctx, sdxl_error *err);

/* Each name is printf-formatted from fmt; the helpers append ".weight" / ".bias". */
void model_tensor_emit(model_tensor_sink *s, model_tensor_kind kind, int ndim,
                       const int64_t *shape, const char *fmt, ...) SDXL_PRINTF(5, 6);
/* nn.Linear(in, out[, bias]): PREFIX.weight [out, in], PREFIX.bias [out]. */
void model_tensor_emit_linear(model_tensor_sink *s, int out, int in, bool bias, const char *fmt,
                              ...) SDXL_PRINTF(5, 6);
/* nn.Conv2d(in, out, k) with bias: PREFIX.weight [out, in, k, k], PREFIX.bias [out]. */
void model_tensor_emit_conv(model_tensor_sink *s, int out, int in, int k, const char *fmt, ...)
    SDXL_PRINTF(5, 6);
/* nn.GroupNorm / nn.LayerNorm over c channels: PREFIX.weight, PREFIX.bias [c]. */
void model_tensor_emit_norm(model_tensor_sink *s, int c, const char *fmt, ...) SDXL_PRINTF(3, 4);
/* diffusers' ResnetBlock2D (in → out channels; temb == 0: no time embedding, as in the VAE):
 * norm1, conv1, time_emb_proj, norm2, conv2, and conv_shortcut (1×1) when in != out. */
void model_tensor_emit_resnet(model_tensor_sink *s, int in, int out, int temb, const char *fmt,
                              ...) SDXL_PRINTF(5, 6);

#endif /* SDXL_ENGINE_MODEL_TENSOR_H */
