/*
 * clip_tensors.h — every weight of a transformers CLIPTextModel or
 * CLIPTextModelWithProjection for a clip_config: exact state-dict names, shapes and kinds, in
 * state_dict() order (see model_tensor.h).
 *
 *     text_model.embeddings.{token_embedding [vocab, hidden], position_embedding [77, hidden]}
 *     text_model.encoder.layers.N.{self_attn.{k,v,q,out}_proj, layer_norm1, mlp.fc1, mlp.fc2,
 *                                  layer_norm2}
 *     text_model.final_layer_norm
 *     text_projection [projection_dim, hidden] (no bias; CLIPTextModelWithProjection only)
 *
 * (The position_ids buffer is not a weight: transformers does not save it.)
 */
#ifndef SDXL_ENGINE_CLIP_TENSORS_H
#define SDXL_ENGINE_CLIP_TENSORS_H

#include "engine/clip_config.h"
#include "engine/model_tensor.h"

sdxl_status clip_tensors_for_each(const clip_config *cfg, model_tensor_fn fn, void *ctx,
                                  sdxl_error *err);

#endif /* SDXL_ENGINE_CLIP_TENSORS_H */
