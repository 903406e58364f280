/*
 * vae_half.h — what diffusers' vae.Encoder and vae.Decoder have in common: one straight chain
 * (vae_chain.h) of a 3×3 conv_in, the levels (vae_level.h) and the mid block (vae_mid_block.h),
 * then conv_out(SiLU(conv_norm_out(h))). Only the order of the middle differs:
 *
 *     encoder: conv_in, down levels, mid block, out     (loaded by vae_encoder_load)
 *     decoder: conv_in, mid block, up levels, out       (loaded by vae_decoder_load)
 *
 * Group norms: the config's norm_num_groups, eps VAE_NORM_EPS.
 */
#ifndef SDXL_ENGINE_VAE_HALF_H
#define SDXL_ENGINE_VAE_HALF_H

#include <stdbool.h>

#include "backend/backend.h"
#include "base/arena.h"
#include "engine/vae_config.h"
#include "engine/vae_level.h"
#include "engine/vae_mid_block.h"

/* diffusers' Encoder and Decoder fix every group norm's eps (resnets, attention, output). */
#define VAE_NORM_EPS 1e-6f

typedef struct vae_half {
    bool mid_first; /* the decoder's order */
    int channels;   /* conv_in's output channels */
    int groups;
    tensor conv_in_w, conv_in_b; /* CONV [channels, in, 3, 3], VECTOR [channels] */
    int n_levels;
    vae_level levels[VAE_MAX_BLOCKS];
    vae_mid_block mid;
    tensor norm_out_w, norm_out_b; /* conv_norm_out: VECTOR [c] (the last level's channels) */
    tensor conv_out_w, conv_out_b; /* CONV [out, c, 3, 3], VECTOR [out] */
} vae_half;

/* Frees the weights; half may be half loaded (zeroed, then a load that failed). */
void vae_half_free(backend *be, vae_half *half);

/* x [N, H, W, in] -> y [N, H', W', out] (already made; H', W' as the levels resample).
 * Temporaries come from a and are released before returning. */
sdxl_status vae_half_forward(const vae_half *half, backend *be, arena *a, const tensor *x,
                             tensor *y, sdxl_error *err);

#endif /* SDXL_ENGINE_VAE_HALF_H */
