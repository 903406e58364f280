/*
 * unet_flops.h — the arithmetic of one UNet forward pass, counted from its config.
 *
 * Counts what the hardware floor is read against (docs/BENCHMARKS.md, perf-floor notes):
 * convolutions, linear layers and the two matrix products of every attention, a multiply-add
 * being 2 FLOPs. Norms, activations, additions and the nearest upsampling are left out (a few
 * per cent of one matrix product's work, and memory-bound anyway). Follows the same module
 * tree as unet.c, so a change there shows up here.
 */
#ifndef SDXL_ENGINE_UNET_FLOPS_H
#define SDXL_ENGINE_UNET_FLOPS_H

#include <stdint.h>

#include "engine/unet_config.h"

typedef struct unet_flop_count {
    double total;     /* everything counted, for the whole batch */
    double attention; /* of which the score and value products (q·kᵀ, p·v) of every attention */
} unet_flop_count;

/* One forward pass on latents [batch, height, width, in_channels] with context_tokens text
 * tokens per image (77 for SDXL). */
unet_flop_count unet_flops(const unet_config *cfg, int64_t batch, int64_t height, int64_t width,
                           int64_t context_tokens);

#endif /* SDXL_ENGINE_UNET_FLOPS_H */
