/*
 * unet_load.c — building a unet from a diffusers directory (see unet.h).
 *
 * Tensors are asked for in the order UNet2DConditionModel registers its modules (the order of
 * unet_tensors.c and of model.state_dict()), so "the first bad tensor" named by an error is the
 * first one in the file's own listing order, whatever the file's physical layout.
 */
#include "engine/unet.h"

#include <stdio.h>
#include <stdlib.h>

/* The attentions and resnets of a block at `level`; resnet j takes resnet_in[j] channels. */
static sdxl_status load_block(weights *w, const unet_config *cfg, const char *kind, int i,
                              int level, bool cross, int n_layers, const int *resnet_in,
                              unet_block *blk, sdxl_error *err)
{
    int c = cfg->block_out_channels[level];
    char p[WEIGHTS_PREFIX_MAX];
    blk->n_layers = n_layers;
    blk->resnets = calloc((size_t)n_layers, sizeof *blk->resnets);
    if (cross)
        blk->attentions = calloc((size_t)n_layers, sizeof *blk->attentions);
    if (!blk->resnets || (cross && !blk->attentions))
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "%s.%d: out of memory", kind, i);
    for (int j = 0; cross && j < n_layers; j++) {
        SDXL_TRY(weights_prefix(p, sizeof p, err, "%s.%d.attentions.%d", kind, i, j));
        SDXL_TRY(transformer_load(w, p, c, cfg->num_attention_heads[level],
                                  cfg->transformer_layers_per_block[level],
                                  cfg->cross_attention_dim, cfg->norm_num_groups,
                                  &blk->attentions[j], err));
    }
    for (int j = 0; j < n_layers; j++) {
        SDXL_TRY(weights_prefix(p, sizeof p, err, "%s.%d.resnets.%d", kind, i, j));
        SDXL_TRY(resnet_load(w, p, resnet_in[j], c, cfg->time_embed_dim, cfg->norm_num_groups,
                             cfg->norm_eps, 1.0f, &blk->resnets[j], err));
    }
    return SDXL_OK;
}

static sdxl_status load_resample(weights *w, const char *kind, int i, const char *which, int c,
                                 unet_block *blk, sdxl_error *err)
{
    blk->resample = true;
    return weights_load_conv(w, c, c, 3, &blk->resample_w, &blk->resample_b, err, "%s.%d.%s.0.conv",
                             kind, i, which);
}

/* Down block i: the first resnet takes the previous level's channels. */
static sdxl_status load_down(weights *w, const unet_config *cfg, int i, unet_block *blk,
                             sdxl_error *err)
{
    int c = cfg->block_out_channels[i], layers = cfg->layers_per_block[i];
    int in[UNET_MAX_LAYERS];
    for (int j = 0; j < layers; j++)
        in[j] = j == 0 ? cfg->block_out_channels[i > 0 ? i - 1 : 0] : c;
    SDXL_TRY(load_block(w, cfg, "down_blocks", i, i, cfg->down_cross_attn[i], layers, in, blk,
                        err));
    return i < cfg->n_blocks - 1 ? load_resample(w, "down_blocks", i, "downsamplers", c, blk, err)
                                 : SDXL_OK;
}

/* Up block i (level n-1-i): resnet j takes the running output (the coarser level's channels
 * for j == 0) concatenated with one skip; the last skip comes from the level below. */
static sdxl_status load_up(weights *w, const unet_config *cfg, int i, unet_block *blk,
                           sdxl_error *err)
{
    int n = cfg->n_blocks, level = n - 1 - i, c = cfg->block_out_channels[level];
    int layers = cfg->layers_per_block[level] + 1;
    int prev = cfg->block_out_channels[i > 0 ? level + 1 : level];
    int skip_last = cfg->block_out_channels[level > 0 ? level - 1 : 0];
    int in[UNET_MAX_LAYERS + 1];
    for (int j = 0; j < layers; j++)
        in[j] = (j == 0 ? prev : c) + (j == layers - 1 ? skip_last : c);
    SDXL_TRY(load_block(w, cfg, "up_blocks", i, level, cfg->up_cross_attn[i], layers, in, blk,
                        err));
    return i < n - 1 ? load_resample(w, "up_blocks", i, "upsamplers", c, blk, err) : SDXL_OK;
}

