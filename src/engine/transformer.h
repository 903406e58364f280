/*
 * transformer.h — diffusers' Transformer2DModel as SDXL's UNet uses it (use_linear_projection):
 * the attention stage of every CrossAttn block and of the mid block.
 *
 *     y = x + proj_out(blocks(proj_in(group_norm(x))))     x, y [N, H, W, C]
 *
 * The group norm has diffusers' fixed eps 1e-6 and the UNet's norm_num_groups; proj_in and
 * proj_out are linear layers over the channels, so NHWC pixels are token rows [N, H*W, C] with
 * no transpose; `blocks` are `depth` BasicTransformerBlocks (transformer_block.h) attending to
 * the text embeddings.
 *
 *     transformer t = {0};
 *     st = transformer_load(&w, "mid_block.attentions.0", 1280, 20, 10, 2048, 32, &t, err);
 *     st = transformer_forward(&t, be, arena, &x, &context, &y, err);
 *     transformer_free(be, &t);
 */
#ifndef SDXL_ENGINE_TRANSFORMER_H
#define SDXL_ENGINE_TRANSFORMER_H

#include "backend/backend.h"
#include "base/arena.h"
#include "engine/transformer_block.h"
#include "engine/weights.h"

/* Transformer2DModel's GroupNorm eps: fixed in diffusers, not taken from the config. */
#define TRANSFORMER_GROUP_NORM_EPS 1e-6f

typedef struct transformer {
    int channels;
    int groups;              /* group norm groups */
    tensor norm_w, norm_b;   /* VECTOR [C] */
    tensor proj_in, proj_in_bias;   /* LINEAR [C, C], VECTOR [C] */
    tensor proj_out, proj_out_bias; /* LINEAR [C, C], VECTOR [C] */
    int depth;
    transformer_block *blocks; /* depth of them (owned) */
} transformer;

/* Loads PREFIX.norm, PREFIX.proj_in, PREFIX.transformer_blocks.0..depth-1, PREFIX.proj_out.
 * t must be zeroed; transformer_free accepts it half loaded after a failure. */
sdxl_status transformer_load(weights *w, const char *prefix, int channels, int heads, int depth,
                             int context_dim, int groups, transformer *t, sdxl_error *err);
void transformer_free(backend *be, transformer *t);

/* x [N, H, W, C] -> y [N, H, W, C] (already made, not x); context [N, Tc, context_dim].
 * Temporaries come from a and are released before returning. */
sdxl_status transformer_forward(const transformer *t, backend *be, arena *a, const tensor *x,
                                const tensor *context, tensor *y, sdxl_error *err);

#endif /* SDXL_ENGINE_TRANSFORMER_H */
