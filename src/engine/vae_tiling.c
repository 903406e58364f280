/*
 * vae_tiling.c — tiled VAE passes (see vae_tiling.h), following diffusers' AutoencoderKL
 * _tiled_encode / tiled_decode, blend_v and blend_h.
 *
 * Tiles are cut from, and blended in, host memory: the cutting and blending are strided
 * copies that the op table has no op for, and they are a small part of the work (a few
 * channels per pixel against the model's hundreds). Only the previous row of output tiles is
 * kept, since blending reaches one tile up and one to the left.
 */
#include "engine/vae_tiling.h"

#include <stdlib.h>
#include <string.h>

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* The geometry for encoding or decoding with VAE scale f (see vae_tiling_decide). */
static sdxl_status tiling_geometry(const vae_tiling *t, int f, bool decode, vae_tile_geometry *g,
                                   sdxl_error *err)
{
    if (t->tile_sample_size < 1 || t->tile_latent_size < 1 ||
        !(t->overlap_factor >= 0.0 && t->overlap_factor < 1.0))
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "vae tiling: tile sizes %d (sample) and %d (latent) must be at least 1 "
                         "and the overlap factor %g in [0, 1)",
                         t->tile_sample_size, t->tile_latent_size, t->overlap_factor);
    int64_t in = decode ? t->tile_latent_size : t->tile_sample_size;
    int64_t out = decode ? t->tile_sample_size : t->tile_latent_size;
    /* Python's int() of a double, as diffusers computes them. */
    g->tile = in;
    g->step = (int64_t)((double)in * (1.0 - t->overlap_factor));
    g->blend = (int64_t)((double)out * t->overlap_factor);
    g->row_limit = out - g->blend;
    g->up = decode ? f : 1;
    g->down = decode ? 1 : f;
    if (g->step < 1)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "vae tiling: a %s tile of %lld with overlap factor %g leaves no step "
                         "between tiles; use larger tiles or a smaller overlap",
                         decode ? "latent" : "sample", (long long)in, t->overlap_factor);
    return SDXL_OK;
}

sdxl_status vae_tiling_decide(const vae_tiling *t, int f, bool decode, int64_t h, int64_t w,
                              vae_tile_geometry *g, bool *tiled, sdxl_error *err)
{
    *tiled = false;
    if (!t || !t->enabled)
        return SDXL_OK;
    SDXL_TRY(tiling_geometry(t, f, decode, g, err));
    *tiled = h > g->tile || w > g->tile;
    return SDXL_OK;
}

/* The output side the tiles of one direction assemble into; *exact is cleared when a tile's
 * side does not divide by g->down. */
static int64_t assembled_side(const vae_tile_geometry *g, int64_t in, bool *exact)
{
    int64_t total = 0;
    for (int64_t pos = 0; pos < in; pos += g->step) {
        int64_t len = min64(g->tile, in - pos);
        if (len * g->up % g->down != 0)
            *exact = false;
        total += min64(g->row_limit, len * g->up / g->down);
    }
    return total;
}

/* One output tile in host memory: [N, h, w, C]. */
typedef struct host_tile {
    float *data;
    int64_t h, w;
} host_tile;

typedef struct tiler {
    const vae_tile_geometry *g;
    backend *be;
    arena *a;
    const tensor *x;
    tensor *y;
    vae_tile_fn fn;
    void *ctx;
    bool host; /* false on a planning pass: shapes only, no data */
    int64_t n, cin, cout, cols;
    float *x_host;     /* x: [N, H, W, Cin] */
    float *tile_in;    /* one tile's input: [N, T, T, Cin] */
    host_tile *above;  /* cols: the previous tile row, blended */
    host_tile *row;    /* cols: the current tile row */
    float *band;       /* [row_limit, W_out, Cout]: one image's kept rows of a tile row */
} tiler;

/* Copies x[:, top:top+th, left:left+tw, :] into t->tile_in as [N, th, tw, Cin]. */
static void cut_window(const tiler *t, int64_t top, int64_t left, int64_t th, int64_t tw)
{
    int64_t h = t->x->shape[1], w = t->x->shape[2], c = t->cin;
    float *dst = t->tile_in;
    for (int64_t img = 0; img < t->n; img++)
        for (int64_t r = 0; r < th; r++) {
            const float *src = t->x_host + ((img * h + top + r) * w + left) * c;
            memcpy(dst, src, (size_t)(tw * c) * sizeof *dst);
            dst += tw * c;
        }
}

