/*
 * unet_graph.h — a session's UNet calls recorded as backend graphs and replayed (CUDA graphs
 * on the cuda backend), one per distinct call.
 *
 * One UNet evaluation is about 1,600 ops; launched one by one they cost the host more time than
 * the GPU needs to run them at 512x512. A recorded graph launches them all at once. A graph
 * replays the very tensors it was recorded with, so a call is "the same" only when every input
 * and output tensor, the arena's free space above them and the UNet are: that is the key.
 * The pipeline's arena layout makes the key the same for every request of one (width, height,
 * rows) on a session, whatever the prompt, seed or timestep (the timestep is an input tensor).
 *
 * The first call with a new key runs directly (that builds the backend's plans and scratch) and
 * is then recorded; later calls launch the graph. A call the backend cannot record (the cpu
 * backend; sizes whose upsampling writes index tables) runs directly every time, and a
 * recording that fails is logged once and not tried again for that key. A graph made stale by
 * a larger shape's scratch is recorded again. Results are the same bits either way.
 */
#ifndef SDXL_ENGINE_UNET_GRAPH_H
#define SDXL_ENGINE_UNET_GRAPH_H

#include <stdbool.h>

#include "engine/unet.h"

/* Distinct calls kept per session; the least recently used is dropped beyond that. */
#define UNET_GRAPHS_MAX 8

typedef struct unet_call_key {
    const unet *u;
    const void *latents, *timestep, *text, *pooled, *time_ids, *out;
    int64_t latent_shape[4], text_shape[3];
    arena_mark free_from; /* the arena's mark at the call */
} unet_call_key;

typedef struct unet_graph_entry {
    unet_call_key key;
    backend_graph *graph; /* NULL until recorded */
    bool unrecordable;    /* a recording failed: run directly */
    uint64_t last_used;
} unet_graph_entry;

typedef struct unet_graphs {
    unet_graph_entry entries[UNET_GRAPHS_MAX];
    int count;
    uint64_t clock;
} unet_graphs;

/* unet_forward (same arguments, same results), through a recorded graph where it can. */
sdxl_status unet_graphs_forward(unet_graphs *g, const unet *u, backend *be, arena *a,
                                const tensor *latents, const tensor *timestep, const tensor *text,
                                const tensor *pooled, const tensor *time_ids, tensor *out,
                                sdxl_error *err);

/* Frees every graph (be: the backend they were recorded on); g is empty afterwards. */
void unet_graphs_clear(unet_graphs *g, backend *be);

#endif /* SDXL_ENGINE_UNET_GRAPH_H */
