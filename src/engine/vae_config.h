/*
 * vae_config.h — the SDXL VAE's architecture, read from a diffusers vae/config.json
 * (AutoencoderKL).
 *
 * The encoder has one DownEncoderBlock2D per entry of block_out_channels (a 2× downsample after
 * every block but the last), the decoder one UpDecoderBlock2D per entry in reverse; both have a
 * mid block with one self-attention, and quant_conv / post_quant_conv sit between them and the
 * latents. With 4 levels the latent is 1/8 of the image in each direction.
 *
 * Refused with SDXL_ERR_UNSUPPORTED: other block types, a shift_factor or latents_mean/std
 * (other models' latent normalisation), a VAE without quant convs or mid-block attention.
 */
#ifndef SDXL_ENGINE_VAE_CONFIG_H
#define SDXL_ENGINE_VAE_CONFIG_H

#include <stdbool.h>

#include "base/status.h"

#define VAE_MAX_BLOCKS 8

typedef struct vae_config {
    int in_channels;     /* image channels in (3) */
    int out_channels;    /* image channels out (3) */
    int latent_channels; /* 4 */
    int n_blocks;
    int block_out_channels[VAE_MAX_BLOCKS]; /* encoder order; the decoder runs them reversed */
    int layers_per_block;                   /* resnets per encoder block (+1 in the decoder) */
    int norm_num_groups;
    int sample_size;      /* default image side (diffusers: 32 when the config has none) */
    float scaling_factor; /* latents × scaling_factor go to the UNet (0.13025 for SDXL) */
    bool force_upcast;    /* diffusers runs this VAE in fp32 even in an fp16 pipeline */
} vae_config;

/* Reads DIR/config.json. */
sdxl_status vae_config_load(const char *dir, vae_config *cfg, sdxl_error *err);

/* How many times smaller than the image the latent is: 2^(n_blocks - 1). */
int vae_config_scale(const vae_config *cfg);

#endif /* SDXL_ENGINE_VAE_CONFIG_H */