static sdxl_status run_tile_in_arena(tiler *t, int64_t top, int64_t left, host_tile *out,
                                     sdxl_error *err)
{
    const vae_tile_geometry *g = t->g;
    int64_t th = min64(g->tile, t->x->shape[1] - top), tw = min64(g->tile, t->x->shape[2] - left);
    int64_t oh = th * g->up / g->down, ow = tw * g->up / g->down;
    tensor in, o;
    SDXL_TRY(tensor_alloc(&in, t->a, t->x->type, 4, (int64_t[]){t->n, th, tw, t->cin}, err));
    if (t->host) {
        cut_window(t, top, left, th, tw);
        SDXL_TRY(backend_tensor_write(t->be, &in, DTYPE_F32, t->tile_in, (size_t)tensor_numel(&in),
                                      err));
    }
    SDXL_TRY(tensor_alloc(&o, t->a, t->y->type, 4, (int64_t[]){t->n, oh, ow, t->cout}, err));
    SDXL_TRY(t->fn(t->ctx, t->be, t->a, &in, &o, err));
    out->h = oh;
    out->w = ow;
    if (!t->host)
        return SDXL_OK;
    out->data = malloc((size_t)tensor_numel(&o) * sizeof *out->data);
    if (!out->data)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "vae tiling: out of memory for a %lldx%lld "
                         "tile", (long long)oh, (long long)ow);
    return backend_tensor_read(t->be, &o, DTYPE_F32, out->data, (size_t)tensor_numel(&o), err);
}

static sdxl_status run_tile(tiler *t, int64_t top, int64_t left, host_tile *out, sdxl_error *err)
{
    arena_mark mark = arena_get_mark(t->a);
    sdxl_status st = run_tile_in_arena(t, top, left, out, err);
    arena_reset_to(t->a, mark);
    return st;
}

/* The weights diffusers gives row/column k of an overlap of e: tensor · python float rounds
 * the float (1 − k/e, k/e, computed in double) to float32, then multiplies in float32. */
static void blend_weights(int64_t k, int64_t e, float *wa, float *wb)
{
    *wa = (float)(1.0 - (double)k / (double)e);
    *wb = (float)((double)k / (double)e);
}

/* blend_v: b's first rows fade in from a's last rows (a is the tile above b). */
static void blend_v(const host_tile *a, host_tile *b, int64_t extent, int64_t n, int64_t c)
{
    int64_t e = min64(min64(a->h, b->h), extent), row = b->w * c;
    for (int64_t img = 0; img < n; img++)
        for (int64_t k = 0; k < e; k++) {
            float wa, wb;
            blend_weights(k, e, &wa, &wb);
            const float *ra = a->data + (img * a->h + a->h - e + k) * row;
            float *rb = b->data + (img * b->h + k) * row;
            for (int64_t i = 0; i < row; i++)
                rb[i] = ra[i] * wa + rb[i] * wb;
        }
}

/* blend_h: b's first columns fade in from a's last columns (a is the tile left of b). */
static void blend_h(const host_tile *a, host_tile *b, int64_t extent, int64_t n, int64_t c)
{
    int64_t e = min64(min64(a->w, b->w), extent);
    for (int64_t img = 0; img < n; img++)
        for (int64_t r = 0; r < b->h; r++)
            for (int64_t k = 0; k < e; k++) {
                float wa, wb;
                blend_weights(k, e, &wa, &wb);
                const float *pa = a->data + ((img * a->h + r) * a->w + a->w - e + k) * c;
                float *pb = b->data + ((img * b->h + r) * b->w + k) * c;
                for (int64_t i = 0; i < c; i++)
                    pb[i] = pa[i] * wa + pb[i] * wb;
            }
}

/* Writes the kept top-left corners of the current tile row into y's rows out_top.. . */
static sdxl_status emit_band(tiler *t, int64_t out_top, int64_t kept_h, sdxl_error *err)
{
    int64_t out_h = t->y->shape[1], out_w = t->y->shape[2], c = t->cout;
    for (int64_t img = 0; img < t->n; img++) {
        int64_t col = 0;
        for (int64_t j = 0; j < t->cols; j++) {
            const host_tile *tile = &t->row[j];
            int64_t kept_w = min64(t->g->row_limit, tile->w);
            for (int64_t r = 0; r < kept_h; r++)
                memcpy(t->band + (r * out_w + col) * c,
                       tile->data + ((img * tile->h + r) * tile->w) * c,
                       (size_t)(kept_w * c) * sizeof *t->band);
            col += kept_w;
        }
        tensor image, rows;
        SDXL_TRY(tensor_view_outer(&image, t->y, img, 1, err));
        SDXL_TRY(tensor_reshape(&image, &image, 3, (int64_t[]){out_h, out_w, c}, err));
        SDXL_TRY(tensor_view_outer(&rows, &image, out_top, kept_h, err));
        SDXL_TRY(backend_tensor_write(t->be, &rows, DTYPE_F32, t->band,
                                      (size_t)(kept_h * out_w * c), err));
    }
    return SDXL_OK;
}

