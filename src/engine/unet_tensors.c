/*
 * unet_tensors.c — the UNet's tensor list (see unet_tensors.h), following the module tree that
 * diffusers' UNet2DConditionModel.__init__ builds, in registration order.
 */
#include "engine/unet_tensors.h"

#include <stdio.h>

/* Transformer2DModel over c channels with depth BasicTransformerBlocks. (The head count does
 * not change any shape: heads × head size = c.) */
static void emit_transformer(model_tensor_sink *s, const char *prefix, int c, int depth,
                             int cross_dim)
{
    int ff = 4 * c; /* FeedForward(mult=4); GEGLU's projection makes value and gate: 2 × ff */
    model_tensor_emit_norm(s, c, "%s.norm", prefix);
    model_tensor_emit_linear(s, c, c, true, "%s.proj_in", prefix);
    for (int k = 0; k < depth; k++) {
        char b[MODEL_TENSOR_MAX_NAME];
        snprintf(b, sizeof b, "%s.transformer_blocks.%d", prefix, k);
        model_tensor_emit_norm(s, c, "%s.norm1", b);
        model_tensor_emit_linear(s, c, c, false, "%s.attn1.to_q", b);
        model_tensor_emit_linear(s, c, c, false, "%s.attn1.to_k", b);
        model_tensor_emit_linear(s, c, c, false, "%s.attn1.to_v", b);
        model_tensor_emit_linear(s, c, c, true, "%s.attn1.to_out.0", b);
        model_tensor_emit_norm(s, c, "%s.norm2", b);
        model_tensor_emit_linear(s, c, c, false, "%s.attn2.to_q", b);
        model_tensor_emit_linear(s, c, cross_dim, false, "%s.attn2.to_k", b);
        model_tensor_emit_linear(s, c, cross_dim, false, "%s.attn2.to_v", b);
        model_tensor_emit_linear(s, c, c, true, "%s.attn2.to_out.0", b);
        model_tensor_emit_norm(s, c, "%s.norm3", b);
        model_tensor_emit_linear(s, 2 * ff, c, true, "%s.ff.net.0.proj", b);
        model_tensor_emit_linear(s, c, ff, true, "%s.ff.net.2", b);
    }
    model_tensor_emit_linear(s, c, c, true, "%s.proj_out", prefix);
}

/* Down block i: layers_per_block[i] resnets (the first from the previous level's channels),
 * each followed by an attention in a CrossAttnDownBlock2D, then a stride-2 conv except at the
 * last level. The attentions come first in the list because the module registers them first. */
static void emit_down_block(model_tensor_sink *s, const unet_config *cfg, int i)
{
    int out = cfg->block_out_channels[i];
    int in = cfg->block_out_channels[i > 0 ? i - 1 : 0];
    int layers = cfg->layers_per_block[i];
    char prefix[MODEL_TENSOR_MAX_NAME];
    for (int j = 0; cfg->down_cross_attn[i] && j < layers; j++) {
        snprintf(prefix, sizeof prefix, "down_blocks.%d.attentions.%d", i, j);
        emit_transformer(s, prefix, out, cfg->transformer_layers_per_block[i],
                         cfg->cross_attention_dim);
    }
    for (int j = 0; j < layers; j++)
        model_tensor_emit_resnet(s, j == 0 ? in : out, out, cfg->time_embed_dim,
                                 "down_blocks.%d.resnets.%d", i, j);
    if (i < cfg->n_blocks - 1)
        model_tensor_emit_conv(s, out, out, 3, "down_blocks.%d.downsamplers.0.conv", i);
}

/* Up block i works at level n-1-i with layers_per_block + 1 resnets. Resnet j takes the
 * previous output (the coarser level's channels for j == 0) concatenated with a skip
 * connection, popped from the down path in reverse: the down block's own outputs, and for the
 * last resnet the output of the level below (or conv_in's at level 0). */
static void emit_up_block(model_tensor_sink *s, const unet_config *cfg, int i)
{
    int n = cfg->n_blocks;
    int level = n - 1 - i;
    int out = cfg->block_out_channels[level];
    int prev_out = cfg->block_out_channels[i > 0 ? level + 1 : level];
    int skip_last = cfg->block_out_channels[level > 0 ? level - 1 : 0];
    int layers = cfg->layers_per_block[level] + 1;
    char prefix[MODEL_TENSOR_MAX_NAME];
    for (int j = 0; cfg->up_cross_attn[i] && j < layers; j++) {
        snprintf(prefix, sizeof prefix, "up_blocks.%d.attentions.%d", i, j);
        emit_transformer(s, prefix, out, cfg->transformer_layers_per_block[level],
                         cfg->cross_attention_dim);
    }
    for (int j = 0; j < layers; j++) {
        int from = j == 0 ? prev_out : out;
        int skip = j == layers - 1 ? skip_last : out;
        model_tensor_emit_resnet(s, from + skip, out, cfg->time_embed_dim,
                                 "up_blocks.%d.resnets.%d", i, j);
    }
    if (i < n - 1)
        model_tensor_emit_conv(s, out, out, 3, "up_blocks.%d.upsamplers.0.conv", i);
}

sdxl_status unet_tensors_for_each(const unet_config *cfg, model_tensor_fn fn, void *ctx,
                                  sdxl_error *err)
{
    model_tensor_sink s;
    model_tensor_sink_init(&s, fn, ctx, err);
    int n = cfg->n_blocks;
    int c0 = cfg->block_out_channels[0], c_last = cfg->block_out_channels[n - 1];
    int temb = cfg->time_embed_dim;

    model_tensor_emit_conv(&s, c0, cfg->in_channels, 3, "conv_in");
    model_tensor_emit_linear(&s, temb, c0, true, "time_embedding.linear_1");
    model_tensor_emit_linear(&s, temb, temb, true, "time_embedding.linear_2");
    model_tensor_emit_linear(&s, temb, cfg->projection_class_embeddings_input_dim, true,
                             "add_embedding.linear_1");
    model_tensor_emit_linear(&s, temb, temb, true, "add_embedding.linear_2");
    for (int i = 0; i < n; i++)
        emit_down_block(&s, cfg, i);
    for (int i = 0; i < n; i++)
        emit_up_block(&s, cfg, i);
    emit_transformer(&s, "mid_block.attentions.0", c_last,
                     cfg->transformer_layers_per_block[n - 1], cfg->cross_attention_dim);
    model_tensor_emit_resnet(&s, c_last, c_last, temb, "mid_block.resnets.0");
    model_tensor_emit_resnet(&s, c_last, c_last, temb, "mid_block.resnets.1");
    model_tensor_emit_norm(&s, c0, "conv_norm_out");
    model_tensor_emit_conv(&s, cfg->out_channels, c0, 3, "conv_out");
    return s.status;
}
