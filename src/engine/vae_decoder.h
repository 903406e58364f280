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
 * Group norms: the config's norm_num_groups, eps 1e-6 (fixed in diffusers).
 */
#ifndef SDXL_ENGINE_VAE_DECODER_H
#define SDXL_ENGINE_VAE_DECODER_H

#include "engine/vae_encoder.h"

typedef struct vae_decoder {
    tensor conv_in_w, conv_in_b; /* CONV [ch_last, latent, 3, 3] */
    vae_mid_block mid;
    int n_levels;
    vae_level levels[VAE_MAX_BLOCKS]; /* up_blocks.0 (coarsest) first */
    tensor norm_out_w, norm_out_b;    /* conv_norm_out: VECTOR [ch0] */
    tensor conv_out_w, conv_out_b;    /* CONV [out, ch0, 3, 3] */
    int groups;
} vae_decoder;

/* Loads decoder.* for cfg. d must be zeroed; vae_decoder_free accepts it half loaded. */
sdxl_status vae_decoder_load(weights *w, const vae_config *cfg, vae_decoder *d, sdxl_error *err);
void vae_decoder_free(backend *be, vae_decoder *d);

/* z [N, h, w, latent] -> y [N, f·h, f·w, out] (already made). Temporaries come from a and are
 * released before returning. */
sdxl_status vae_decoder_forward(const vae_decoder *d, backend *be, arena *a, const tensor *z,
                                tensor *y, sdxl_error *err);

#endif /* SDXL_ENGINE_VAE_DECODER_H */
