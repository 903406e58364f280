/*
 * vae_level.h — one level of a VAE half: diffusers' DownEncoderBlock2D (encoder) or
 * UpDecoderBlock2D (decoder). Resnets without time embedding, then an optional resampling conv:
 *
 *     down (Downsample2D, padding 0): zero-pad bottom and right by 1, 3×3 conv stride 2
 *                                     [N, H, W, C] -> [N, H/2, W/2, C]  (H, W even)
 *     up   (Upsample2D):              nearest 2×, 3×3 conv padding 1
 *                                     [N, H, W, C] -> [N, 2H, 2W, C]
 *
 *     vae_level lvl = {0};
 *     st = vae_level_load(&w, "encoder.down_blocks.0", VAE_LEVEL_DOWN, 2, 128, 128, 32, 1e-6f,
 *                         true, &lvl, err);
 *     st = vae_level_forward(&lvl, be, arena, &chain, err);
 *     vae_level_free(be, &lvl);
 */
#ifndef SDXL_ENGINE_VAE_LEVEL_H
#define SDXL_ENGINE_VAE_LEVEL_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"
#include "base/arena.h"
#include "engine/resnet.h"
#include "engine/vae_chain.h"
#include "engine/weights.h"

typedef enum vae_level_kind {
    VAE_LEVEL_DOWN = 0, /* encoder: resample is downsamplers.0.conv */
    VAE_LEVEL_UP = 1,   /* decoder: resample is upsamplers.0.conv */
} vae_level_kind;

typedef struct vae_level {
    vae_level_kind kind;
    int out_channels;
    int n_resnets;
    resnet *resnets; /* n_resnets (owned); the first maps in -> out channels */
    bool resample;
    tensor resample_w, resample_b; /* CONV [out, out, 3, 3], VECTOR [out] */
} vae_level;

/* Loads PREFIX.resnets.0..n_resnets-1 and, when resample, PREFIX.{down,up}samplers.0.conv.
 * lvl must be zeroed; vae_level_free accepts it half loaded after a failure. */
sdxl_status vae_level_load(weights *w, const char *prefix, vae_level_kind kind, int n_resnets,
                           int in_channels, int out_channels, int groups, float eps,
                           bool resample, vae_level *lvl, sdxl_error *err);
void vae_level_free(backend *be, vae_level *lvl);

/* The spatial size after the level for an input of side `side`. */
int64_t vae_level_out_side(const vae_level *lvl, int64_t side);

/* The most elements any output of the level has for an input [n, h, w, *]: what a vae_chain
 * must hold for it. */
int64_t vae_level_max_numel(const vae_level *lvl, int64_t n, int64_t h, int64_t w);

/* chain->x [N, H, W, in] -> chain->x [N, H', W', out]. Temporaries come from a and are
 * released before returning. */
sdxl_status vae_level_forward(const vae_level *lvl, backend *be, arena *a, vae_chain *chain,
                              sdxl_error *err);

#endif /* SDXL_ENGINE_VAE_LEVEL_H */
