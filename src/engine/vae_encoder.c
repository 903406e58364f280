/*
 * vae_encoder.c — the VAE encoder (see vae_encoder.h), following diffusers' vae.Encoder.forward.
 */
#include "engine/vae_encoder.h"

#include <stdio.h>

#define TRY(call)                                                                                \
    do {                                                                                         \
        sdxl_status try_st_ = (call);                                                            \
        if (try_st_ != SDXL_OK)                                                                  \
            return try_st_;                                                                      \
    } while (0)

static const conv2d_params same_conv = {1, 1, 1, 1, 1};

sdxl_status vae_encoder_load(weights *w, const vae_config *cfg, vae_encoder *e, sdxl_error *err)
{
    int n = cfg->n_blocks;
    const int *ch = cfg->block_out_channels;
    int64_t c0 = ch[0], last = ch[n - 1], moments = 2 * cfg->latent_channels;
    e->groups = cfg->norm_num_groups;
    TRY(weights_load(w, TENSOR_WEIGHT_CONV, 4, (int64_t[]){c0, cfg->in_channels, 3, 3},
                     &e->conv_in_w, err, "encoder.conv_in.weight"));
    TRY(weights_load(w, TENSOR_WEIGHT_VECTOR, 1, &c0, &e->conv_in_b, err, "encoder.conv_in.bias"));
    for (int i = 0; i < n; i++) {
        char p[64];
        snprintf(p, sizeof p, "encoder.down_blocks.%d", i);
        e->n_levels = i + 1;
        TRY(vae_level_load(w, p, VAE_LEVEL_DOWN, cfg->layers_per_block, ch[i > 0 ? i - 1 : 0],
                           ch[i], cfg->norm_num_groups, VAE_NORM_EPS, i < n - 1, &e->levels[i],
                           err));
    }
    TRY(vae_mid_block_load(w, "encoder.mid_block", ch[n - 1], cfg->norm_num_groups, VAE_NORM_EPS,
                           &e->mid, err));
    TRY(weights_load(w, TENSOR_WEIGHT_VECTOR, 1, &last, &e->norm_out_w, err,
                     "encoder.conv_norm_out.weight"));
    TRY(weights_load(w, TENSOR_WEIGHT_VECTOR, 1, &last, &e->norm_out_b, err,
                     "encoder.conv_norm_out.bias"));
    TRY(weights_load(w, TENSOR_WEIGHT_CONV, 4, (int64_t[]){moments, last, 3, 3}, &e->conv_out_w,
                     err, "encoder.conv_out.weight"));
    return weights_load(w, TENSOR_WEIGHT_VECTOR, 1, &moments, &e->conv_out_b, err,
                        "encoder.conv_out.bias");
}

void vae_encoder_free(backend *be, vae_encoder *e)
{
    backend_weight_free(be, &e->conv_in_w);
    backend_weight_free(be, &e->conv_in_b);
    for (int i = 0; i < e->n_levels; i++)
        vae_level_free(be, &e->levels[i]);
    e->n_levels = 0;
    vae_mid_block_free(be, &e->mid);
    backend_weight_free(be, &e->norm_out_w);
    backend_weight_free(be, &e->norm_out_b);
    backend_weight_free(be, &e->conv_out_w);
    backend_weight_free(be, &e->conv_out_b);
}

/* The largest activation of the chain for x [n, h, w, *]: conv_in's output or a level's. */
static int64_t max_numel(const vae_encoder *e, int64_t n, int64_t h, int64_t w)
{
    int64_t most = n * h * w * e->levels[0].out_channels;
    for (int i = 0; i < e->n_levels; i++) {
        int64_t m = vae_level_max_numel(&e->levels[i], n, h, w);
        most = m > most ? m : most;
        h = vae_level_out_side(&e->levels[i], h);
        w = vae_level_out_side(&e->levels[i], w);
    }
    return most;
}

static sdxl_status forward(const vae_encoder *e, backend *be, arena *a, const tensor *x,
                           tensor *y, sdxl_error *err)
{
    int64_t n = x->shape[0], h = x->shape[1], w = x->shape[2];
    vae_chain chain;
    TRY(vae_chain_init(&chain, a, x->type, max_numel(e, n, h, w), err));
    tensor t;
    TRY(vae_chain_target(&chain, (int64_t[]){n, h, w, e->levels[0].out_channels}, &t, err));
    TRY(backend_conv2d(be, x, &e->conv_in_w, &e->conv_in_b, &same_conv, &t, err));
    vae_chain_advance(&chain, &t);
    for (int i = 0; i < e->n_levels; i++)
        TRY(vae_level_forward(&e->levels[i], be, a, &chain, err));
    TRY(vae_mid_block_forward(&e->mid, be, a, &chain, err));
    TRY(backend_group_norm(be, &chain.x, e->groups, VAE_NORM_EPS, &e->norm_out_w, &e->norm_out_b,
                           true, &chain.x, err));
    return backend_conv2d(be, &chain.x, &e->conv_out_w, &e->conv_out_b, &same_conv, y, err);
}

sdxl_status vae_encoder_forward(const vae_encoder *e, backend *be, arena *a, const tensor *x,
                                tensor *y, sdxl_error *err)
{
    arena_mark mark = arena_get_mark(a);
    sdxl_status st = forward(e, be, a, x, y, err);
    arena_reset_to(a, mark);
    return st;
}
