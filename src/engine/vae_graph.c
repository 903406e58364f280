/*
 * vae_graph.c — VAE calls through the session's graph cache (see vae_graph.h).
 */
#include "engine/vae_graph.h"

#include <string.h>

#include "engine/vae_tiling.h"

/* Everything one recorded VAE call reads and writes: an encode (image -> mean, logvar) or a
 * decode (latents -> image, logvar unused). */
typedef struct vae_call {
    const vae *v;
    backend *be;
    arena *a;
    const vae_tiling *tiling;
    const tensor *in;
    tensor *out, *logvar;
} vae_call;

typedef struct vae_call_key {
    const vae *v;
    const void *in, *out, *logvar;
    int64_t in_shape[4];
} vae_call_key;

static sdxl_status run_encode(void *ctx, sdxl_error *err)
{
    vae_call *c = ctx;
    return vae_encode(c->v, c->be, c->a, c->tiling, c->in, c->out, c->logvar, err);
}

static sdxl_status run_decode(void *ctx, sdxl_error *err)
{
    vae_call *c = ctx;
    return vae_decode(c->v, c->be, c->a, c->tiling, c->in, c->out, err);
}

/* Whether the call would run tile by tile (through host memory): in [B, H, W, C]. Knobs the
 * tiling refuses count as tiled: the call then runs directly, and fails there. */
static bool tiled(const vae *v, const vae_tiling *tiling, bool decode, const tensor *in)
{
    vae_tile_geometry g;
    bool tiles;
    sdxl_error ignored;
    return vae_tiling_decide(tiling, vae_scale(v), decode, in->shape[1], in->shape[2], &g,
                             &tiles, &ignored) != SDXL_OK ||
           tiles;
}

static sdxl_status run(graph_cache *c, vae_call *call, graph_call_fn fn, bool decode,
                       const char *what, sdxl_error *err)
{
    if (!call->out->data || call->in->ndim != 4 || tiled(call->v, call->tiling, decode, call->in))
        return fn(call, err);
    vae_call_key k;
    memset(&k, 0, sizeof k); /* compared as bytes: no stray padding */
    k.v = call->v;
    k.in = call->in->data;
    k.out = call->out->data;
    k.logvar = call->logvar ? call->logvar->data : NULL;
    memcpy(k.in_shape, call->in->shape, sizeof k.in_shape);
    return graph_cache_run(c, call->be, call->a, fn, call, &k, sizeof k, what, err);
}

sdxl_status vae_graph_encode(graph_cache *c, const vae *v, backend *be, arena *a,
                             const vae_tiling *tiling, const tensor *image, tensor *mean,
                             tensor *logvar, sdxl_error *err)
{
    vae_call call = {v, be, a, tiling, image, mean, logvar};
    return run(c, &call, run_encode, false, "a VAE encode", err);
}

sdxl_status vae_graph_decode(graph_cache *c, const vae *v, backend *be, arena *a,
                             const vae_tiling *tiling, const tensor *latents, tensor *image,
                             sdxl_error *err)
{
    vae_call call = {v, be, a, tiling, latents, image, NULL};
    return run(c, &call, run_decode, true, "a VAE decode", err);
}