static sdxl_status load_all(weights *w, unet *u, sdxl_error *err)
{
    const unet_config *cfg = &u->cfg;
    int n = cfg->n_blocks, c0 = cfg->block_out_channels[0], c_last = cfg->block_out_channels[n - 1];
    int temb = cfg->time_embed_dim;
    SDXL_TRY(weights_load_conv(w, c0, cfg->in_channels, 3, &u->conv_in_w, &u->conv_in_b, err,
                               "conv_in"));
    SDXL_TRY(weights_load_linear(w, temb, c0, &u->time_1_w, &u->time_1_b, err,
                                 "time_embedding.linear_1"));
    SDXL_TRY(weights_load_linear(w, temb, temb, &u->time_2_w, &u->time_2_b, err,
                                 "time_embedding.linear_2"));
    SDXL_TRY(weights_load_linear(w, temb, cfg->projection_class_embeddings_input_dim, &u->add_1_w,
                                 &u->add_1_b, err, "add_embedding.linear_1"));
    SDXL_TRY(weights_load_linear(w, temb, temb, &u->add_2_w, &u->add_2_b, err,
                                 "add_embedding.linear_2"));
    for (int i = 0; i < n; i++)
        SDXL_TRY(load_down(w, cfg, i, &u->down[i], err));
    for (int i = 0; i < n; i++)
        SDXL_TRY(load_up(w, cfg, i, &u->up[i], err));
    SDXL_TRY(transformer_load(w, "mid_block.attentions.0", c_last, cfg->num_attention_heads[n - 1],
                              cfg->transformer_layers_per_block[n - 1], cfg->cross_attention_dim,
                              cfg->norm_num_groups, &u->mid_attention, err));
    for (int j = 0; j < 2; j++) {
        char p[WEIGHTS_PREFIX_MAX];
        SDXL_TRY(weights_prefix(p, sizeof p, err, "mid_block.resnets.%d", j));
        SDXL_TRY(resnet_load(w, p, c_last, c_last, temb, cfg->norm_num_groups, cfg->norm_eps,
                             cfg->mid_block_scale_factor, &u->mid_resnets[j], err));
    }
    SDXL_TRY(weights_load_norm(w, c0, &u->norm_out_w, &u->norm_out_b, err, "conv_norm_out"));
    SDXL_TRY(weights_load_conv(w, cfg->out_channels, c0, 3, &u->conv_out_w, &u->conv_out_b, err,
                               "conv_out"));
    return weights_finish(w, err);
}

static sdxl_status check_config(const unet_config *cfg, const char *dir, sdxl_error *err)
{
    for (int i = 0; i < cfg->n_blocks; i++)
        if (cfg->layers_per_block[i] > UNET_MAX_LAYERS)
            return error_set(err, SDXL_ERR_UNSUPPORTED,
                             "%s/config.json: layers_per_block[%d] = %d; sdxld supports up to %d",
                             dir, i, cfg->layers_per_block[i], UNET_MAX_LAYERS);
    return SDXL_OK;
}

sdxl_status unet_load(const char *model_dir, backend *be, unet **out, weights_progress *progress,
                      sdxl_error *err)
{
    *out = NULL;
    char dir[1024];
    if (snprintf(dir, sizeof dir, "%s/unet", model_dir) >= (int)sizeof dir)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "model path too long: %s", model_dir);
    unet *u = calloc(1, sizeof *u);
    if (!u)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "out of memory for the UNet");
    u->be = be;
    sdxl_status st = unet_config_load(dir, &u->cfg, err);
    if (!st)
        st = check_config(&u->cfg, dir, err);
    if (st) {
        free(u);
        return st;
    }
    u->pooled_dim = unet_config_pooled_dim(&u->cfg);
    weights w;
    st = weights_open(&w, model_dir, "unet", "diffusion_pytorch_model", be, progress, err);
    if (st) {
        free(u);
        return st;
    }
    st = load_all(&w, u, err);
    weights_close(&w);
    if (st) {
        unet_free(u);
        return st;
    }
    *out = u;
    return SDXL_OK;
}

static void block_free(backend *be, unet_block *blk)
{
    for (int j = 0; blk->resnets && j < blk->n_layers; j++)
        resnet_free(be, &blk->resnets[j]);
    for (int j = 0; blk->attentions && j < blk->n_layers; j++)
        transformer_free(be, &blk->attentions[j]);
    free(blk->resnets);
    free(blk->attentions);
    backend_weight_free(be, &blk->resample_w);
    backend_weight_free(be, &blk->resample_b);
}

void unet_free(unet *u)
{
    if (!u)
        return;
    backend *be = u->be;
    tensor *own[] = {&u->conv_in_w, &u->conv_in_b, &u->time_1_w,   &u->time_1_b,
                     &u->time_2_w,  &u->time_2_b,  &u->add_1_w,    &u->add_1_b,
                     &u->add_2_w,   &u->add_2_b,   &u->norm_out_w, &u->norm_out_b,
                     &u->conv_out_w, &u->conv_out_b};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        backend_weight_free(be, own[i]);
    for (int i = 0; i < UNET_MAX_BLOCKS; i++) {
        block_free(be, &u->down[i]);
        block_free(be, &u->up[i]);
    }
    resnet_free(be, &u->mid_resnets[0]);
    resnet_free(be, &u->mid_resnets[1]);
    transformer_free(be, &u->mid_attention);
    free(u);
}
