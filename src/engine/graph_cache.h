/*
 * graph_cache.h — a session's recorded calls (backend graphs: CUDA graphs on the cuda backend),
 * replayed instead of launching their ops one by one.
 *
 * One UNet evaluation is about 1,600 ops and the two text encoders about 530; launched one by
 * one they cost the host more time than a GPU needs to run them at 512x512. A recorded call
 * launches them all at once. A recording replays the very tensors it was recorded with, so a
 * call is "the same" only when everything it reads or writes is: the call function, the
 * arena's mark (its temporaries land at the same addresses) and the caller's key (every
 * tensor address it passes, the shapes). The pipeline's arena layout
 * makes the key the same for every request of one shape on a session, whatever the prompt,
 * seed or timestep, as long as those are input tensors written before the call.
 *
 * The first call with a new key runs directly (that builds the backend's plans and scratch) and
 * is then recorded; later calls launch the recording. Where the backend cannot record (the cpu
 * backend) calls run directly, and a recording that fails is logged once and not tried again
 * for that key. A recording made stale by a larger shape's scratch is recorded again. Results
 * are the same bits either way.
 */
#ifndef SDXL_ENGINE_GRAPH_CACHE_H
#define SDXL_ENGINE_GRAPH_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "base/arena.h"

/* Distinct calls kept per session; the least recently used is dropped beyond that. */
#define GRAPH_CACHE_MAX 16
/* The largest key, in bytes. */
#define GRAPH_KEY_MAX 192

/* A call: the same ops on the same tensors whenever its key is the same, and no host copy. */
typedef sdxl_status (*graph_call_fn)(void *ctx, sdxl_error *err);

typedef struct graph_entry {
    graph_call_fn call;
    arena_mark free_from; /* the arena's mark at the call */
    unsigned char key[GRAPH_KEY_MAX];
    size_t key_len;
    backend *be;          /* the backend the call runs on (and its graph belongs to) */
    backend_graph *graph; /* NULL until recorded */
    bool unrecordable;    /* a recording failed: run directly */
    uint64_t last_used;
} graph_entry;

typedef struct graph_cache {
    graph_entry entries[GRAPH_CACHE_MAX];
    int count;
    uint64_t clock;
} graph_cache;

/* call(ctx, err), through a recording where the backend can record (c NULL: always directly).
 * a: the arena the call takes its temporaries from; key: key_len bytes (at most
 * GRAPH_KEY_MAX; zero a struct's padding before filling it); what names the call in the log
 * when its recording fails. */
sdxl_status graph_cache_run(graph_cache *c, backend *be, const arena *a, graph_call_fn call,
                            void *ctx, const void *key, size_t key_len, const char *what,
                            sdxl_error *err);

/* Recordings in the cache (for tests). */
int graph_cache_recorded(const graph_cache *c);

/* Frees every recording (each on the backend it was made on); c is empty afterwards. */
void graph_cache_clear(graph_cache *c);

#endif /* SDXL_ENGINE_GRAPH_CACHE_H */
