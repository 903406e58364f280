// needs: model_tiny-a model_tiny-b
/*
 * test_vae.c — the VAE (vae.h) against diffusers 0.31's AutoencoderKL on the tiny models.
 *
 * Encoder mean and logvar, decoder output (vae_<model>.safetensors), tiled encode and decode
 * with small tiles and two overlap factors (vae_tiled_tiny-a.safetensors), and the posterior
 * sample of the img2img pipeline (pipeline_tiny-a: image_latents = scaling_factor · (mean +
 * exp(0.5 logvar) · ε), ε the first draw of the seed's generator), all within relative L2 1e-4
 * (fp32 CPU; tests/golden/data/README.md). Goldens are NCHW, sdxld is NHWC: the test
 * transposes. Then properties: an input that fits one tile is not tiled; a batch gives each
 * image its bits alone; the planned memory is exactly what a call needs; and the refusals of
 * bad sizes, bad tiling knobs and weights that do not match the config.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/rng.h"
#include "engine/vae.h"
#include "engine/vae_tensors.h"
#include "io/safetensors.h"
#include "support/backend_test.h"
#include "support/golden.h"
#include "support/paths.h"
#include "support/remove_tree.h"

#define REL_L2 1e-4

static vae *load_or_fail(backend *be, const char *model)
{
    char dir[4096];
    test_model_dir(model, dir, sizeof dir);
    vae *v = NULL;
    sdxl_error err;
    GOLDEN_ASSERT_OK(vae_load(dir, be, &v, NULL, &err), err);
    return v;
}

/* [n, c, h, w] -> [n, h, w, c], a new array. */
static float *to_nhwc(const float *src, int64_t n, int64_t c, int64_t h, int64_t w)
{
    float *dst = malloc(sizeof(float) * (size_t)(n * c * h * w));
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < c; k++)
            for (int64_t y = 0; y < h; y++)
                for (int64_t x = 0; x < w; x++)
                    dst[((i * h + y) * w + x) * c + k] = src[((i * c + k) * h + y) * w + x];
    return dst;
}

/* Golden NAME, an NCHW tensor, as NHWC; its shape in *s. */
static float *golden_nhwc(const golden *g, const char *name, golden_shape *s)
{
    float *nchw;
    sdxl_error err;
    GOLDEN_ASSERT_OK(golden_get(g, name, s, &nchw, &err), err);
    assert_int_equal(s->ndim, 4);
    float *nhwc = to_nhwc(nchw, s->dims[0], s->dims[1], s->dims[2], s->dims[3]);
    free(nchw);
    return nhwc;
}

static tensor make(arena *a, int64_t n, int64_t h, int64_t w, int64_t c)
{
    tensor t;
    sdxl_error err;
    GOLDEN_ASSERT_OK(tensor_alloc(&t, a, DTYPE_F32, 4, (int64_t[]){n, h, w, c}, &err), err);
    return t;
}

static void upload(backend *be, tensor *t, const float *host)
{
    sdxl_error err;
    GOLDEN_ASSERT_OK(backend_tensor_write(be, t, DTYPE_F32, host, (size_t)tensor_numel(t), &err),
                     err);
}

/* An arena holding `tensors` tensors of up to `numel` elements each and `extra` more bytes. */
static void arena_for(arena *a, int tensors, int64_t numel, size_t extra)
{
    size_t each = ((size_t)numel * sizeof(float) + TENSOR_ALIGN - 1) / TENSOR_ALIGN * TENSOR_ALIGN;
    bt_arena(a, (size_t)tensors * each + extra);
}

/* mean and logvar [n, h/f, w/f, C] (NHWC, malloc'd) of vae_encode on picture [n, h, w, 3]. */
static void encode(vae *v, backend *be, const vae_tiling *tiling, const float *picture, int64_t n,
                   int64_t h, int64_t w, float **mean, float **logvar)
{
    int64_t f = vae_scale(v), c = vae_latent_channels(v);
    size_t bytes;
    sdxl_error err;
    GOLDEN_ASSERT_OK(vae_plan_encode(v, be, tiling, n, h, w, &bytes, &err), err);
    arena a;
    arena_for(&a, 3, n * h * w * 3, bytes);
    tensor x = make(&a, n, h, w, 3);
    tensor m = bt_output(be, &a, 4, (int64_t[]){n, h / f, w / f, c});
    tensor lv = bt_output(be, &a, 4, (int64_t[]){n, h / f, w / f, c});
    upload(be, &x, picture);
    size_t used = a.used;
    GOLDEN_ASSERT_OK(vae_encode(v, be, &a, tiling, &x, &m, &lv, &err), err);
    assert_int_equal(a.used, used);
    *mean = bt_read(be, &m);
    *logvar = bt_read(be, &lv);
    arena_free(&a);
}

