/*
 * vae_chain.h — the two activation buffers a VAE half alternates between.
 *
 * The encoder and the decoder are straight chains of layers (no skip connections), each layer
 * reading the previous one's output only. Carving every output from the arena would keep all of
 * them alive until the pass ends (gigabytes at 512²); with two buffers sized for the largest
 * activation, a layer reads the current buffer and writes the other, so a pass needs two of its
 * largest activations plus one layer's temporaries.
 *
 *     vae_chain c;
 *     st = vae_chain_init(&c, arena, DTYPE_F32, largest_numel, err);
 *     tensor y;
 *     st = vae_chain_target(&c, (int64_t[]){n, h, w, 128}, &y, err);   // view of the free buffer
 *     st = backend_conv2d(be, &x, &w, &b, &p, &y, err);
 *     vae_chain_advance(&c, &y);                                        // y is now c.x
 */
#ifndef SDXL_ENGINE_VAE_CHAIN_H
#define SDXL_ENGINE_VAE_CHAIN_H

#include <stdint.h>

#include "backend/tensor.h"

typedef struct vae_chain {
    tensor buf[2]; /* [capacity] each, from the arena */
    int cur;       /* the buffer holding x */
    tensor x;      /* the current activation [N, H, W, C]: a view of buf[cur] */
} vae_chain;

/* Two buffers of capacity elements of type. No current activation yet. */
sdxl_status vae_chain_init(vae_chain *c, arena *a, dtype type, int64_t capacity,
                           sdxl_error *err);

/* A view of the buffer not holding x, shaped [shape[0], shape[1], shape[2], shape[3]]; fails
 * (SDXL_ERR_INTERNAL) when the shape needs more than the capacity. */
sdxl_status vae_chain_target(const vae_chain *c, const int64_t shape[4], tensor *y,
                             sdxl_error *err);

/* Makes y (from vae_chain_target, now written) the current activation. */
void vae_chain_advance(vae_chain *c, const tensor *y);

#endif /* SDXL_ENGINE_VAE_CHAIN_H */
