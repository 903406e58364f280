/*
 * vae_decoder.c — loading the VAE decoder (see vae_decoder.h), as diffusers' vae.Decoder
 * builds it; vae_half.c runs it.
 */
#include "engine/vae_decoder.h"

sdxl_status vae_decoder_load(weights *w, const vae_config *cfg, vae_half *d, sdxl_error *err)
{
    int n = cfg->n_blocks;
    const int *ch = cfg->block_out_channels;
    int64_t c0 = ch[0], last = ch[n - 1];
    d->mid_first = true;
    d->channels = ch[n - 1];
    d->groups = cfg->norm_num_groups;
    SDXL_TRY(weights_load_conv(w, last, cfg->latent_channels, 3, &d->conv_in_w, &d->conv_in_b,
                               err, "decoder.conv_in"));
    SDXL_TRY(vae_mid_block_load(w, "decoder.mid_block", ch[n - 1], cfg->norm_num_groups,
                                VAE_NORM_EPS, &d->mid, err));
    for (int i = 0; i < n; i++) {
        int level = n - 1 - i;
        char p[WEIGHTS_PREFIX_MAX];
        SDXL_TRY(weights_prefix(p, sizeof p, err, "decoder.up_blocks.%d", i));
        d->n_levels = i + 1;
        SDXL_TRY(vae_level_load(w, p, VAE_LEVEL_UP, cfg->layers_per_block + 1,
                                ch[i > 0 ? level + 1 : level], ch[level], cfg->norm_num_groups,
                                VAE_NORM_EPS, i < n - 1, &d->levels[i], err));
    }
    SDXL_TRY(weights_load_norm(w, c0, &d->norm_out_w, &d->norm_out_b, err,
                               "decoder.conv_norm_out"));
    return weights_load_conv(w, cfg->out_channels, c0, 3, &d->conv_out_w, &d->conv_out_b, err,
                             "decoder.conv_out");
}