/* The image [n, f·h, f·w, 3] (NHWC, malloc'd) of vae_decode on latents [n, h, w, C]. */
static float *decode(vae *v, backend *be, const vae_tiling *tiling, const float *latents,
                     int64_t n, int64_t h, int64_t w)
{
    int64_t f = vae_scale(v), c = vae_latent_channels(v);
    size_t bytes;
    sdxl_error err;
    GOLDEN_ASSERT_OK(vae_plan_decode(v, be, tiling, n, h, w, &bytes, &err), err);
    arena a;
    arena_for(&a, 2, n * f * h * f * w * 3, bytes);
    tensor z = make(&a, n, h, w, c);
    tensor y = bt_output(be, &a, 4, (int64_t[]){n, f * h, f * w, 3});
    upload(be, &z, latents);
    size_t used = a.used;
    GOLDEN_ASSERT_OK(vae_decode(v, be, &a, tiling, &z, &y, &err), err);
    assert_int_equal(a.used, used);
    float *out = bt_read(be, &y);
    arena_free(&a);
    return out;
}

/* Compares NHWC got with golden NAME (NCHW) within REL_L2. */
static void expect_close(const golden *g, const char *name, const float *got, const char *label)
{
    golden_shape s;
    float *want = golden_nhwc(g, name, &s);
    GOLDEN_ASSERT_CLOSE(label, got, want, s.numel, INFINITY, REL_L2);
    free(want);
}

static void check_model(const char *model)
{
    backend *be = bt_backend("cpu", 2);
    vae *v = load_or_fail(be, model);
    char file[64], name[64], label[128];
    snprintf(file, sizeof file, "vae_%s.safetensors", model);
    golden g;
    sdxl_error err;
    GOLDEN_ASSERT_OK(golden_open(&g, file, &err), err);
    static const int enc_sizes[][2] = {{64, 64}, {64, 96}};
    for (int i = 0; i < 2; i++) {
        int64_t h = enc_sizes[i][0], w = enc_sizes[i][1];
        golden_shape s;
        snprintf(name, sizeof name, "enc_%lldx%lld.image", (long long)h, (long long)w);
        float *picture = golden_nhwc(&g, name, &s);
        float *mean, *logvar;
        encode(v, be, NULL, picture, 1, h, w, &mean, &logvar);
        snprintf(name, sizeof name, "enc_%lldx%lld.mean", (long long)h, (long long)w);
        snprintf(label, sizeof label, "%s %s", model, name);
        expect_close(&g, name, mean, label);
        snprintf(name, sizeof name, "enc_%lldx%lld.logvar", (long long)h, (long long)w);
        snprintf(label, sizeof label, "%s %s", model, name);
        expect_close(&g, name, logvar, label);
        free(picture);
        free(mean);
        free(logvar);
    }
    static const int dec_sizes[][2] = {{8, 8}, {8, 12}};
    for (int i = 0; i < 2; i++) {
        int64_t h = dec_sizes[i][0], w = dec_sizes[i][1];
        golden_shape s;
        snprintf(name, sizeof name, "dec_%lldx%lld.latents", (long long)h, (long long)w);
        float *latents = golden_nhwc(&g, name, &s);
        float *out = decode(v, be, NULL, latents, 1, h, w);
        snprintf(name, sizeof name, "dec_%lldx%lld.out", (long long)h, (long long)w);
        snprintf(label, sizeof label, "%s %s", model, name);
        expect_close(&g, name, out, label);
        free(latents);
        free(out);
    }
    golden_close(&g);
    vae_free(v);
    backend_destroy(be);
}

static void golden_tiny_a(void **state)
{
    (void)state;
    check_model("tiny-a");
}

static void golden_tiny_b(void **state)
{
    (void)state;
    check_model("tiny-b");
}

