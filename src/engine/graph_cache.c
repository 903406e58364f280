/*
 * graph_cache.c — recording calls as backend graphs and replaying them (see graph_cache.h).
 */
#include "engine/graph_cache.h"

#include <string.h>

#include "base/log.h"

/* The entry for (call, mark, key), made (dropping the least recently used when full) if new. */
static graph_entry *entry_for(graph_cache *c, backend *be, graph_call_fn call,
                              arena_mark free_from, const void *key, size_t key_len)
{
    graph_entry *e = NULL;
    for (int i = 0; i < c->count && !e; i++) {
        graph_entry *x = &c->entries[i];
        if (x->call == call && x->free_from == free_from && x->key_len == key_len &&
            memcmp(x->key, key, key_len) == 0)
            e = x;
    }
    if (!e) {
        if (c->count < GRAPH_CACHE_MAX) {
            e = &c->entries[c->count++];
        } else {
            e = &c->entries[0];
            for (int i = 1; i < c->count; i++)
                if (c->entries[i].last_used < e->last_used)
                    e = &c->entries[i];
            backend_graph_free(e->be, e->graph);
        }
        memset(e, 0, sizeof *e);
        e->be = be;
        e->call = call;
        e->free_from = free_from;
        memcpy(e->key, key, key_len);
        e->key_len = key_len;
    }
    e->last_used = ++c->clock;
    return e;
}

/* Records the call just run directly. A failure is not the request's (the call ran): it is
 * logged, and the key runs directly from now on. */
static void record(graph_entry *e, backend *be, void *ctx, const char *what)
{
    sdxl_error err;
    sdxl_status st = backend_record_begin(be, &err);
    if (st == SDXL_OK) {
        st = e->call(ctx, &err);
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
                "recording %s as a graph failed, so it runs op by op (slower, same results): %s",
                what, err.message);
}

sdxl_status graph_cache_run(graph_cache *c, backend *be, const arena *a, graph_call_fn call,
                            void *ctx, const void *key, size_t key_len, const char *what,
                            sdxl_error *err)
{
    if (!c || !backend_can_record(be) || key_len > GRAPH_KEY_MAX)
        return call(ctx, err);
    graph_entry *e = entry_for(c, be, call, arena_get_mark(a), key, key_len);
    if (e->graph && backend_graph_current(be, e->graph))
        return backend_graph_launch(be, e->graph, err);
    backend_graph_free(be, e->graph);
    e->graph = NULL;
    SDXL_TRY(call(ctx, err));
    if (!e->unrecordable)
        record(e, be, ctx, what);
    return SDXL_OK;
}

int graph_cache_recorded(const graph_cache *c)
{
    int n = 0;
    for (int i = 0; i < c->count; i++)
        n += c->entries[i].graph != NULL;
    return n;
}

void graph_cache_clear(graph_cache *c)
{
    for (int i = 0; i < c->count; i++)
        backend_graph_free(c->entries[i].be, c->entries[i].graph);
    memset(c, 0, sizeof *c);
}
