/*
 * vae_half.c — the forward pass diffusers' vae.Encoder.forward and vae.Decoder.forward share
 * (see vae_half.h; the decoder has no latent_embeds: SDXL's group-normed decoder).
 */
#include "engine/vae_half.h"

static const conv2d_params same_conv = {1, 1, 1, 1, 1};

void vae_half_free(backend *be, vae_half *half)
{
    backend_weight_free(be, &half->conv_in_w);
    backend_weight_free(be, &half->conv_in_b);
    for (int i = 0; i < half->n_levels; i++)
        vae_level_free(be, &half->levels[i]);
    half->n_levels = 0;
    vae_mid_block_free(be, &half->mid);
    backend_weight_free(be, &half->norm_out_w);
    backend_weight_free(be, &half->norm_out_b);
    backend_weight_free(be, &half->conv_out_w);
    backend_weight_free(be, &half->conv_out_b);
}

/* The largest activation of the chain for x [n, h, w, *]: conv_in's output or a level's (the
 * mid block's equals one of them: conv_in's in the decoder, the last level's in the encoder). */
static int64_t max_numel(const vae_half *half, int64_t n, int64_t h, int64_t w)
{
    int64_t most = n * h * w * half->channels;
    for (int i = 0; i < half->n_levels; i++) {
        int64_t m = vae_level_max_numel(&half->levels[i], n, h, w);
        most = m > most ? m : most;
        h = vae_level_out_side(&half->levels[i], h);
        w = vae_level_out_side(&half->levels[i], w);
    }
    return most;
}

static sdxl_status forward(const vae_half *half, backend *be, arena *a, const tensor *x, tensor *y,
                           sdxl_error *err)
{
    int64_t n = x->shape[0], h = x->shape[1], w = x->shape[2];
    vae_chain chain;
    SDXL_TRY(vae_chain_init(&chain, a, x->type, max_numel(half, n, h, w), err));
    tensor t;
    SDXL_TRY(vae_chain_target(&chain, (int64_t[]){n, h, w, half->channels}, &t, err));
    SDXL_TRY(backend_conv2d(be, x, &half->conv_in_w, &half->conv_in_b, &same_conv, &t, err));
    vae_chain_advance(&chain, &t);
    if (half->mid_first)
        SDXL_TRY(vae_mid_block_forward(&half->mid, be, a, &chain, err));
    for (int i = 0; i < half->n_levels; i++)
        SDXL_TRY(vae_level_forward(&half->levels[i], be, a, &chain, err));
    if (!half->mid_first)
        SDXL_TRY(vae_mid_block_forward(&half->mid, be, a, &chain, err));
    SDXL_TRY(backend_group_norm(be, &chain.x, half->groups, VAE_NORM_EPS, &half->norm_out_w,
                                &half->norm_out_b, true, &chain.x, err));
    return backend_conv2d(be, &chain.x, &half->conv_out_w, &half->conv_out_b, &same_conv, y, err);
}

sdxl_status vae_half_forward(const vae_half *half, backend *be, arena *a, const tensor *x,
                             tensor *y, sdxl_error *err)
{
    arena_mark mark = arena_get_mark(a);
    sdxl_status st = forward(half, be, a, x, y, err);
    arena_reset_to(a, mark);
    return st;
}
