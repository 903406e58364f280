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
 *     st = weights_open(&w, model_dir, "unet", "diffusion_pytorch_model", be, err);
 *     st = weights_load(&w, TENSOR_WEIGHT_CONV, 4, (int64_t[]){320, 4, 3, 3}, &unet->conv_in.w,
 *                       err, "conv_in.weight");
 *     ...
 *     st = weights_finish(&w, err);   // every tensor of the file was used
 *     weights_close(&w);              // the mapping goes; uploaded tensors stay
 */
#ifndef SDXL_ENGINE_WEIGHTS_H
#define SDXL_ENGINE_WEIGHTS_H

#include <stdbool.h>
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

/* True when the file has a tensor of that name (for optional tensors, e.g. a resnet's
 * conv_shortcut, when the config alone does not say). */
bool weights_has(const weights *w, const char *name_fmt, ...) SDXL_PRINTF(2, 3);

/* Fails naming the first tensor of the file that no weights_load asked for. */
sdxl_status weights_finish(const weights *w, sdxl_error *err);

#endif /* SDXL_ENGINE_WEIGHTS_H */