/* The knobs stored beside case NAME of vae_tiled_tiny-a, tiling on. */
static vae_tiling golden_knobs(const golden *g, const char *name)
{
    char key[64];
    golden_shape s;
    int64_t *sample, *latent;
    double *overlap;
    sdxl_error err;
    snprintf(key, sizeof key, "%s.tile_sample_size", name);
    GOLDEN_ASSERT_OK(golden_get_i64(g, key, &s, &sample, &err), err);
    snprintf(key, sizeof key, "%s.tile_latent_size", name);
    GOLDEN_ASSERT_OK(golden_get_i64(g, key, &s, &latent, &err), err);
    snprintf(key, sizeof key, "%s.overlap_factor", name);
    GOLDEN_ASSERT_OK(golden_get_f64(g, key, &s, &overlap, &err), err);
    vae_tiling t = {true, (int)sample[0], (int)latent[0], overlap[0]};
    free(sample);
    free(latent);
    free(overlap);
    return t;
}

/* Tiled encode (batch 2, 64×88 pixels, tiles of 32 with edge tiles of 16) and tiled decode
 * (overlap 0.25 and 0.5) equal diffusers' enable_tiling() results. */
static void tiled_matches_diffusers(void **state)
{
    (void)state;
    backend *be = bt_backend("cpu", 2);
    vae *v = load_or_fail(be, "tiny-a");
    golden g;
    sdxl_error err;
    GOLDEN_ASSERT_OK(golden_open(&g, "vae_tiled_tiny-a.safetensors", &err), err);
    golden_shape s;
    vae_tiling tiling = golden_knobs(&g, "enc");
    float *picture = golden_nhwc(&g, "enc.image", &s);
    float *mean, *logvar;
    encode(v, be, &tiling, picture, s.dims[0], s.dims[2], s.dims[3], &mean, &logvar);
    expect_close(&g, "enc.mean", mean, "tiled enc.mean");
    expect_close(&g, "enc.logvar", logvar, "tiled enc.logvar");
    free(picture);
    free(mean);
    free(logvar);
    static const char *const cases[] = {"dec", "dec_overlap50"};
    for (int i = 0; i < 2; i++) {
        char name[64];
        tiling = golden_knobs(&g, cases[i]);
        snprintf(name, sizeof name, "%s.latents", cases[i]);
        float *latents = golden_nhwc(&g, name, &s);
        float *out = decode(v, be, &tiling, latents, s.dims[0], s.dims[2], s.dims[3]);
        snprintf(name, sizeof name, "%s.out", cases[i]);
        expect_close(&g, name, out, name);
        free(latents);
        free(out);
    }
    golden_close(&g);
    vae_free(v);
    backend_destroy(be);
}

/* img2img's image_latents for i2i_a (seed 0, 64×64): the pipeline's preprocessing of the input
 * pixels, vae_encode, vae_sample with the first [1, C, h, w] draw of the seed's generator,
 * × scaling_factor. */
static void posterior_sample_matches_pipeline(void **state)
{
    (void)state;
    backend *be = bt_backend("cpu", 2);
    vae *v = load_or_fail(be, "tiny-a");
    golden g;
    sdxl_error err;
    GOLDEN_ASSERT_OK(golden_open(&g, "pipeline_tiny-a.safetensors", &err), err);
    golden_shape ps, ss;
    float *pixels;
    int64_t *seeds;
    GOLDEN_ASSERT_OK(golden_get(&g, "i2i_a.input_pixels", &ps, &pixels, &err), err);
    GOLDEN_ASSERT_OK(golden_get_i64(&g, "i2i_a.seeds", &ss, &seeds, &err), err);
    int64_t h = ps.dims[0], w = ps.dims[1], f = vae_scale(v), c = vae_latent_channels(v);
    uint8_t *bytes = malloc(ps.numel);
    for (size_t i = 0; i < ps.numel; i++)
        bytes[i] = (uint8_t)pixels[i];
    float *picture = malloc(sizeof(float) * ps.numel);
    bt_normalize_pixels(be, bytes, ps.numel, picture);
    float *mean, *logvar;
    encode(v, be, NULL, picture, 1, h, w, &mean, &logvar);

    size_t n = (size_t)(c * (h / f) * (w / f));
    float *eps_nchw = malloc(sizeof(float) * n);
    rng_generator gen;
    rng_seed(&gen, (uint64_t)seeds[0]);
    rng_randn_f32(&gen, eps_nchw, n);
    float *eps = to_nhwc(eps_nchw, 1, c, h / f, w / f);
    arena a;
    arena_for(&a, 4, (int64_t)n, 0);
    tensor tm = make(&a, 1, h / f, w / f, c), tl = make(&a, 1, h / f, w / f, c);
    tensor te = make(&a, 1, h / f, w / f, c), out = bt_output(be, &a, 4, tm.shape);
    upload(be, &tm, mean);
    upload(be, &tl, logvar);
    upload(be, &te, eps);
    GOLDEN_ASSERT_OK(vae_sample(be, &tm, &tl, &te, &out, &err), err);
    float *sample = bt_read(be, &out);
    for (size_t i = 0; i < n; i++)
        sample[i] *= vae_scaling_factor(v);
    expect_close(&g, "i2i_a.image_latents", sample, "i2i_a.image_latents");

    free(sample);
    arena_free(&a);
    free(eps);
    free(eps_nchw);
    free(mean);
    free(logvar);
    free(picture);
    free(bytes);
    free(seeds);
    free(pixels);
    golden_close(&g);
    vae_free(v);
    backend_destroy(be);
}

