/*
 * weights.h — loading one model component's weights (unet/, vae/, text_encoder/, ...) from a
 * diffusers directory onto a backend, by diffusers' tensor names.
 *
 * weights_open picks the component's safetensors file the way diffusers does for sdxld's
 * purposes: DIR/COMPONENT/BASE.fp16.safetensors when present (the published fp16 variant),
 * else BASE.safetensors (BASE is "diffusion_pytorch_model" for diffusers models, "model" for
 * transformers text encoders). Model code then asks for each tensor by name with the shape its
 * config implies; a tensor that is missing or shaped otherwise is refused with a message naming
 * the file, the tensor, the expected and the found shape. weights_finish then refuses a file
 * holding tensors nobody asked for (a config that does not match its weights), naming the
 * first one. Tensors are uploaded straight from the mapped file (F32, F16, BF16 or F64 in the
 * file; the backend converts to its compute type).
 *
 *     weights w;
 *     st = weights_open(&w, model_dir, "unet", "diffusion_pytorch_model", be, NULL, err);
 *     st = weights_load_conv(&w, 320, 4, 3, &unet->conv_in_w, &unet->conv_in_b, err, "conv_in");
 *     ...
 *     st = weights_finish(&w, err);   // every tensor of the file was used
 *     weights_close(&w);              // the mapping goes; uploaded tensors stay
 */
#ifndef SDXL_ENGINE_WEIGHTS_H
#define SDXL_ENGINE_WEIGHTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "io/safetensors.h"

/* Reports bytes uploaded so far across every component of a model (for a loading bar). */
typedef struct weights_progress {
    uint64_t done;
    uint64_t total; /* set by the caller before loading (sum of the files' data sizes) */
    bool (*fn)(void *user, uint64_t done, uint64_t total); /* false: cancel */
    void *user;
} weights_progress;

typedef struct weights {
    safetensors_file file;
    backend *be;
    bool *used; /* per tensor of file, in file order */
    weights_progress *progress; /* may be NULL */
} weights;

/* The path of COMPONENT's weights file in model_dir (fp16 variant preferred). */
sdxl_status weights_find_file(const char *model_dir, const char *component, const char *base,
                              char *path, size_t path_size, sdxl_error *err);

sdxl_status weights_open(weights *w, const char *model_dir, const char *component,
                         const char *base, backend *be, weights_progress *progress,
                         sdxl_error *err);
void weights_close(weights *w);

/* Uploads the tensor named by the printf-style format, which must have exactly the given shape,
 * as a weight of the given kind. */
sdxl_status weights_load(weights *w, tensor_kind kind, int ndim, const int64_t *shape,
                         tensor *out, sdxl_error *err, const char *name_fmt, ...)
    SDXL_PRINTF(7, 8);

/* The layers every model is made of, by diffusers' names: NAME (printf-formatted) is the module,
 * the helpers add ".weight" and ".bias" and upload the weight first, as state_dict() lists them.
 * LINEAR, CONV and VECTOR are the tensor kinds given to weights_load. */

/* NAME itself, VECTOR [n] (the helpers below load biases, γ and β with it). */
sdxl_status weights_load_vector(weights *w, int64_t n, tensor *t, sdxl_error *err,
                                const char *name_fmt, ...) SDXL_PRINTF(5, 6);
/* nn.Linear: NAME.weight LINEAR [out, in] and, when bias is not NULL, NAME.bias VECTOR [out]. */
sdxl_status weights_load_linear(weights *w, int64_t out, int64_t in, tensor *weight,
                                tensor *bias, sdxl_error *err, const char *name_fmt, ...)
    SDXL_PRINTF(7, 8);
/* G nn.Linear modules of one shape stacked along the output dimension, for one grouped product
 * (backend_linear_groups): PREFIX.MODULE.weight for each of the `groups` modules, in that
 * order, as one LINEAR [G·out, in], and when bias is not NULL their PREFIX.MODULE.bias as one
 * VECTOR [G·out]. Each tensor is checked as weights_load_linear checks it (missing or shaped
 * otherwise), in the order given, and counts as used once the stack is uploaded.
 *
 *     st = weights_load_linear_stack(&w, "text_model.encoder.layers.0.self_attn", 3,
 *                                    (const char *const[]){"k_proj", "v_proj", "q_proj"},
 *                                    768, 768, &l->kvq_w, &l->kvq_b, err);
 */
#define WEIGHTS_STACK_MAX 4
sdxl_status weights_load_linear_stack(weights *w, const char *prefix, int groups,
                                      const char *const *modules, int64_t out, int64_t in,
                                      tensor *weight, tensor *bias, sdxl_error *err);
/* nn.Conv2d with a k×k kernel: NAME.weight CONV [out, in, k, k] and NAME.bias VECTOR [out]. */
sdxl_status weights_load_conv(weights *w, int64_t out, int64_t in, int64_t k, tensor *weight,
                              tensor *bias, sdxl_error *err, const char *name_fmt, ...)
    SDXL_PRINTF(8, 9);
/* nn.GroupNorm or nn.LayerNorm over c channels: NAME.weight (γ) and NAME.bias (β), VECTOR [c]. */
sdxl_status weights_load_norm(weights *w, int64_t c, tensor *gamma, tensor *beta,
                              sdxl_error *err, const char *name_fmt, ...) SDXL_PRINTF(6, 7);

/* A block's name prefix ("down_blocks.1.resnets.0") into out[size] (WEIGHTS_PREFIX_MAX is room
 * for any), for the loaders that take one; fails (SDXL_ERR_INTERNAL) when it does not fit. */
#define WEIGHTS_PREFIX_MAX 256
sdxl_status weights_prefix(char *out, size_t size, sdxl_error *err, const char *fmt, ...)
    SDXL_PRINTF(4, 5);

/* Fails naming the first tensor of the file that no weights_load asked for. */
sdxl_status weights_finish(const weights *w, sdxl_error *err);

#endif /* SDXL_ENGINE_WEIGHTS_H */
