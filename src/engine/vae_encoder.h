/*
 * vae_encoder.h — diffusers' vae.Encoder as AutoencoderKL builds it (double_z): an image to the
 * moments (mean and log-variance channels, before quant_conv) of the latent distribution.
 *
 *     h = conv_in(x)                                  3×3, in_channels -> block_out_channels[0]
 *     h = down level i (i = 0..n-1; all but the last halve the size)
 *     h = mid block (resnet, one-head attention, resnet)
 *     y = conv_out(SiLU(conv_norm_out(h)))           3×3 -> 2 × latent_channels
 *
 * Group norms: the config's norm_num_groups, eps 1e-6 (fixed in diffusers).
 */
#ifndef SDXL_ENGINE_VAE_ENCODER_H
#define SDXL_ENGINE_VAE_ENCODER_H

#include "engine/vae_config.h"
#include "engine/vae_level.h"
#include "engine/vae_mid_block.h"

/* diffusers' Encoder and Decoder fix every group norm's eps (resnets, attention, output). */
#define VAE_NORM_EPS 1e-6f

typedef struct vae_encoder {
    tensor conv_in_w, conv_in_b; /* CONV [ch0, in, 3, 3] */
    int n_levels;
    vae_level levels[VAE_MAX_BLOCKS];
    vae_mid_block mid;
    tensor norm_out_w, norm_out_b;   /* conv_norm_out: VECTOR [ch_last] */
    tensor conv_out_w, conv_out_b;   /* CONV [2 latent, ch_last, 3, 3] */
    int groups;
} vae_encoder;

/* Loads encoder.* for cfg. e must be zeroed; vae_encoder_free accepts it half loaded. */
sdxl_status vae_encoder_load(weights *w, const vae_config *cfg, vae_encoder *e, sdxl_error *err);
void vae_encoder_free(backend *be, vae_encoder *e);

/* x [N, H, W, in] (H, W multiples of the VAE's scale) -> y [N, H/f, W/f, 2 latent] (already
 * made). Temporaries come from a and are released before returning. */
sdxl_status vae_encoder_forward(const vae_encoder *e, backend *be, arena *a, const tensor *x,
                                tensor *y, sdxl_error *err);

#endif /* SDXL_ENGINE_VAE_ENCODER_H */