/* vae_sample is mean + exp(0.5 · logvar) · noise element by element, in place on mean too. */
static void sample_is_mean_plus_scaled_noise(void **state)
{
    (void)state;
    backend *be = bt_backend("cpu", 2);
    const float mean[8] = {0.5f, -1.0f, 2.0f, 0.0f, 3.0f, -0.25f, 1e-3f, 7.0f};
    const float logvar[8] = {0.0f, -30.0f, 20.0f, 2.0f, -1.5f, 1.0f, -4.0f, 0.25f};
    const float noise[8] = {1.0f, -2.0f, 0.5f, -1.0f, 0.0f, 3.0f, -0.75f, 1.25f};
    arena a;
    arena_for(&a, 4, 8, 0);
    tensor tm = make(&a, 1, 2, 1, 4), tl = make(&a, 1, 2, 1, 4), tn = make(&a, 1, 2, 1, 4);
    upload(be, &tm, mean);
    upload(be, &tl, logvar);
    upload(be, &tn, noise);
    sdxl_error err;
    GOLDEN_ASSERT_OK(vae_sample(be, &tm, &tl, &tn, &tm, &err), err);
    float *got = bt_read(be, &tm);
    for (int i = 0; i < 8; i++) {
        double want = mean[i] + exp(0.5 * logvar[i]) * noise[i];
        assert_true(fabs(got[i] - want) <= 1e-6 * fmax(1.0, fabs(want)));
    }
    free(got);
    tensor wrong = make(&a, 1, 1, 2, 4);
    assert_int_equal(vae_sample(be, &tm, &tl, &wrong, &tm, &err), SDXL_ERR_INVALID_ARGUMENT);
    arena_free(&a);
    backend_destroy(be);
}

/* With tiling on and an input no larger than a tile, the result is the untiled one, bit for
 * bit; with smaller tiles it is not (tiling happened). */
static void input_within_one_tile_is_not_tiled(void **state)
{
    (void)state;
    backend *be = bt_backend("cpu", 2);
    vae *v = load_or_fail(be, "tiny-b");
    golden g;
    sdxl_error err;
    GOLDEN_ASSERT_OK(golden_open(&g, "vae_tiny-b.safetensors", &err), err);
    golden_shape s;
    float *latents = golden_nhwc(&g, "dec_8x8.latents", &s);
    size_t n = (size_t)(8 * vae_scale(v) * 8 * vae_scale(v) * 3);
    vae_tiling tiling = vae_default_tiling(v);
    assert_false(tiling.enabled);
    assert_int_equal(tiling.tile_sample_size, 64);
    assert_int_equal(tiling.tile_latent_size, 8);
    float *plain = decode(v, be, NULL, latents, 1, 8, 8);
    tiling.enabled = true;
    float *fits = decode(v, be, &tiling, latents, 1, 8, 8);
    assert_memory_equal(plain, fits, n * sizeof(float));
    tiling.tile_sample_size = 32;
    tiling.tile_latent_size = 4;
    float *tiled = decode(v, be, &tiling, latents, 1, 8, 8);
    assert_memory_not_equal(plain, tiled, n * sizeof(float));
    free(plain);
    free(fits);
    free(tiled);
    free(latents);
    golden_close(&g);
    vae_free(v);
    backend_destroy(be);
}

