/*
 * vae.c — the VAE model (see vae.h): loading, planning, and the encode / sample / decode calls,
 * following diffusers' AutoencoderKL._encode, _decode and DiagonalGaussianDistribution.
 */
#include "engine/vae.h"

#include <stdio.h>
#include <stdlib.h>

/* DiagonalGaussianDistribution's clamp of the log-variance. */
#define VAE_LOGVAR_MIN -30.0f
#define VAE_LOGVAR_MAX 20.0f

static const conv2d_params pointwise = {1, 0, 0, 0, 0};

static sdxl_status load_weights(vae *v, weights *w, sdxl_error *err)
{
    int64_t latent = v->cfg.latent_channels;
    SDXL_TRY(vae_encoder_load(w, &v->cfg, &v->encoder, err));
    SDXL_TRY(vae_decoder_load(w, &v->cfg, &v->decoder, err));
    SDXL_TRY(weights_load_conv(w, 2 * latent, 2 * latent, 1, &v->quant_w, &v->quant_b, err,
                               "quant_conv"));
    SDXL_TRY(weights_load_conv(w, latent, latent, 1, &v->post_quant_w, &v->post_quant_b, err,
                               "post_quant_conv"));
    return weights_finish(w, err);
}

sdxl_status vae_load(const char *model_dir, backend *be, vae **out, weights_progress *progress,
                     sdxl_error *err)
{
    *out = NULL;
    vae *v = calloc(1, sizeof *v);
    if (!v)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "vae: out of memory");
    v->be = be;
    char dir[4096];
    sdxl_status st = SDXL_OK;
    if (snprintf(dir, sizeof dir, "%s/vae", model_dir) >= (int)sizeof dir)
        st = error_set(err, SDXL_ERR_INVALID_ARGUMENT, "model directory path too long: %s",
                       model_dir);
    if (st == SDXL_OK)
        st = vae_config_load(dir, &v->cfg, err);
    if (st == SDXL_OK) {
        weights w;
        st = weights_open(&w, model_dir, "vae", "diffusion_pytorch_model", be, progress, err);
        if (st == SDXL_OK) {
            st = load_weights(v, &w, err);
            weights_close(&w);
        }
    }
    if (st != SDXL_OK) {
        vae_free(v);
        return st;
    }
    *out = v;
    return SDXL_OK;
}

void vae_free(vae *v)
{
    if (!v)
        return;
    vae_half_free(v->be, &v->encoder);
    vae_half_free(v->be, &v->decoder);
    backend_weight_free(v->be, &v->quant_w);
    backend_weight_free(v->be, &v->quant_b);
    backend_weight_free(v->be, &v->post_quant_w);
    backend_weight_free(v->be, &v->post_quant_b);
    free(v);
}

int vae_scale(const vae *v)
{
    return vae_config_scale(&v->cfg);
}

float vae_scaling_factor(const vae *v)
{
    return v->cfg.scaling_factor;
}

int vae_latent_channels(const vae *v)
{
    return v->cfg.latent_channels;
}

vae_tiling vae_default_tiling(const vae *v)
{
    /* diffusers: tile_latent_min_size = int(sample_size / 2^(levels - 1)). */
    return (vae_tiling){
        .enabled = false,
        .tile_sample_size = v->cfg.sample_size,
        .tile_latent_size = v->cfg.sample_size / vae_scale(v),
        .overlap_factor = 0.25,
    };
}

static bool is_shape(const tensor *t, int64_t n, int64_t h, int64_t w, int64_t c)
{
    return t->ndim == 4 && t->shape[0] == n && t->shape[1] == h && t->shape[2] == w &&
           t->shape[3] == c;
}

static sdxl_status check_image_size(const vae *v, int64_t batch, int64_t height, int64_t width,
                                    sdxl_error *err)
{
    int f = vae_scale(v);
    if (batch < 1 || height < f || width < f || height % f != 0 || width % f != 0)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "vae encode: a batch of %lld images of %lldx%lld pixels: the batch must "
                         "be at least 1 and both sides positive multiples of %d (resize the "
                         "image to a multiple of %d first)",
                         (long long)batch, (long long)height, (long long)width, f, f);
    return SDXL_OK;
}

