/*
 * unet_tensors.h — every weight of a diffusers UNet2DConditionModel for a unet_config: exact
 * state-dict names, shapes and kinds, in state_dict() order (see model_tensor.h).
 *
 *     conv_in · time_embedding.linear_1/2 · add_embedding.linear_1/2
 *     down_blocks.i.{attentions.j, resnets.j, downsamplers.0.conv}
 *     up_blocks.i.{attentions.j, resnets.j, upsamplers.0.conv}
 *     mid_block.{attentions.0, resnets.0/1} · conv_norm_out · conv_out
 *
 * An attention is a Transformer2DModel: norm (group norm), proj_in and proj_out (linear),
 * transformer_blocks.k.{norm1, attn1.to_q/to_k/to_v (no bias), attn1.to_out.0, norm2, attn2
 * (keys and values from the text, cross_attention_dim wide), norm3, ff.net.0.proj (GEGLU: 2 ×
 * 4C outputs), ff.net.2}.
 */
#ifndef SDXL_ENGINE_UNET_TENSORS_H
#define SDXL_ENGINE_UNET_TENSORS_H

#include "engine/model_tensor.h"
#include "engine/unet_config.h"

sdxl_status unet_tensors_for_each(const unet_config *cfg, model_tensor_fn fn, void *ctx,
                                  sdxl_error *err);

#endif /* SDXL_ENGINE_UNET_TENSORS_H */