/* Decoding two latents as a batch gives each image the bits it gets alone, tiled or not. */
static void batch_rows_equal_single_images(void **state)
{
    (void)state;
    backend *be = bt_backend("cpu", 2);
    vae *v = load_or_fail(be, "tiny-a");
    int64_t h = 8, w = 12, c = vae_latent_channels(v), f = vae_scale(v);
    size_t per_latent = (size_t)(h * w * c), per_image = (size_t)(f * h * f * w * 3);
    uint64_t rng = 7;
    float *latents = bt_random(&rng, 2 * per_latent, 4.0f);
    vae_tiling tiling = vae_default_tiling(v);
    tiling.tile_sample_size = 32;
    tiling.tile_latent_size = 4;
    for (int tiled = 0; tiled < 2; tiled++) {
        tiling.enabled = tiled;
        float *both = decode(v, be, &tiling, latents, 2, h, w);
        for (int i = 0; i < 2; i++) {
            float *one = decode(v, be, &tiling, latents + i * per_latent, 1, h, w);
            assert_memory_equal(one, both + i * per_image, per_image * sizeof(float));
            free(one);
        }
        free(both);
    }
    free(latents);
    vae_free(v);
    backend_destroy(be);
}

/* After the inputs and outputs, an arena with exactly the planned room (less the slack for an
 * unaligned start) runs the call; one alignment unit less is refused before the end. */
static void planned_memory_is_exact(void **state)
{
    (void)state;
    backend *be = bt_backend("cpu", 2);
    vae *v = load_or_fail(be, "tiny-a");
    int64_t h = 8, w = 12, c = vae_latent_channels(v), f = vae_scale(v);
    uint64_t rng = 3;
    float *latents = bt_random(&rng, (size_t)(h * w * c), 4.0f);
    vae_tiling tiling = vae_default_tiling(v);
    tiling.tile_sample_size = 32;
    tiling.tile_latent_size = 4;
    sdxl_error err;
    for (int tiled = 0; tiled < 2; tiled++) {
        tiling.enabled = tiled;
        size_t bytes;
        GOLDEN_ASSERT_OK(vae_plan_decode(v, be, &tiling, 1, h, w, &bytes, &err), err);
        for (int fits = 1; fits >= 0; fits--) {
            arena probe;
            arena_init_planning(&probe);
            make(&probe, 1, h, w, c);
            make(&probe, 1, f * h, f * w, 3);
            size_t io = probe.used;
            arena_free(&probe);
            arena a;
            bt_arena(&a, io + bytes - TENSOR_ALIGN - (size_t)(1 - fits) * TENSOR_ALIGN);
            tensor z = make(&a, 1, h, w, c), y = make(&a, 1, f * h, f * w, 3);
            upload(be, &z, latents);
            sdxl_status st = vae_decode(v, be, &a, &tiling, &z, &y, &err);
            assert_int_equal(st, fits ? SDXL_OK : SDXL_ERR_OUT_OF_MEMORY);
            assert_int_equal(a.used, io);
            arena_free(&a);
        }
    }
    /* One tile's worth: tiling a larger input needs no more than tiling a smaller one. */
    size_t small, large;
    tiling.enabled = true;
    GOLDEN_ASSERT_OK(vae_plan_decode(v, be, &tiling, 1, 8, 8, &small, &err), err);
    GOLDEN_ASSERT_OK(vae_plan_decode(v, be, &tiling, 1, 40, 40, &large, &err), err);
    assert_int_equal(small, large);
    free(latents);
    vae_free(v);
    backend_destroy(be);
}

