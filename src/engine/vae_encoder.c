/*
 * vae_encoder.c — loading the VAE encoder (see vae_encoder.h), as diffusers' vae.Encoder
 * builds it; vae_half.c runs it.
 */
#include "engine/vae_encoder.h"

sdxl_status vae_encoder_load(weights *w, const vae_config *cfg, vae_half *e, sdxl_error *err)
{
    int n = cfg->n_blocks;
    const int *ch = cfg->block_out_channels;
    int64_t c0 = ch[0], last = ch[n - 1], moments = 2 * cfg->latent_channels;
    e->mid_first = false;
    e->channels = ch[0];
    e->groups = cfg->norm_num_groups;
    SDXL_TRY(weights_load_conv(w, c0, cfg->in_channels, 3, &e->conv_in_w, &e->conv_in_b, err,
                               "encoder.conv_in"));
    for (int i = 0; i < n; i++) {
        char p[WEIGHTS_PREFIX_MAX];
        SDXL_TRY(weights_prefix(p, sizeof p, err, "encoder.down_blocks.%d", i));
        e->n_levels = i + 1;
        SDXL_TRY(vae_level_load(w, p, VAE_LEVEL_DOWN, cfg->layers_per_block,
                                ch[i > 0 ? i - 1 : 0], ch[i], cfg->norm_num_groups, VAE_NORM_EPS,
                                i < n - 1, &e->levels[i], err));
    }
    SDXL_TRY(vae_mid_block_load(w, "encoder.mid_block", ch[n - 1], cfg->norm_num_groups,
                                VAE_NORM_EPS, &e->mid, err));
    SDXL_TRY(weights_load_norm(w, last, &e->norm_out_w, &e->norm_out_b, err,
                               "encoder.conv_norm_out"));
    return weights_load_conv(w, moments, last, 3, &e->conv_out_w, &e->conv_out_b, err,
                             "encoder.conv_out");
}
