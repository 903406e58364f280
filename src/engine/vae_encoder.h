/*
 * vae_encoder.h — diffusers' vae.Encoder as AutoencoderKL builds it (double_z): an image to the
 * moments (mean and log-variance channels, before quant_conv) of the latent distribution.
 *
 *     h = conv_in(x)                                  3×3, in_channels -> block_out_channels[0]
 *     h = down level i (i = 0..n-1; all but the last halve the size)
 *     h = mid block (resnet, one-head attention, resnet)
 *     y = conv_out(SiLU(conv_norm_out(h)))           3×3 -> 2 × latent_channels
 *
 * Group norms: the config's norm_num_groups, eps 1e-6 (fixed in diffusers). The forward pass is
 * vae_half_forward: x [N, H, W, in] (H, W multiples of the VAE's scale) -> y [N, H/f, W/f,
 * 2 latent].
 */
#ifndef SDXL_ENGINE_VAE_ENCODER_H
#define SDXL_ENGINE_VAE_ENCODER_H

#include "engine/vae_half.h"

/* Loads encoder.* for cfg. e must be zeroed; vae_half_free accepts it half loaded. */
sdxl_status vae_encoder_load(weights *w, const vae_config *cfg, vae_half *e, sdxl_error *err);

#endif /* SDXL_ENGINE_VAE_ENCODER_H */
