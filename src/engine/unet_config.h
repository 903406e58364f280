/*
 * unet_config.h — the SDXL UNet's architecture, read from a diffusers unet/config.json
 * (UNet2DConditionModel).
 *
 * Everything the UNet's weights and forward pass depend on, with diffusers' conventions
 * resolved: per-block lists are filled in when the file gives one value for all blocks, and
 * "attention_head_dim" is read as what diffusers actually uses it for — the number of heads
 * (diffusers' naming bug, kept for compatibility: head size = channels / heads).
 *
 * Only the SDXL family is accepted: DownBlock2D / CrossAttnDownBlock2D and their up
 * counterparts, a UNetMidBlock2DCrossAttn, "text_time" added conditioning, linear projections
 * in the transformers, positional timesteps, silu. Anything else (class embeddings, other
 * attention types, an encoder_hid_proj, LCM's time_cond_proj_dim, ...) is refused with
 * SDXL_ERR_UNSUPPORTED naming the file and the key, rather than loaded and computed wrongly.
 */
#ifndef SDXL_ENGINE_UNET_CONFIG_H
#define SDXL_ENGINE_UNET_CONFIG_H

#include <stdbool.h>

#include "base/status.h"

#define UNET_MAX_BLOCKS 8

typedef struct unet_config {
    int in_channels;  /* latent channels in (4) */
    int out_channels; /* noise prediction channels (4) */
    int sample_size;  /* default latent side (0 when the config has none) */

    /* Per resolution level, from the finest (level 0) to the coarsest. The up path runs the
     * levels in reverse: up block i is level n_blocks - 1 - i. */
    int n_blocks;
    int block_out_channels[UNET_MAX_BLOCKS];
    int layers_per_block[UNET_MAX_BLOCKS];             /* resnets per down block (+1 going up) */
    int transformer_layers_per_block[UNET_MAX_BLOCKS]; /* transformer blocks per attention */
    int num_attention_heads[UNET_MAX_BLOCKS];          /* "attention_head_dim" in the file */
    bool down_cross_attn[UNET_MAX_BLOCKS];             /* CrossAttnDownBlock2D, else DownBlock2D */
    bool up_cross_attn[UNET_MAX_BLOCKS]; /* in up-block order: CrossAttnUpBlock2D / UpBlock2D */

    int cross_attention_dim; /* width of the text embeddings (2048 = 768 + 1280 for SDXL) */
    int norm_num_groups;
    float norm_eps;          /* resnet and transformer group norms */
    bool upcast_attention;   /* diffusers computes attention scores in fp32 (a precision hint) */

    /* Timestep embedding: sinusoids of block_out_channels[0] → time_embed_dim. */
    bool flip_sin_to_cos;
    int freq_shift;
    int time_embed_dim; /* 4 × block_out_channels[0] */

    /* SDXL "text_time" conditioning: the pooled text embedding and the 6 time ids, each id
     * embedded as addition_time_embed_dim sinusoids, projected to time_embed_dim. */
    int addition_time_embed_dim;
    int projection_class_embeddings_input_dim; /* = pooled width + 6 × addition_time_embed_dim */

    float mid_block_scale_factor; /* resnet output scale in the mid block (1) */
} unet_config;

/* Reads DIR/config.json. */
sdxl_status unet_config_load(const char *dir, unet_config *cfg, sdxl_error *err);

/* Pooled text embedding width the config expects:
 * projection_class_embeddings_input_dim - 6 × addition_time_embed_dim. */
int unet_config_pooled_dim(const unet_config *cfg);

#endif /* SDXL_ENGINE_UNET_CONFIG_H */
