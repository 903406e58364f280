/*
 * vae_config.c — reading and checking vae/config.json (see vae_config.h).
 */
#include "engine/vae_config.h"

#include "base/json.h"
#include "engine/config_check.h"

_Static_assert(VAE_MAX_BLOCKS == CONFIG_MAX_BLOCKS, "block lists are read by config_check.c");

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
    int kinds[VAE_MAX_BLOCKS];
    sdxl_status st = read_refusals(doc, err);
    if (!st)
        st = config_get_block_channels(doc, cfg->block_out_channels, &cfg->n_blocks, err);
    if (!st)
        st = config_get_block_types(doc, "down_block_types", cfg->n_blocks,
                                    (const char *const[]){"DownEncoderBlock2D", NULL}, kinds, err);
    if (!st)
        st = config_get_block_types(doc, "up_block_types", cfg->n_blocks,
                                    (const char *const[]){"UpDecoderBlock2D", NULL}, kinds, err);
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
    const cJSON *root = json_doc_root(doc);
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
    return config_check_groups(doc, cfg->norm_num_groups, cfg->block_out_channels, cfg->n_blocks,
                               err);
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
