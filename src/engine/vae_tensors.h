/*
 * vae_tensors.h — every weight of a diffusers AutoencoderKL for a vae_config: exact state-dict
 * names, shapes and kinds, in state_dict() order (see model_tensor.h).
 *
 *     encoder.{conv_in, down_blocks.i.{resnets.j, downsamplers.0.conv}, mid_block,
 *              conv_norm_out, conv_out (2 × latent_channels: mean and log-variance)}
 *     decoder.{conv_in, up_blocks.i.{resnets.j, upsamplers.0.conv}, mid_block,
 *              conv_norm_out, conv_out}
 *     quant_conv, post_quant_conv (1×1)
 *
 * A mid block is resnets.0, one self-attention (attentions.0.{group_norm, to_q, to_k, to_v,
 * to_out.0}, all with bias) and resnets.1; the VAE's resnets have no time embedding.
 */
#ifndef SDXL_ENGINE_VAE_TENSORS_H
#define SDXL_ENGINE_VAE_TENSORS_H

#include "engine/model_tensor.h"
#include "engine/vae_config.h"

sdxl_status vae_tensors_for_each(const vae_config *cfg, model_tensor_fn fn, void *ctx,
                                 sdxl_error *err);

#endif /* SDXL_ENGINE_VAE_TENSORS_H */
