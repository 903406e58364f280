/*
 * vae_decoder.c — the VAE decoder (see vae_decoder.h), following diffusers' vae.Decoder.forward
 * (no latent_embeds: SDXL's group-normed decoder).
 */
#include "engine/vae_decoder.h"

#include <stdio.h>

#define TRY(call)                                                                                \
    do {                                                                                         \
        sdxl_status try_st_ = (call);                                                            \
        if (try_st_ != SDXL_OK)                                                                  \
            return try_st_;                                                                      \
    } while (0)

static const conv2d_params same_conv = {1, 1, 1, 1, 1};

sdxl_status vae_decoder_load(weights *w, const vae_config *cfg, vae_decoder *d, sdxl_error *err)
{
    int n = cfg->n_blocks;
    const int *ch = cfg->block_out_channels;
    int64_t c0 = ch[0], last = ch[n - 1], out = cfg->out_channels;
    d->groups = cfg->norm_num_groups;
    TRY(weights_load(w, TENSOR_WEIGHT_CONV, 4, (int64_t[]){last, cfg->latent_channels, 3, 3},
                     &d->conv_in_w, err, "decoder.conv_in.weight"));
    TRY(weights_load(w, TENSOR_WEIGHT_VECTOR, 1, &last, &d->conv_in_b, err,
                     "decoder.conv_in.bias"));
    TRY(vae_mid_block_load(w, "decoder.mid_block", ch[n - 1], cfg->norm_num_groups, VAE_NORM_EPS,
                           &d->mid, err));
    for (int i = 0; i < n; i++) {
        int level = n - 1 - i;
        char p[64];
        snprintf(p, sizeof p, "decoder.up_blocks.%d", i);
        d->n_levels = i + 1;
        TRY(vae_level_load(w, p, VAE_LEVEL_UP, cfg->layers_per_block + 1,
                           ch[i > 0 ? level + 1 : level], ch[level], cfg->norm_num_groups,
                           VAE_NORM_EPS, i < n - 1, &d->levels[i], err));
    }
    TRY(weights_load(w, TENSOR_WEIGHT_VECTOR, 1, &c0, &d->norm_out_w, err,
                     "decoder.conv_norm_out.weight"));
    TRY(weights_load(w, TENSOR_WEIGHT_VECTOR, 1, &c0, &d->norm_out_b, err,
                     "decoder.conv_norm_out.bias"));
    TRY(weights_load(w, TENSOR_WEIGHT_CONV, 4, (int64_t[]){out, c0, 3, 3}, &d->conv_out_w, err,
                     "decoder.conv_out.weight"));
    return weights_load(w, TENSOR_WEIGHT_VECTOR, 1, &out, &d->conv_out_b, err,
                        "decoder.conv_out.bias");
}

void vae_decoder_free(backend *be, vae_decoder *d)
{
    backend_weight_free(be, &d->conv_in_w);
    backend_weight_free(be, &d->conv_in_b);
    vae_mid_block_free(be, &d->mid);
    for (int i = 0; i < d->n_levels; i++)
        vae_level_free(be, &d->levels[i]);
    d->n_levels = 0;
    backend_weight_free(be, &d->norm_out_w);
    backend_weight_free(be, &d->norm_out_b);
    backend_weight_free(be, &d->conv_out_w);
    backend_weight_free(be, &d->conv_out_b);
}

/* The largest activation of the chain for z [n, h, w, *]: conv_in's output (the mid block's
 * size) or a level's. */
static int64_t max_numel(const vae_decoder *d, int64_t n, int64_t h, int64_t w)
{
    int64_t most = n * h * w * d->mid.resnets[0].out_channels;
    for (int i = 0; i < d->n_levels; i++) {
        int64_t m = vae_level_max_numel(&d->levels[i], n, h, w);
        most = m > most ? m : most;
        h = vae_level_out_side(&d->levels[i], h);
        w = vae_level_out_side(&d->levels[i], w);
    }
    return most;
}

static sdxl_status forward(const vae_decoder *d, backend *be, arena *a, const tensor *z,
                           tensor *y, sdxl_error *err)
{
    int64_t n = z->shape[0], h = z->shape[1], w = z->shape[2];
    vae_chain chain;
    TRY(vae_chain_init(&chain, a, z->type, max_numel(d, n, h, w), err));
    tensor t;
    TRY(vae_chain_target(&chain, (int64_t[]){n, h, w, d->mid.resnets[0].out_channels}, &t, err));
    TRY(backend_conv2d(be, z, &d->conv_in_w, &d->conv_in_b, &same_conv, &t, err));
    vae_chain_advance(&chain, &t);
    TRY(vae_mid_block_forward(&d->mid, be, a, &chain, err));
    for (int i = 0; i < d->n_levels; i++)
        TRY(vae_level_forward(&d->levels[i], be, a, &chain, err));
    TRY(backend_group_norm(be, &chain.x, d->groups, VAE_NORM_EPS, &d->norm_out_w, &d->norm_out_b,
                           true, &chain.x, err));
    return backend_conv2d(be, &chain.x, &d->conv_out_w, &d->conv_out_b, &same_conv, y, err);
}

sdxl_status vae_decoder_forward(const vae_decoder *d, backend *be, arena *a, const tensor *z,
                                tensor *y, sdxl_error *err)
{
    arena_mark mark = arena_get_mark(a);
    sdxl_status st = forward(d, be, a, z, y, err);
    arena_reset_to(a, mark);
    return st;
}
