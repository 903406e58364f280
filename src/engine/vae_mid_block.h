/*
 * vae_mid_block.h — the VAE's UNetMidBlock2D (encoder and decoder alike): a resnet, one
 * self-attention over every position, a resnet, all at the coarsest level's C channels.
 *
 *     y = resnet1(attention(resnet0(x)))
 *     attention(x) = x + to_out(softmax(q · kᵀ / sqrt(C)) · v),  q, k, v = to_q/k/v(group_norm(x))
 *
 * The attention has one head as wide as the channels (512 in SDXL: diffusers sets
 * attention_head_dim to the channel count), biases on all four projections, and its group norm
 * takes the resnets' groups and eps; its rescale_output_factor is 1. Pixels are token rows
 * [N, H*W, C] in NHWC, so no transposes are needed.
 *
 *     vae_mid_block m = {0};
 *     st = vae_mid_block_load(&w, "decoder.mid_block", 512, 32, 1e-6f, &m, err);
 *     st = vae_mid_block_forward(&m, be, arena, &chain, err);   // chain.x [N, H, W, 512]
 *     vae_mid_block_free(be, &m);
 */
#ifndef SDXL_ENGINE_VAE_MID_BLOCK_H
#define SDXL_ENGINE_VAE_MID_BLOCK_H

#include "backend/backend.h"
#include "base/arena.h"
#include "engine/resnet.h"
#include "engine/vae_chain.h"
#include "engine/weights.h"

typedef struct vae_attention {
    int channels;
    int groups;
    float eps;
    tensor norm_w, norm_b;                /* group_norm: VECTOR [C] */
    tensor q_w, q_b, k_w, k_b, v_w, v_b;  /* to_q/k/v: LINEAR [C, C], VECTOR [C] */
    tensor out_w, out_b;                  /* to_out.0: LINEAR [C, C], VECTOR [C] */
} vae_attention;

typedef struct vae_mid_block {
    resnet resnets[2];
    vae_attention attention;
} vae_mid_block;

/* Loads PREFIX.resnets.{0,1} and PREFIX.attentions.0. m must be zeroed; vae_mid_block_free
 * accepts it half loaded after a failure. */
sdxl_status vae_mid_block_load(weights *w, const char *prefix, int channels, int groups,
                               float eps, vae_mid_block *m, sdxl_error *err);
void vae_mid_block_free(backend *be, vae_mid_block *m);

/* chain->x [N, H, W, C] -> chain->x [N, H, W, C] (through the chain's other buffer).
 * Temporaries come from a and are released before returning. */
sdxl_status vae_mid_block_forward(const vae_mid_block *m, backend *be, arena *a, vae_chain *chain,
                                  sdxl_error *err);

#endif /* SDXL_ENGINE_VAE_MID_BLOCK_H */