static void free_row(host_tile *row, int64_t cols)
{
    for (int64_t j = 0; j < cols; j++) {
        free(row[j].data);
        row[j].data = NULL;
    }
}

static sdxl_status run_rows(tiler *t, sdxl_error *err)
{
    const vae_tile_geometry *g = t->g;
    int64_t h = t->x->shape[1], out_top = 0;
    for (int64_t top = 0, i = 0; top < h; top += g->step, i++) {
        for (int64_t j = 0; j < t->cols; j++)
            SDXL_TRY(run_tile(t, top, j * g->step, &t->row[j], err));
        if (!t->host)
            continue;
        for (int64_t j = 0; j < t->cols; j++) {
            if (i > 0)
                blend_v(&t->above[j], &t->row[j], g->blend, t->n, t->cout);
            if (j > 0)
                blend_h(&t->row[j - 1], &t->row[j], g->blend, t->n, t->cout);
        }
        int64_t kept_h = min64(g->row_limit, t->row[0].h);
        SDXL_TRY(emit_band(t, out_top, kept_h, err));
        out_top += kept_h;
        host_tile *done = t->above;
        free_row(done, t->cols);
        t->above = t->row;
        t->row = done;
    }
    return SDXL_OK;
}

static sdxl_status alloc_host(tiler *t, sdxl_error *err)
{
    const vae_tile_geometry *g = t->g;
    size_t x_numel = (size_t)tensor_numel(t->x);
    size_t tile_numel = (size_t)(t->n * g->tile * g->tile * t->cin);
    size_t band_numel = (size_t)(g->row_limit * t->y->shape[2] * t->cout);
    t->above = calloc((size_t)t->cols, sizeof *t->above);
    t->row = calloc((size_t)t->cols, sizeof *t->row);
    if (!t->host)
        return t->above && t->row ? SDXL_OK
                                  : error_set(err, SDXL_ERR_OUT_OF_MEMORY,
                                              "vae tiling: out of memory for %lld tiles",
                                              (long long)t->cols);
    t->x_host = malloc(x_numel * sizeof *t->x_host);
    t->tile_in = malloc(tile_numel * sizeof *t->tile_in);
    t->band = malloc(band_numel * sizeof *t->band);
    if (!t->above || !t->row || !t->x_host || !t->tile_in || !t->band)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY,
                         "vae tiling: out of memory for the host copies of a %lldx%lld input",
                         (long long)t->x->shape[1], (long long)t->x->shape[2]);
    return backend_tensor_read(t->be, t->x, DTYPE_F32, t->x_host, x_numel, err);
}

static sdxl_status check_sizes(const vae_tile_geometry *g, const tensor *x, const tensor *y,
                               sdxl_error *err)
{
    char xs[96], ys[96];
    if (x->ndim != 4 || y->ndim != 4 || x->shape[0] != y->shape[0])
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "vae tiling: x %s and y %s must be [N, H, W, C] with the same N",
                         tensor_shape_str(x, xs, sizeof xs), tensor_shape_str(y, ys, sizeof ys));
    bool exact = true;
    int64_t out_h = assembled_side(g, x->shape[1], &exact);
    int64_t out_w = assembled_side(g, x->shape[2], &exact);
    if (!exact || out_h != y->shape[1] || out_w != y->shape[2])
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "vae tiling: tiles of %lld with a step of %lld over x %s do not "
                         "assemble into y %s; use a tile_sample_size that is a multiple of 4 "
                         "times the VAE's scale and tile_latent_size = tile_sample_size / scale",
                         (long long)g->tile, (long long)g->step,
                         tensor_shape_str(x, xs, sizeof xs), tensor_shape_str(y, ys, sizeof ys));
    return SDXL_OK;
}

sdxl_status vae_tiled_run(const vae_tile_geometry *g, backend *be, arena *a, const tensor *x,
                          tensor *y, vae_tile_fn fn, void *ctx, sdxl_error *err)
{
    SDXL_TRY(check_sizes(g, x, y, err));
    tiler t = {
        .g = g, .be = be, .a = a, .x = x, .y = y, .fn = fn, .ctx = ctx,
        .host = x->data != NULL && y->data != NULL,
        .n = x->shape[0], .cin = x->shape[3], .cout = y->shape[3],
        .cols = (x->shape[2] + g->step - 1) / g->step,
    };
    sdxl_status st = alloc_host(&t, err);
    if (st == SDXL_OK)
        st = run_rows(&t, err);
    if (t.above)
        free_row(t.above, t.cols);
    if (t.row)
        free_row(t.row, t.cols);
    free(t.above);
    free(t.row);
    free(t.x_host);
    free(t.tile_in);
    free(t.band);
    return st;
}
