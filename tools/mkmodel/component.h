/*
 * component.h — writing one model component's weights (unet, vae, text_encoder, ...) as a
 * safetensors file, streamed: the header from the tensor list, then each tensor's values
 * generated and converted chunk by chunk, so memory use does not grow with the model.
 */
#ifndef SDXL_MKMODEL_COMPONENT_H
#define SDXL_MKMODEL_COMPONENT_H

#include <stdint.h>

#include "base/dtype.h"
#include "engine/model_tensor.h"

/* A component's tensor list: the engine's unet_tensors_for_each and friends, bound to a
 * loaded config. */
typedef sdxl_status (*component_list_fn)(const void *cfg, model_tensor_fn fn, void *ctx,
                                         sdxl_error *err);

typedef struct component_stats {
    size_t n_tensors;
    uint64_t n_params;
    uint64_t n_bytes; /* data bytes in the file */
} component_stats;

/* Writes path (a safetensors file with metadata {"format": "pt"}) holding every tensor of the
 * list in type, with weights from (seed, component). */
sdxl_status component_write(const char *path, const char *component, component_list_fn list,
                            const void *cfg, uint64_t seed, dtype type, component_stats *stats,
                            sdxl_error *err);

#endif /* SDXL_MKMODEL_COMPONENT_H */
