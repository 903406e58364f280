/*
 * unet_config.c — reading and checking unet/config.json (see unet_config.h).
 *
 * Keys are checked in the order diffusers' UNet2DConditionModel.__init__ uses them; a key that
 * diffusers defaults is optional here with the same default, except where that default is not
 * SDXL's (block types, channels, the text_time conditioning), which must be stated.
 */
#include "engine/unet_config.h"

#include <stdio.h>
#include <string.h>

#include "base/json.h"
#include "engine/config_check.h"

/* The diffusers config keys that must be null: features of other UNets. */
static const char *const unet_null_keys[] = {
    "class_embed_type",       "num_class_embeds",      "encoder_hid_dim",
    "encoder_hid_dim_type",   "time_embedding_dim",    "time_embedding_act_fn",
    "timestep_post_act",      "time_cond_proj_dim",    "cross_attention_norm",
    "num_attention_heads",    "reverse_transformer_layers_per_block",
    NULL,
};

/* Booleans that must be false (or absent). */
static const char *const unet_false_keys[] = {
    "center_input_sample", "class_embeddings_concat", "dual_cross_attention",
    "only_cross_attention", "mid_block_only_cross_attention", "resnet_skip_time_act",
    NULL,
};

static sdxl_status read_refusals(const json_doc *doc, sdxl_error *err)
{
    sdxl_status st = SDXL_OK;
    int index;
    for (int i = 0; !st && unet_null_keys[i]; i++)
        st = config_require_null(doc, unet_null_keys[i], err);
    for (int i = 0; !st && unet_false_keys[i]; i++)
        st = config_require_bool(doc, unet_false_keys[i], false, err);
    if (!st)
        st = config_get_choice(doc, "_class_name", "UNet2DConditionModel",
                               (const char *const[]){"UNet2DConditionModel", NULL}, &index, err);
    if (!st)
        st = config_get_choice(doc, "act_fn", "silu", (const char *const[]){"silu", NULL}, &index,
                               err);
    if (!st)
        st = config_get_choice(doc, "attention_type", "default",
                               (const char *const[]){"default", NULL}, &index, err);
    if (!st)
        st = config_get_choice(doc, "time_embedding_type", "positional",
                               (const char *const[]){"positional", NULL}, &index, err);
    if (!st)
        st = config_get_choice(doc, "resnet_time_scale_shift", "default",
                               (const char *const[]){"default", NULL}, &index, err);
    if (!st)
        st = config_get_choice(doc, "mid_block_type", "UNetMidBlock2DCrossAttn",
                               (const char *const[]){"UNetMidBlock2DCrossAttn", NULL}, &index,
                               err);
    if (!st)
        st = config_require_number(doc, "resnet_out_scale_factor", 1.0, err);
    if (!st)
        st = config_require_number(doc, "conv_in_kernel", 3, err);
    if (!st)
        st = config_require_number(doc, "conv_out_kernel", 3, err);
    if (!st)
        st = config_require_number(doc, "downsample_padding", 1, err);
    return st;
}

_Static_assert(UNET_MAX_BLOCKS == CONFIG_MAX_BLOCKS, "block lists are read by config_check.c");

/* The block types sdxld runs: the plain kind, then (position 1) the cross-attention kind. */
static const char *const unet_down_types[] = {"DownBlock2D", "CrossAttnDownBlock2D", NULL};
static const char *const unet_up_types[] = {"UpBlock2D", "CrossAttnUpBlock2D", NULL};

static sdxl_status read_block_types(const json_doc *doc, unet_config *cfg, sdxl_error *err)
{
    int down[UNET_MAX_BLOCKS], up[UNET_MAX_BLOCKS];
    sdxl_status st = config_get_block_types(doc, "down_block_types", cfg->n_blocks,
                                            unet_down_types, down, err);
    if (!st)
        st = config_get_block_types(doc, "up_block_types", cfg->n_blocks, unet_up_types, up, err);
    for (int i = 0; !st && i < cfg->n_blocks; i++) {
        cfg->down_cross_attn[i] = down[i] == 1;
        cfg->up_cross_attn[i] = up[i] == 1;
    }
    return st;
}

static sdxl_status read_blocks(const json_doc *doc, unet_config *cfg, sdxl_error *err)
{
    sdxl_status st = config_get_block_channels(doc, cfg->block_out_channels, &cfg->n_blocks, err);
    if (!st)
        st = read_block_types(doc, cfg, err);
    size_t n = (size_t)cfg->n_blocks;
    if (!st)
        st = config_get_int_per_block(doc, "layers_per_block", true, n, 1, 64,
                                      cfg->layers_per_block, err);
    if (!st)
        st = config_get_int_per_block(doc, "transformer_layers_per_block", true, n, 1, 256,
                                      cfg->transformer_layers_per_block, err);
    if (!st)
        st = config_get_int_per_block(doc, "attention_head_dim", true, n, 1, CONFIG_MAX_SIZE,
                                      cfg->num_attention_heads, err);
    return st;
}

/* Group norms over every channel count, and heads that split the channels of every level that
 * has attention (the mid block is at the last level). */
static sdxl_status check_divisibility(const json_doc *doc, const unet_config *cfg,
                                      sdxl_error *err)
{
    int n = cfg->n_blocks;
    sdxl_status st = config_check_groups(doc, cfg->norm_num_groups, cfg->block_out_channels, n,
                                         err);
    for (int i = 0; !st && i < n; i++) {
        int c = cfg->block_out_channels[i];
        bool attends = cfg->down_cross_attn[i] || cfg->up_cross_attn[n - 1 - i] || i == n - 1;
        if (attends && c % cfg->num_attention_heads[i])
            return error_set(err, SDXL_ERR_UNSUPPORTED,
                             "%s: attention_head_dim[%d] = %d heads does not divide the %d "
                             "channels of that block; sdxld needs channels = heads x head size",
                             doc->name, i, cfg->num_attention_heads[i], c);
    }
    return st;
}

