/*
 * vae_graph.h — VAE encoder and decoder calls through a session's graph cache (graph_cache.h):
 * recorded once per shape, replayed for every later request of that shape.
 *
 * At 512x512 on an H100, encoding and decoding op by op took 8 ms longer than their kernels
 * run (the host launching ~290 ops, cuDNN's among them); a recording launches them at once.
 * Tiled calls (vae_tiling.h) pass each tile through host memory, so they run directly.
 */
#ifndef SDXL_ENGINE_VAE_GRAPH_H
#define SDXL_ENGINE_VAE_GRAPH_H

#include "engine/graph_cache.h"
#include "engine/vae.h"

/* vae_encode and vae_decode (same arguments, same results), recorded where they can be: on a
 * backend that records, when the call is not tiled. */
sdxl_status vae_graph_encode(graph_cache *c, const vae *v, backend *be, arena *a,
                             const vae_tiling *tiling, const tensor *image, tensor *mean,
                             tensor *logvar, sdxl_error *err);
sdxl_status vae_graph_decode(graph_cache *c, const vae *v, backend *be, arena *a,
                             const vae_tiling *tiling, const tensor *latents, tensor *image,
                             sdxl_error *err);

#endif /* SDXL_ENGINE_VAE_GRAPH_H */
