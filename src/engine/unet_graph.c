/*
 * unet_graph.c — UNet calls through the session's graph cache (see unet_graph.h).
 */
#include "engine/unet_graph.h"

#include <string.h>

/* Everything one recorded UNet call reads and writes. */
typedef struct unet_call {
    const unet *u;
    backend *be;
    arena *a;
    const tensor *latents, *timestep, *text, *pooled, *time_ids;
    tensor *out;
} unet_call;

typedef struct unet_call_key {
    const unet *u;
    const void *latents, *timestep, *text, *pooled, *time_ids, *out;
    int64_t latent_shape[4], text_shape[3];
} unet_call_key;

static sdxl_status run_call(void *ctx, sdxl_error *err)
{
    unet_call *c = ctx;
    return unet_forward(c->u, c->be, c->a, c->latents, c->timestep, c->text, c->pooled,
                        c->time_ids, c->out, err);
}

/* Every upsampling doubles the size exactly: the call writes no index table (unet.h). */
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

sdxl_status unet_graph_forward(graph_cache *c, const unet *u, backend *be, arena *a,
                               const tensor *latents, const tensor *timestep, const tensor *text,
                               const tensor *pooled, const tensor *time_ids, tensor *out,
                               sdxl_error *err)
{
    unet_call call = {u, be, a, latents, timestep, text, pooled, time_ids, out};
    if (!out->data || latents->ndim != 4 || text->ndim != 3 || !host_free(u, latents))
        return run_call(&call, err);
    unet_call_key k;
    memset(&k, 0, sizeof k); /* compared as bytes: no stray padding */
    k.u = u;
    k.latents = latents->data;
    k.timestep = timestep->data;
    k.text = text->data;
    k.pooled = pooled->data;
    k.time_ids = time_ids->data;
    k.out = out->data;
    memcpy(k.latent_shape, latents->shape, sizeof k.latent_shape);
    memcpy(k.text_shape, text->shape, sizeof k.text_shape);
    return graph_cache_run(c, be, a, run_call, &call, &k, sizeof k, "a UNet call", err);
}
