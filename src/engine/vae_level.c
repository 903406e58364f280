/*
 * vae_level.c — a VAE encoder or decoder level (see vae_level.h), following diffusers'
 * DownEncoderBlock2D / UpDecoderBlock2D with Downsample2D (use_conv, padding 0) and
 * Upsample2D (use_conv, nearest interpolation by 2).
 */
#include "engine/vae_level.h"

#include <stdlib.h>

/* Downsample2D with padding 0 pads (left 0, right 1, top 0, bottom 1) itself, then convolves
 * with stride 2 and no padding. */
static const conv2d_params down_conv = {2, 0, 0, 1, 1};
static const conv2d_params same_conv = {1, 1, 1, 1, 1};

sdxl_status vae_level_load(weights *w, const char *prefix, vae_level_kind kind, int n_resnets,
                           int in_channels, int out_channels, int groups, float eps,
                           bool resample, vae_level *lvl, sdxl_error *err)
{
    lvl->kind = kind;
    lvl->out_channels = out_channels;
    lvl->resnets = calloc((size_t)n_resnets, sizeof *lvl->resnets);
    if (!lvl->resnets)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "%s: out of memory for %d resnets", prefix,
                         n_resnets);
    lvl->n_resnets = n_resnets;
    char p[WEIGHTS_PREFIX_MAX];
    for (int j = 0; j < n_resnets; j++) {
        SDXL_TRY(weights_prefix(p, sizeof p, err, "%s.resnets.%d", prefix, j));
        SDXL_TRY(resnet_load(w, p, j == 0 ? in_channels : out_channels, out_channels, 0, groups,
                             eps, 1.0f, &lvl->resnets[j], err));
    }
    lvl->resample = resample;
    if (!resample)
        return SDXL_OK;
    return weights_load_conv(w, out_channels, out_channels, 3, &lvl->resample_w, &lvl->resample_b,
                             err, "%s.%s.0.conv", prefix,
                             kind == VAE_LEVEL_DOWN ? "downsamplers" : "upsamplers");
}

void vae_level_free(backend *be, vae_level *lvl)
{
    for (int j = 0; j < lvl->n_resnets; j++)
        resnet_free(be, &lvl->resnets[j]);
    free(lvl->resnets);
    lvl->resnets = NULL;
    lvl->n_resnets = 0;
    backend_weight_free(be, &lvl->resample_w);
    backend_weight_free(be, &lvl->resample_b);
}

int64_t vae_level_out_side(const vae_level *lvl, int64_t side)
{
    if (!lvl->resample)
        return side;
    if (lvl->kind == VAE_LEVEL_UP)
        return 2 * side;
    const conv2d_params *p = &down_conv;
    return (side + p->pad_top + p->pad_bottom - 3) / p->stride + 1;
}

int64_t vae_level_max_numel(const vae_level *lvl, int64_t n, int64_t h, int64_t w)
{
    int64_t at_input_size = n * h * w * lvl->out_channels;
    if (lvl->resample && lvl->kind == VAE_LEVEL_UP)
        return 4 * at_input_size; /* the upsampled activation, before and after its conv */
    return at_input_size;
}

static sdxl_status resample_forward(const vae_level *lvl, backend *be, vae_chain *chain,
                                    sdxl_error *err)
{
    const tensor *x = &chain->x;
    int64_t shape[4] = {x->shape[0], vae_level_out_side(lvl, x->shape[1]),
                        vae_level_out_side(lvl, x->shape[2]), x->shape[3]};
    tensor y;
    SDXL_TRY(vae_chain_target(chain, shape, &y, err));
    if (lvl->kind == VAE_LEVEL_DOWN) {
        SDXL_TRY(backend_conv2d(be, x, &lvl->resample_w, &lvl->resample_b, &down_conv, &y, err));
        vae_chain_advance(chain, &y);
        return SDXL_OK;
    }
    SDXL_TRY(backend_upsample_nearest2x(be, x, &y, err));
    vae_chain_advance(chain, &y);
    SDXL_TRY(vae_chain_target(chain, shape, &y, err));
    SDXL_TRY(backend_conv2d(be, &chain->x, &lvl->resample_w, &lvl->resample_b, &same_conv, &y,
                            err));
    vae_chain_advance(chain, &y);
    return SDXL_OK;
}

sdxl_status vae_level_forward(const vae_level *lvl, backend *be, arena *a, vae_chain *chain,
                              sdxl_error *err)
{
    for (int j = 0; j < lvl->n_resnets; j++) {
        const tensor *x = &chain->x;
        int64_t shape[4] = {x->shape[0], x->shape[1], x->shape[2], lvl->out_channels};
        tensor y;
        SDXL_TRY(vae_chain_target(chain, shape, &y, err));
        SDXL_TRY(resnet_forward(&lvl->resnets[j], be, a, x, NULL, &y, err));
        vae_chain_advance(chain, &y);
    }
    return lvl->resample ? resample_forward(lvl, be, chain, err) : SDXL_OK;
}
