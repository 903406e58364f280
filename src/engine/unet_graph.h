/*
 * unet_graph.h — UNet calls through a session's graph cache (graph_cache.h): recorded once
 * per shape, replayed for every later step and request of that shape.
 */
#ifndef SDXL_ENGINE_UNET_GRAPH_H
#define SDXL_ENGINE_UNET_GRAPH_H

#include "engine/graph_cache.h"
#include "engine/unet.h"

/* unet_forward (same arguments, same results), recorded where it can be: on a backend that
 * records, when every upsampling doubles the size (other sizes write index tables). */
sdxl_status unet_graph_forward(graph_cache *c, const unet *u, backend *be, arena *a,
                               const tensor *latents, const tensor *timestep, const tensor *text,
                               const tensor *pooled, const tensor *time_ids, tensor *out,
                               sdxl_error *err);

#endif /* SDXL_ENGINE_UNET_GRAPH_H */
