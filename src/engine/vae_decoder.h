/*
 * vae_decoder.h — diffusers' vae.Decoder as AutoencoderKL builds it: latents (after
 * post_quant_conv) to an image.
 *
 *     h = conv_in(z)                                   3×3, latent_channels -> ch[n-1]
 *     h = mid block (resnet, one-head attention, resnet)
 *     h = up level i (i = 0..n-1, at channels ch[n-1-i]; all but the last double the size;
 *                     layers_per_block + 1 resnets each)
 *     y = conv_out(SiLU(conv_norm_out(h)))            3×3, ch[0] -> out_channels
 *
 * Group norms: the config's norm_num_groups, eps 1e-6 (fixed in diffusers). The forward pass is
 * vae_half_forward: z [N, h, w, latent] -> y [N, f·h, f·w, out].
 */
#ifndef SDXL_ENGINE_VAE_DECODER_H
#define SDXL_ENGINE_VAE_DECODER_H

#include "engine/vae_half.h"

/* Loads decoder.* for cfg. d must be zeroed; vae_half_free accepts it half loaded. */
sdxl_status vae_decoder_load(weights *w, const vae_config *cfg, vae_half *d, sdxl_error *err);

#endif /* SDXL_ENGINE_VAE_DECODER_H */