/* Sizes and knobs that cannot run are refused up front with SDXL_ERR_INVALID_ARGUMENT. */
static void bad_sizes_and_knobs_are_refused(void **state)
{
    (void)state;
    backend *be = bt_backend("cpu", 2);
    vae *v = load_or_fail(be, "tiny-a");
    size_t bytes;
    sdxl_error err;
    assert_int_equal(vae_plan_encode(v, be, NULL, 1, 60, 64, &bytes, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "multiples of 8"));
    assert_int_equal(vae_plan_encode(v, be, NULL, 0, 64, 64, &bytes, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    vae_tiling tiling = vae_default_tiling(v);
    tiling.enabled = true;
    /* A 36-pixel tile puts tile starts 27 pixels apart: not whole latent pixels. */
    tiling.tile_sample_size = 36;
    tiling.tile_latent_size = 4;
    assert_int_equal(vae_plan_encode(v, be, &tiling, 1, 64, 96, &bytes, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "tile_sample_size"));
    /* step 3 latent pixels, 40 image pixels kept per tile: the tiles would not fit the image. */
    tiling.tile_sample_size = 48;
    assert_int_equal(vae_plan_decode(v, be, &tiling, 1, 8, 12, &bytes, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    tiling.tile_sample_size = 32;
    tiling.overlap_factor = 1.0;
    assert_int_equal(vae_plan_decode(v, be, &tiling, 1, 8, 12, &bytes, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    tiling.overlap_factor = 0.25;
    tiling.tile_latent_size = 1; /* step int(0.75) = 0 */
    assert_int_equal(vae_plan_decode(v, be, &tiling, 1, 8, 12, &bytes, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "no step"));
    vae_free(v);
    backend_destroy(be);
}

/* Copies MODEL's vae weights into dst_dir/vae (with its config), leaving out tensor `skip`
 * (-1: none), reshaping tensor `reshape` to [1, numel] (-1: none), and adding an unexpected
 * tensor when `extra`. */
static void write_edited_vae(const char *model, const char *dst_dir, long skip, long reshape,
                             bool extra)
{
    char src[4096], path[8192];
    test_model_dir(model, src, sizeof src);
    snprintf(path, sizeof path, "%s/vae", dst_dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/vae/config.json", src);
    FILE *in = fopen(path, "rb");
    assert_non_null(in);
    char text[8192];
    size_t len = fread(text, 1, sizeof text, in);
    fclose(in);
    snprintf(path, sizeof path, "%s/vae/config.json", dst_dir);
    FILE *out = fopen(path, "wb");
    assert_non_null(out);
    assert_int_equal(fwrite(text, 1, len, out), len);
    fclose(out);

    snprintf(path, sizeof path, "%s/vae/diffusion_pytorch_model.safetensors", src);
    safetensors_file f;
    sdxl_error err;
    GOLDEN_ASSERT_OK(safetensors_open(&f, path, &err), err);
    st_tensor_info *infos = calloc(f.n_tensors + 1, sizeof *infos);
    const void **data = calloc(f.n_tensors + 1, sizeof *data);
    size_t n = 0;
    for (size_t i = 0; i < f.n_tensors; i++) {
        if ((long)i == skip)
            continue;
        const st_tensor *t = &f.tensors[i];
        infos[n] = (st_tensor_info){.name = t->name, .type = t->type, .ndim = t->ndim};
        memcpy(infos[n].shape, t->shape, sizeof t->shape);
        if ((long)i == reshape)
            infos[n] = (st_tensor_info){t->name, t->type, 2, {1, (int64_t)t->numel}};
        data[n++] = t->data;
    }
    static const float one = 1.0f;
    if (extra) {
        infos[n] = (st_tensor_info){"encoder.unexpected.weight", DTYPE_F32, 1, {1}};
        data[n++] = &one;
    }
    snprintf(path, sizeof path, "%s/vae/diffusion_pytorch_model.safetensors", dst_dir);
    GOLDEN_ASSERT_OK(safetensors_write_file(path, infos, data, n, NULL, &err), err);
    free(infos);
    free(data);
    safetensors_close(&f);
}

static sdxl_status try_load(backend *be, const char *dir, sdxl_error *err)
{
    vae *v = (vae *)1;
    sdxl_status st = vae_load(dir, be, &v, NULL, err);
    if (st != SDXL_OK)
        assert_null(v);
    vae_free(v);
    return st;
}

/* A file missing a tensor, holding it in another shape, or holding one more is refused, naming
 * the tensor; the same file unedited loads. */
static void weights_that_do_not_match_are_refused(void **state)
{
    (void)state;
    backend *be = bt_backend("cpu", 2);
    char src[4096], path[8192];
    test_model_dir("tiny-a", src, sizeof src);
    snprintf(path, sizeof path, "%s/vae/diffusion_pytorch_model.safetensors", src);
    safetensors_file f;
    sdxl_error err;
    GOLDEN_ASSERT_OK(safetensors_open(&f, path, &err), err);
    /* One tensor of each kind the loader asks for: a resnet's, the attention's, a sampler's. */
    static const char *const probes[] = {
        "decoder.up_blocks.2.resnets.0.conv_shortcut.weight",
        "encoder.mid_block.attentions.0.to_v.bias",
        "encoder.down_blocks.0.downsamplers.0.conv.weight",
        "post_quant_conv.weight",
    };
    for (size_t p = 0; p < sizeof probes / sizeof probes[0]; p++) {
        const st_tensor *t = safetensors_find(&f, probes[p]);
        assert_non_null(t);
        long index = (long)(t - f.tensors);
        for (int mode = 0; mode < 2; mode++) {
            char dir[4096];
            assert_int_equal(test_make_temp_dir(dir, sizeof dir), SDXL_OK);
            write_edited_vae("tiny-a", dir, mode == 0 ? index : -1, mode == 1 ? index : -1,
                             false);
            sdxl_status st = try_load(be, dir, &err);
            assert_int_not_equal(st, SDXL_OK);
            if (!strstr(err.message, probes[p]))
                fail_msg("refusal of %s does not name it: %s", probes[p], err.message);
            assert_int_equal(test_remove_tree(dir), 0);
        }
    }
    char dir[4096];
    assert_int_equal(test_make_temp_dir(dir, sizeof dir), SDXL_OK);
    write_edited_vae("tiny-a", dir, -1, -1, true);
    assert_int_not_equal(try_load(be, dir, &err), SDXL_OK);
    assert_non_null(strstr(err.message, "encoder.unexpected.weight"));
    assert_int_equal(test_remove_tree(dir), 0);
    /* The unedited copy loads: the refusals above come from the edits. */
    assert_int_equal(test_make_temp_dir(dir, sizeof dir), SDXL_OK);
    write_edited_vae("tiny-a", dir, -1, -1, false);
    GOLDEN_ASSERT_OK(try_load(be, dir, &err), err);
    assert_int_equal(test_remove_tree(dir), 0);
    safetensors_close(&f);
    backend_destroy(be);
}

/* Counts the tensors vae_tensors lists for a config. */
static sdxl_status count_tensor(void *ctx, const model_tensor *t, sdxl_error *err)
{
    (void)t;
    (void)err;
    ++*(size_t *)ctx;
    return SDXL_OK;
}

/* vae_tensors (what mkmodel writes) and the loader agree: the tiny files hold exactly the
 * listed tensors, and loading them used every one (weights_finish). */
static void loader_reads_exactly_the_listed_tensors(void **state)
{
    (void)state;
    backend *be = bt_backend("cpu", 2);
    static const char *const models[] = {"tiny-a", "tiny-b"};
    for (int m = 0; m < 2; m++) {
        vae *v = load_or_fail(be, models[m]);
        size_t listed = 0;
        sdxl_error err;
        GOLDEN_ASSERT_OK(vae_tensors_for_each(&v->cfg, count_tensor, &listed, &err), err);
        char src[4096], path[8192];
        test_model_dir(models[m], src, sizeof src);
        snprintf(path, sizeof path, "%s/vae/diffusion_pytorch_model.safetensors", src);
        safetensors_file f;
        GOLDEN_ASSERT_OK(safetensors_open(&f, path, &err), err);
        assert_int_equal(f.n_tensors, listed);
        safetensors_close(&f);
        vae_free(v);
    }
    backend_destroy(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(golden_tiny_a),
        cmocka_unit_test(golden_tiny_b),
        cmocka_unit_test(tiled_matches_diffusers),
        cmocka_unit_test(posterior_sample_matches_pipeline),
        cmocka_unit_test(sample_is_mean_plus_scaled_noise),
        cmocka_unit_test(input_within_one_tile_is_not_tiled),
        cmocka_unit_test(batch_rows_equal_single_images),
        cmocka_unit_test(planned_memory_is_exact),
        cmocka_unit_test(bad_sizes_and_knobs_are_refused),
        cmocka_unit_test(weights_that_do_not_match_are_refused),
        cmocka_unit_test(loader_reads_exactly_the_listed_tensors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
