/*
 * vae_tensors.c — the VAE's tensor list (see vae_tensors.h), following diffusers' Encoder,
 * Decoder and UNetMidBlock2D in registration order.
 */
#include "engine/vae_tensors.h"

/* UNetMidBlock2D over c channels. The module registers its attentions before its resnets. */
static void emit_mid_block(model_tensor_sink *s, const char *part, int c)
{
    model_tensor_emit_norm(s, c, "%s.mid_block.attentions.0.group_norm", part);
    model_tensor_emit_linear(s, c, c, true, "%s.mid_block.attentions.0.to_q", part);
    model_tensor_emit_linear(s, c, c, true, "%s.mid_block.attentions.0.to_k", part);
    model_tensor_emit_linear(s, c, c, true, "%s.mid_block.attentions.0.to_v", part);
    model_tensor_emit_linear(s, c, c, true, "%s.mid_block.attentions.0.to_out.0", part);
    model_tensor_emit_resnet(s, c, c, 0, "%s.mid_block.resnets.0", part);
    model_tensor_emit_resnet(s, c, c, 0, "%s.mid_block.resnets.1", part);
}

static void emit_encoder(model_tensor_sink *s, const vae_config *cfg)
{
    int n = cfg->n_blocks;
    const int *ch = cfg->block_out_channels;
    model_tensor_emit_conv(s, ch[0], cfg->in_channels, 3, "encoder.conv_in");
    for (int i = 0; i < n; i++) {
        int in = ch[i > 0 ? i - 1 : 0];
        for (int j = 0; j < cfg->layers_per_block; j++)
            model_tensor_emit_resnet(s, j == 0 ? in : ch[i], ch[i], 0,
                                     "encoder.down_blocks.%d.resnets.%d", i, j);
        if (i < n - 1) /* stride 2, padded (0, 1, 0, 1) by hand in diffusers' Downsample2D */
            model_tensor_emit_conv(s, ch[i], ch[i], 3,
                                   "encoder.down_blocks.%d.downsamplers.0.conv", i);
    }
    emit_mid_block(s, "encoder", ch[n - 1]);
    model_tensor_emit_norm(s, ch[n - 1], "encoder.conv_norm_out");
    model_tensor_emit_conv(s, 2 * cfg->latent_channels, ch[n - 1], 3, "encoder.conv_out");
}

/* The decoder runs the levels coarsest first: up block i is level n-1-i, with
 * layers_per_block + 1 resnets and a nearest 2× upsample + conv except at the end. */
static void emit_decoder(model_tensor_sink *s, const vae_config *cfg)
{
    int n = cfg->n_blocks;
    const int *ch = cfg->block_out_channels;
    model_tensor_emit_conv(s, ch[n - 1], cfg->latent_channels, 3, "decoder.conv_in");
    for (int i = 0; i < n; i++) {
        int level = n - 1 - i;
        int in = ch[i > 0 ? level + 1 : level];
        for (int j = 0; j < cfg->layers_per_block + 1; j++)
            model_tensor_emit_resnet(s, j == 0 ? in : ch[level], ch[level], 0,
                                     "decoder.up_blocks.%d.resnets.%d", i, j);
        if (i < n - 1)
            model_tensor_emit_conv(s, ch[level], ch[level], 3,
                                   "decoder.up_blocks.%d.upsamplers.0.conv", i);
    }
    emit_mid_block(s, "decoder", ch[n - 1]);
    model_tensor_emit_norm(s, ch[0], "decoder.conv_norm_out");
    model_tensor_emit_conv(s, cfg->out_channels, ch[0], 3, "decoder.conv_out");
}

sdxl_status vae_tensors_for_each(const vae_config *cfg, model_tensor_fn fn, void *ctx,
                                 sdxl_error *err)
{
    model_tensor_sink s;
    model_tensor_sink_init(&s, fn, ctx, err);
    int latent = cfg->latent_channels;
    emit_encoder(&s, cfg);
    emit_decoder(&s, cfg);
    model_tensor_emit_conv(&s, 2 * latent, 2 * latent, 1, "quant_conv");
    model_tensor_emit_conv(&s, latent, latent, 1, "post_quant_conv");
    return s.status;
}
