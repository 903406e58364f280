/*
 * resnet.h — diffusers' ResnetBlock2D as SDXL's UNet and VAE use it ("default" time-embedding
 * norm, no up/down sampling inside the block, dropout an identity at inference):
 *
 *     h = conv1(SiLU(norm1(x)))                      3×3, in -> out channels
 *     h = h + time_emb_proj(SiLU(temb))              per channel; UNet only (temb_channels > 0)
 *     h = conv2(SiLU(norm2(h)))                      3×3, out -> out
 *     y = (shortcut(x) + h) / output_scale_factor    shortcut: 1×1 conv_shortcut when in != out
 *
 * Both group norms have the caller's groups and eps (the UNet's and the VAE's norm_num_groups
 * and norm_eps). Tensors are loaded by diffusers' names under a prefix:
 *
 *     resnet r = {0};
 *     st = resnet_load(&w, "down_blocks.1.resnets.0", 320, 640, 1280, 32, 1e-5f, 1.0f, &r, err);
 *     st = resnet_forward(&r, be, arena, &x, &temb, &y, err);   // x [N, H, W, 320] -> y [..., 640]
 *     resnet_free(be, &r);
 */
#ifndef SDXL_ENGINE_RESNET_H
#define SDXL_ENGINE_RESNET_H

#include <stdbool.h>

#include "backend/backend.h"
#include "base/arena.h"
#include "engine/weights.h"

typedef struct resnet {
    int in_channels, out_channels;
    int temb_channels; /* 0: no time embedding (the VAE) */
    int groups;
    float eps;
    float output_scale_factor;
    tensor norm1_w, norm1_b;       /* VECTOR [in] */
    tensor conv1_w, conv1_b;       /* CONV [out, in, 3, 3], VECTOR [out] */
    tensor temb_w, temb_b;         /* time_emb_proj: LINEAR [out, temb], VECTOR [out]; or zeroed */
    tensor norm2_w, norm2_b;       /* VECTOR [out] */
    tensor conv2_w, conv2_b;       /* CONV [out, out, 3, 3], VECTOR [out] */
    bool has_shortcut;             /* in != out */
    tensor shortcut_w, shortcut_b; /* conv_shortcut: CONV [out, in, 1, 1], VECTOR [out] */
} resnet;

/* Loads PREFIX.norm1.{weight,bias}, PREFIX.conv1, PREFIX.time_emb_proj (when temb_channels > 0),
 * PREFIX.norm2, PREFIX.conv2 and PREFIX.conv_shortcut (when in_channels != out_channels).
 * r must be zeroed; resnet_free accepts it half loaded after a failure. */
sdxl_status resnet_load(weights *w, const char *prefix, int in_channels, int out_channels,
                        int temb_channels, int groups, float eps, float output_scale_factor,
                        resnet *r, sdxl_error *err);
void resnet_free(backend *be, resnet *r);

/* x [N, H, W, in] -> y [N, H, W, out] (already made; must not be x).
 * temb [N, temb_channels], the raw time embedding (the block applies SiLU itself, as
 * diffusers does), or NULL when temb_channels is 0.
 * Temporaries (at most out + max(in, out) channels at x's size) come from a and are released
 * before returning. */
sdxl_status resnet_forward(const resnet *r, backend *be, arena *a, const tensor *x,
                           const tensor *temb, tensor *y, sdxl_error *err);

#endif /* SDXL_ENGINE_RESNET_H */
