/*
 * vae_config.c — reading and checking vae/config.json (see vae_config.h).
 */
#include "engine/vae_config.h"

#include <stdio.h>
#include <string.h>

#include "base/json.h"
#include "engine/config_check.h"

/* down_block_types or up_block_types: n copies of the one supported type. */
static sdxl_status read_block_types(const json_doc *doc, const char *key, int n,
                                    const char *supported, sdxl_error *err)
{
    const char *names[VAE_MAX_BLOCKS];
    size_t count;
    sdxl_status st =
        json_get_string_list(doc, json_doc_root(doc), key, VAE_MAX_BLOCKS, names, &count, err);
    if (st)
        return st;
    if ((int)count != n)
        return error_set(err, SDXL_ERR_FORMAT,
                         "%s: key \"%s\": %zu block types for %d entries of block_out_channels; "
                         "give one per block",
                         doc->name, key, count, n);
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], supported))
            return error_set(err, SDXL_ERR_UNSUPPORTED,
                             "%s: key \"%s\": block %d is \"%s\"; sdxld supports \"%s\" only",
                             doc->name, key, i, names[i], supported);
    return SDXL_OK;
}

static sdxl_status read_refusals(const json_doc *doc, sdxl_error *err)
{
    int index;
    sdxl_status st = config_get_choice(doc, "_class_name", "AutoencoderKL",
                                       (const char *const[]){"AutoencoderKL", NULL}, &index, err);
    if (!st)
        st = config_get_choice(doc, "act_fn", "silu", (const char *const[]){"silu", NULL}, &index,
                               err);
    if (!st)
        st = config_require_null(doc, "shift_factor", err);
    if (!st)
        st = config_require_null(doc, "latents_mean", err);
    if (!st)
        st = config_require_null(doc, "latents_std", err);
    if (!st)
        st = config_require_bool(doc, "use_quant_conv", true, err);
    if (!st)
        st = config_require_bool(doc, "use_post_quant_conv", true, err);
    if (!st)
        st = config_require_bool(doc, "mid_block_add_attention", true, err);
    return st;
}

static sdxl_status read_config(const json_doc *doc, vae_config *cfg, sdxl_error *err)
{
    sdxl_status st = read_refusals(doc, err);
    if (st)
        return st;
    const cJSON *root = json_doc_root(doc);
    long long channels[VAE_MAX_BLOCKS];
    size_t n;
    st = json_get_int_list(doc, root, "block_out_channels", VAE_MAX_BLOCKS, channels, &n, err);
    if (st)
        return st;
    if (n == 0)
        return error_set(err, SDXL_ERR_FORMAT, "%s: key \"block_out_channels\" is empty",
                         doc->name);
    cfg->n_blocks = (int)n;
    st = read_block_types(doc, "down_block_types", cfg->n_blocks, "DownEncoderBlock2D", err);
    if (!st)
        st = read_block_types(doc, "up_block_types", cfg->n_blocks, "UpDecoderBlock2D", err);
    if (!st)
        st = config_get_int_opt(doc, "in_channels", 3, 1, CONFIG_MAX_SIZE, &cfg->in_channels,
                                err);
    if (!st)
        st = config_get_int_opt(doc, "out_channels", 3, 1, CONFIG_MAX_SIZE, &cfg->out_channels,
                                err);
    if (!st)
        st = config_get_int_opt(doc, "latent_channels", 4, 1, CONFIG_MAX_SIZE,
                                &cfg->latent_channels, err);
    if (!st)
        st = config_get_int_opt(doc, "layers_per_block", 1, 1, 64, &cfg->layers_per_block, err);
    if (!st)
        st = config_get_int_opt(doc, "norm_num_groups", 32, 1, CONFIG_MAX_SIZE,
                                &cfg->norm_num_groups, err);
    if (!st)
        st = config_get_int_opt(doc, "sample_size", 32, 0, CONFIG_MAX_SIZE, &cfg->sample_size,
                                err);
    double scaling_factor;
    if (!st)
        st = json_get_double_opt(doc, root, "scaling_factor", 0.18215, &scaling_factor, err);
    if (!st)
        st = json_get_bool_opt(doc, root, "force_upcast", true, &cfg->force_upcast, err);
    if (st)
        return st;
    if (!(scaling_factor > 0))
        return error_set(err, SDXL_ERR_FORMAT, "%s: key \"scaling_factor\": %g is not positive",
                         doc->name, scaling_factor);
    cfg->scaling_factor = (float)scaling_factor;
    for (int i = 0; i < cfg->n_blocks; i++) {
        if (channels[i] < 1 || channels[i] > CONFIG_MAX_SIZE)
            return error_set(err, SDXL_ERR_FORMAT,
                             "%s: key \"block_out_channels\": element %d is %lld, out of range "
                             "[1, %d]",
                             doc->name, i, channels[i], CONFIG_MAX_SIZE);
        cfg->block_out_channels[i] = (int)channels[i];
        if (cfg->block_out_channels[i] % cfg->norm_num_groups)
            return error_set(err, SDXL_ERR_FORMAT,
                             "%s: norm_num_groups %d does not divide block_out_channels[%d] = "
                             "%d; group norms need a group count that divides every channel "
                             "count",
                             doc->name, cfg->norm_num_groups, i, cfg->block_out_channels[i]);
    }
    return SDXL_OK;
}

static sdxl_status read_any(const json_doc *doc, void *cfg, sdxl_error *err)
{
    return read_config(doc, cfg, err);
}

sdxl_status vae_config_load(const char *dir, vae_config *cfg, sdxl_error *err)
{
    return config_load_dir(dir, "VAE", read_any, cfg, sizeof *cfg, err);
}

int vae_config_scale(const vae_config *cfg)
{
    return 1 << (cfg->n_blocks - 1);
}
