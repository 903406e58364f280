/*
 * unet_graph.c — recording UNet calls as backend graphs and replaying them (see unet_graph.h).
 */
#include "engine/unet_graph.h"

#include <string.h>

#include "base/log.h"

static unet_call_key key_of(const unet *u, const arena *a, const tensor *latents,
                            const tensor *timestep, const tensor *text, const tensor *pooled,
                            const tensor *time_ids, const tensor *out)
{
    unet_call_key k;
    memset(&k, 0, sizeof k); /* compared with memcmp: no stray padding bytes */
    k.u = u;
    k.latents = latents->data;
    k.timestep = timestep->data;
    k.text = text->data;
    k.pooled = pooled->data;
    k.time_ids = time_ids->data;
    k.out = out->data;
    memcpy(k.latent_shape, latents->shape, sizeof k.latent_shape);
    memcpy(k.text_shape, text->shape, sizeof k.text_shape);
    k.free_from = arena_get_mark(a);
    return k;
}

/* Every upsampling doubles the size exactly: the call writes no index table, so it can be
 * recorded (unet.h). */
static bool host_free(const unet *u, const tensor *latents)
{
    int64_t h = latents->shape[1], w = latents->shape[2];
    for (int i = 0; i < u->cfg.n_blocks; i++) {
        if (!u->down[i].resample)
            continue;
        if (h % 2 || w % 2)
            return false;
        h /= 2;
        w /= 2;
    }
    return true;
}

/* The entry for key, made (dropping the least recently used when full) if there is none. */
static unet_graph_entry *entry_for(unet_graphs *g, backend *be, const unet_call_key *key)
{
    unet_graph_entry *e = NULL;
    for (int i = 0; i < g->count && !e; i++)
        if (memcmp(&g->entries[i].key, key, sizeof *key) == 0)
            e = &g->entries[i];
    if (!e) {
        if (g->count < UNET_GRAPHS_MAX) {
            e = &g->entries[g->count++];
        } else {
            e = &g->entries[0];
            for (int i = 1; i < g->count; i++)
                if (g->entries[i].last_used < e->last_used)
                    e = &g->entries[i];
            backend_graph_free(be, e->graph);
        }
        *e = (unet_graph_entry){.key = *key};
    }
    e->last_used = ++g->clock;
    return e;
}

/* Records the call just run directly. A failure is not the request's: the call ran, so it is
 * logged and the key runs directly from now on. */
static void record(unet_graph_entry *e, const unet *u, backend *be, arena *a,
                   const tensor *latents, const tensor *timestep, const tensor *text,
                   const tensor *pooled, const tensor *time_ids, tensor *out)
{
    sdxl_error err;
    sdxl_status st = backend_record_begin(be, &err);
    if (st == SDXL_OK) {
        st = unet_forward(u, be, a, latents, timestep, text, pooled, time_ids, out, &err);
        sdxl_error end_err;
        sdxl_status end = backend_record_end(be, st == SDXL_OK ? &e->graph : NULL, &end_err);
        if (st == SDXL_OK && end != SDXL_OK) {
            st = end;
            err = end_err;
        }
    }
    if (st == SDXL_OK)
        return;
    e->unrecordable = true;
    log_message(LOG_LEVEL_WARNING,
                "unet: recording a [%lld, %lld, %lld, %lld] call as a graph failed, so it runs op "
                "by op (slower, same results): %s",
                (long long)latents->shape[0], (long long)latents->shape[1],
                (long long)latents->shape[2], (long long)latents->shape[3], err.message);
}

sdxl_status unet_graphs_forward(unet_graphs *g, const unet *u, backend *be, arena *a,
                                const tensor *latents, const tensor *timestep, const tensor *text,
                                const tensor *pooled, const tensor *time_ids, tensor *out,
                                sdxl_error *err)
{
    if (!backend_can_record(be) || !out->data || !host_free(u, latents))
        return unet_forward(u, be, a, latents, timestep, text, pooled, time_ids, out, err);
    unet_call_key key = key_of(u, a, latents, timestep, text, pooled, time_ids, out);
    unet_graph_entry *e = entry_for(g, be, &key);
    if (e->graph && backend_graph_current(be, e->graph))
        return backend_graph_launch(be, e->graph, err);
    backend_graph_free(be, e->graph);
    e->graph = NULL;
    SDXL_TRY(unet_forward(u, be, a, latents, timestep, text, pooled, time_ids, out, err));
    if (!e->unrecordable)
        record(e, u, be, a, latents, timestep, text, pooled, time_ids, out);
    return SDXL_OK;
}

void unet_graphs_clear(unet_graphs *g, backend *be)
{
    for (int i = 0; i < g->count; i++)
        backend_graph_free(be, g->entries[i].graph);
    memset(g, 0, sizeof *g);
}