static sdxl_status read_conditioning(const json_doc *doc, unet_config *cfg, sdxl_error *err)
{
    const char *add_type;
    sdxl_status st =
        json_get_string_opt(doc, json_doc_root(doc), "addition_embed_type", NULL, &add_type, err);
    if (st)
        return st;
    if (!add_type || strcmp(add_type, "text_time"))
        return error_set(err, SDXL_ERR_UNSUPPORTED,
                         "%s: key \"addition_embed_type\" is %s%s%s; sdxld runs SDXL UNets, "
                         "which use \"text_time\"",
                         doc->name, add_type ? "\"" : "", add_type ? add_type : "not set",
                         add_type ? "\"" : "");
    st = config_get_int(doc, "addition_time_embed_dim", 2, CONFIG_MAX_SIZE,
                        &cfg->addition_time_embed_dim, err);
    if (!st)
        st = config_get_int(doc, "projection_class_embeddings_input_dim", 1, CONFIG_MAX_SIZE,
                            &cfg->projection_class_embeddings_input_dim, err);
    if (!st)
        st = config_get_int(doc, "cross_attention_dim", 1, CONFIG_MAX_SIZE,
                            &cfg->cross_attention_dim, err);
    if (st)
        return st;
    if (cfg->addition_time_embed_dim % 2)
        return error_set(err, SDXL_ERR_UNSUPPORTED,
                         "%s: key \"addition_time_embed_dim\": %d is odd; sdxld supports even "
                         "sinusoid sizes",
                         doc->name, cfg->addition_time_embed_dim);
    if (cfg->projection_class_embeddings_input_dim <= 6 * cfg->addition_time_embed_dim)
        return error_set(err, SDXL_ERR_FORMAT,
                         "%s: projection_class_embeddings_input_dim %d leaves no room for the "
                         "pooled text embedding beside 6 time ids of addition_time_embed_dim %d",
                         doc->name, cfg->projection_class_embeddings_input_dim,
                         cfg->addition_time_embed_dim);
    return SDXL_OK;
}

static sdxl_status read_config(const json_doc *doc, unet_config *cfg, sdxl_error *err)
{
    sdxl_status st = read_refusals(doc, err);
    if (!st)
        st = read_blocks(doc, cfg, err);
    if (!st)
        st = config_get_int_opt(doc, "in_channels", 4, 1, CONFIG_MAX_SIZE, &cfg->in_channels,
                                err);
    if (!st)
        st = config_get_int_opt(doc, "out_channels", 4, 1, CONFIG_MAX_SIZE, &cfg->out_channels,
                                err);
    if (!st)
        st = config_get_int_opt(doc, "sample_size", 0, 0, CONFIG_MAX_SIZE, &cfg->sample_size,
                                err);
    if (!st)
        st = config_get_int_opt(doc, "norm_num_groups", 32, 1, CONFIG_MAX_SIZE,
                                &cfg->norm_num_groups, err);
    if (!st)
        st = config_get_int_opt(doc, "freq_shift", 0, -CONFIG_MAX_SIZE, CONFIG_MAX_SIZE,
                                &cfg->freq_shift, err);
    if (st)
        return st;

    const cJSON *root = json_doc_root(doc);
    double norm_eps, mid_scale;
    bool linear_projection;
    st = json_get_double_opt(doc, root, "norm_eps", 1e-5, &norm_eps, err);
    if (!st)
        st = json_get_double_opt(doc, root, "mid_block_scale_factor", 1.0, &mid_scale, err);
    if (!st)
        st = json_get_bool_opt(doc, root, "flip_sin_to_cos", true, &cfg->flip_sin_to_cos, err);
    if (!st)
        st = json_get_bool_opt(doc, root, "upcast_attention", false, &cfg->upcast_attention, err);
    if (!st)
        st = json_get_bool_opt(doc, root, "use_linear_projection", false, &linear_projection,
                               err);
    if (st)
        return st;
    if (!linear_projection)
        return error_set(err, SDXL_ERR_UNSUPPORTED,
                         "%s: key \"use_linear_projection\" is false or missing; sdxld supports "
                         "SDXL's linear proj_in/proj_out only",
                         doc->name);
    if (!(norm_eps > 0 && norm_eps < 1))
        return error_set(err, SDXL_ERR_FORMAT, "%s: key \"norm_eps\": %g is not in (0, 1)",
                         doc->name, norm_eps);
    cfg->norm_eps = (float)norm_eps;
    cfg->mid_block_scale_factor = (float)mid_scale;
    if (cfg->block_out_channels[0] % 2)
        return error_set(err, SDXL_ERR_UNSUPPORTED,
                         "%s: block_out_channels[0] = %d is odd; sdxld supports even timestep "
                         "sinusoid sizes",
                         doc->name, cfg->block_out_channels[0]);
    cfg->time_embed_dim = 4 * cfg->block_out_channels[0];

    st = read_conditioning(doc, cfg, err);
    return st ? st : check_divisibility(doc, cfg, err);
}

static sdxl_status read_any(const json_doc *doc, void *cfg, sdxl_error *err)
{
    return read_config(doc, cfg, err);
}

sdxl_status unet_config_load(const char *dir, unet_config *cfg, sdxl_error *err)
{
    return config_load_dir(dir, "UNet", read_any, cfg, sizeof *cfg, err);
}

int unet_config_pooled_dim(const unet_config *cfg)
{
    return cfg->projection_class_embeddings_input_dim - 6 * cfg->addition_time_embed_dim;
}