/* One (tile of an) image -> moments [N, h, w, 2 latent]: quant_conv(encoder(x)). */
static sdxl_status encode_moments(void *ctx, backend *be, arena *a, const tensor *x, tensor *y,
                                  sdxl_error *err)
{
    const vae *v = ctx;
    arena_mark mark = arena_get_mark(a);
    tensor h;
    sdxl_status st = tensor_alloc_like(&h, a, y, err);
    if (st == SDXL_OK)
        st = vae_half_forward(&v->encoder, be, a, x, &h, err);
    if (st == SDXL_OK)
        st = backend_conv2d(be, &h, &v->quant_w, &v->quant_b, &pointwise, y, err);
    arena_reset_to(a, mark);
    return st;
}

static sdxl_status encode(const vae *v, backend *be, arena *a, const vae_tiling *tiling,
                          const tensor *image, tensor *mean, tensor *logvar, sdxl_error *err)
{
    tensor moments;
    SDXL_TRY(tensor_alloc(&moments, a, mean->type, 4,
                          (int64_t[]){mean->shape[0], mean->shape[1], mean->shape[2],
                                      2 * v->cfg.latent_channels},
                          err));
    vae_tile_geometry g;
    bool tiled;
    SDXL_TRY(vae_tiling_decide(tiling, vae_scale(v), false, image->shape[1], image->shape[2], &g,
                               &tiled, err));
    if (tiled)
        SDXL_TRY(vae_tiled_run(&g, be, a, image, &moments, encode_moments, (void *)v, err));
    else
        SDXL_TRY(encode_moments((void *)v, be, a, image, &moments, err));
    SDXL_TRY(backend_slice_channels(be, &moments, 0, mean, err));
    SDXL_TRY(backend_slice_channels(be, &moments, v->cfg.latent_channels, logvar, err));
    return backend_clamp(be, logvar, VAE_LOGVAR_MIN, VAE_LOGVAR_MAX, logvar, err);
}

sdxl_status vae_encode(const vae *v, backend *be, arena *a, const vae_tiling *tiling,
                       const tensor *image, tensor *mean, tensor *logvar, sdxl_error *err)
{
    int64_t n = image->shape[0], h = image->shape[1], w = image->shape[2];
    int f = vae_scale(v);
    if (image->ndim != 4 || image->shape[3] != v->cfg.in_channels) {
        char s[96];
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "vae encode: image %s must be [B, H, W, %d]",
                         tensor_shape_str(image, s, sizeof s), v->cfg.in_channels);
    }
    SDXL_TRY(check_image_size(v, n, h, w, err));
    int64_t lc = v->cfg.latent_channels;
    if (!is_shape(mean, n, h / f, w / f, lc) || !is_shape(logvar, n, h / f, w / f, lc)) {
        char ms[96], ls[96];
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "vae encode: mean %s and logvar %s must be [%lld, %lld, %lld, %lld]",
                         tensor_shape_str(mean, ms, sizeof ms),
                         tensor_shape_str(logvar, ls, sizeof ls), (long long)n,
                         (long long)(h / f), (long long)(w / f), (long long)lc);
    }
    arena_mark mark = arena_get_mark(a);
    sdxl_status st = encode(v, be, a, tiling, image, mean, logvar, err);
    arena_reset_to(a, mark);
    return st;
}

sdxl_status vae_sample(backend *be, const tensor *mean, const tensor *logvar, const tensor *noise,
                       tensor *out, sdxl_error *err)
{
    return backend_gaussian_sample(be, mean, logvar, noise, out, err);
}

/* latents (or a tile of them) -> image: decoder(post_quant_conv(z)). */
static sdxl_status decode_latents(void *ctx, backend *be, arena *a, const tensor *z, tensor *y,
                                  sdxl_error *err)
{
    const vae *v = ctx;
    arena_mark mark = arena_get_mark(a);
    tensor q;
    sdxl_status st = tensor_alloc_like(&q, a, z, err);
    if (st == SDXL_OK)
        st = backend_conv2d(be, z, &v->post_quant_w, &v->post_quant_b, &pointwise, &q, err);
    if (st == SDXL_OK)
        st = vae_half_forward(&v->decoder, be, a, &q, y, err);
    arena_reset_to(a, mark);
    return st;
}

sdxl_status vae_decode(const vae *v, backend *be, arena *a, const vae_tiling *tiling,
                       const tensor *latents, tensor *image, sdxl_error *err)
{
    int64_t n = latents->shape[0], h = latents->shape[1], w = latents->shape[2];
    int f = vae_scale(v);
    if (latents->ndim != 4 || n < 1 || latents->shape[3] != v->cfg.latent_channels ||
        !is_shape(image, n, f * h, f * w, v->cfg.out_channels)) {
        char ls[96], is[96];
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "vae decode: latents %s must be [B, h, w, %d] and image %s "
                         "[B, %d·h, %d·w, %d]",
                         tensor_shape_str(latents, ls, sizeof ls), v->cfg.latent_channels,
                         tensor_shape_str(image, is, sizeof is), f, f, v->cfg.out_channels);
    }
    vae_tile_geometry g;
    bool tiled;
    SDXL_TRY(vae_tiling_decide(tiling, f, true, h, w, &g, &tiled, err));
    if (tiled)
        return vae_tiled_run(&g, be, a, latents, image, decode_latents, (void *)v, err);
    return decode_latents((void *)v, be, a, latents, image, err);
}

/* Plans a call on a planning arena: inputs and outputs first, then the call; the bytes beyond
 * them, plus one alignment's slack for wherever the caller's arena stands. */
static sdxl_status plan(const vae *v, backend *be, const vae_tiling *tiling, bool decode,
                        int64_t batch, int64_t height, int64_t width, size_t *bytes,
                        sdxl_error *err)
{
    int f = vae_scale(v);
    int64_t lc = v->cfg.latent_channels;
    dtype type = backend_compute_type(be);
    if (!decode)
        SDXL_TRY(check_image_size(v, batch, height, width, err));
    arena p;
    arena_init_planning(&p);
    tensor in, out, logvar;
    sdxl_status st;
    if (decode) {
        st = tensor_alloc(&in, &p, type, 4, (int64_t[]){batch, height, width, lc}, err);
        if (st == SDXL_OK)
            st = tensor_alloc(&out, &p, type, 4,
                              (int64_t[]){batch, f * height, f * width, v->cfg.out_channels}, err);
    } else {
        const int64_t latent_shape[4] = {batch, height / f, width / f, lc};
        st = tensor_alloc(&in, &p, type, 4,
                          (int64_t[]){batch, height, width, v->cfg.in_channels}, err);
        if (st == SDXL_OK)
            st = tensor_alloc(&out, &p, type, 4, latent_shape, err);
        if (st == SDXL_OK)
            st = tensor_alloc(&logvar, &p, type, 4, latent_shape, err);
    }
    size_t base = arena_get_mark(&p);
    if (st == SDXL_OK)
        st = decode ? vae_decode(v, be, &p, tiling, &in, &out, err)
                    : vae_encode(v, be, &p, tiling, &in, &out, &logvar, err);
    if (st == SDXL_OK)
        *bytes = arena_peak(&p) - base + TENSOR_ALIGN;
    arena_free(&p);
    return st;
}

sdxl_status vae_plan_encode(const vae *v, backend *be, const vae_tiling *tiling, int64_t batch,
                            int64_t height, int64_t width, size_t *bytes, sdxl_error *err)
{
    return plan(v, be, tiling, false, batch, height, width, bytes, err);
}

sdxl_status vae_plan_decode(const vae *v, backend *be, const vae_tiling *tiling, int64_t batch,
                            int64_t height, int64_t width, size_t *bytes, sdxl_error *err)
{
    return plan(v, be, tiling, true, batch, height, width, bytes, err);
}
