/*
 * test_cuda_ops.c — every op of the cuda backend against the cpu backend, on random inputs at
 * SDXL's shapes, in each compute type (F32, F16, BF16); and the cuda backend's refusal when
 * there is no GPU.
 *
 * Inputs are drawn in f32, rounded to the compute type, and given to both backends, so what
 * differs is the cuda backend's arithmetic only. Outputs are poisoned with NaN first, so an
 * element an op does not write fails. The error is max |cuda - cpu| / max |cpu| over the
 * output (bt_rel_error), under a tolerance per type:
 *   F32   1e-4  fp32 in another order, CUDA's erf and exp: about 1e-6 expected
 *   F16   4e-3  outputs rounded to 11 bits (4.9e-4), probabilities too inside attention
 *   BF16  2e-2  outputs rounded to 8 bits (3.9e-3), probabilities too inside attention
 * A wrong index, a missed bias or a wrong variance is far above all three. Also checked: the
 * same bits on a second run; an image's bits alone and inside a batch.
 *
 * Without a GPU, or in a build without the cuda backend, every GPU test calls cmocka's skip()
 * after printing why, and the program exits with 77, which ctest reports as skipped
 * (SKIP_RETURN_CODE in tests/CMakeLists.txt), not as passed.
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

#include "backend/backend.h"
#include "base/log.h"
#include "support/backend_test.h"

#define EXIT_SKIPPED 77
#define ARENA_BYTES ((size_t)512 << 20)

/* Why the cuda backend cannot be created here; empty when it can. */
static char no_gpu[SDXL_ERROR_MESSAGE_MAX];

typedef struct fixture {
    dtype type;
    backend *cpu, *gpu;
    arena host, device;
    void *device_block;
    uint64_t rng;
} fixture;

/* The same tensor on both backends. */
typedef struct pair {
    tensor c, g;
} pair;

static void expect_ok(sdxl_status st, const sdxl_error *err)
{
    if (st != SDXL_OK)
        fail_msg("%s: %s", sdxl_status_name(st), err->message);
}

static double tolerance(dtype t)
{
    return t == DTYPE_F32 ? 1e-4 : t == DTYPE_F16 ? 4e-3 : 2e-2;
}

static int group_setup(void **state, dtype type)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->type = type;
    f->rng = 20240611u + (uint64_t)type;
    *state = f;
    if (no_gpu[0])
        return 0;
    sdxl_error err;
    backend_params p = backend_default_params();
    p.compute_type = type;
    expect_ok(backend_create("cuda", &p, &f->gpu, &err), &err);
    f->cpu = bt_backend("cpu", 0);
    bt_arena(&f->host, ARENA_BYTES);
    expect_ok(backend_buffer_alloc(f->gpu, ARENA_BYTES, &f->device_block, &err), &err);
    arena_init_borrowed(&f->device, f->device_block, ARENA_BYTES);
    return 0;
}

static int setup_f32(void **state)
{
    return group_setup(state, DTYPE_F32);
}

static int setup_f16(void **state)
{
    return group_setup(state, DTYPE_F16);
}

static int setup_bf16(void **state)
{
    return group_setup(state, DTYPE_BF16);
}

static int group_teardown(void **state)
{
    fixture *f = *state;
    if (f->gpu) {
        backend_buffer_free(f->gpu, f->device_block);
        backend_destroy(f->gpu);
        arena_free(&f->host);
        backend_destroy(f->cpu);
    }
    free(f);
    return 0;
}

/* The fixture, or a skipped test when there is no GPU (main says why, once). */
static fixture *need_gpu(void **state)
{
    if (no_gpu[0])
        skip();
    return *state;
}

static void round_to_type(dtype t, float *x, size_t n)
{
    if (t == DTYPE_F32)
        return;
    void *tmp = malloc(n * dtype_size(t));
    assert_non_null(tmp);
    dtype_from_f32(t, x, tmp, n);
    dtype_to_f32(t, tmp, x, n);
    free(tmp);
}

/* n random values in [-scale, scale), exactly representable in the compute type. */
static float *random_values(fixture *f, size_t n, float scale)
{
    float *x = bt_random(&f->rng, n, scale);
    round_to_type(f->type, x, n);
    return x;
}

static size_t numel_of(int ndim, const int64_t *shape)
{
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t)shape[i];
    return n;
}

static tensor gpu_tensor(fixture *f, int ndim, const int64_t *shape, const float *host)
{
    sdxl_error err;
    tensor t;
    expect_ok(tensor_alloc(&t, &f->device, f->type, ndim, shape, &err), &err);
    expect_ok(backend_tensor_write(f->gpu, &t, DTYPE_F32, host, numel_of(ndim, shape), &err), &err);
    return t;
}

static pair input(fixture *f, int ndim, const int64_t *shape, const float *host)
{
    pair p = {bt_input(f->cpu, &f->host, ndim, shape, host), gpu_tensor(f, ndim, shape, host)};
    return p;
}

static pair output(fixture *f, int ndim, const int64_t *shape)
{
    size_t n = numel_of(ndim, shape);
    float *nan = malloc(n * sizeof(float));
    assert_non_null(nan);
    for (size_t i = 0; i < n; i++)
        nan[i] = NAN;
    pair p = {bt_output(f->cpu, &f->host, ndim, shape), gpu_tensor(f, ndim, shape, nan)};
    free(nan);
    return p;
}

static pair weight(fixture *f, tensor_kind kind, int ndim, const int64_t *shape, const float *host)
{
    sdxl_error err;
    pair p;
    p.c = bt_weight(f->cpu, kind, ndim, shape, host);
    expect_ok(backend_weight_upload(f->gpu, kind, ndim, shape, DTYPE_F32, host, &p.g, &err), &err);
    return p;
}

static void weight_free(fixture *f, pair *w)
{
    backend_weight_free(f->cpu, &w->c);
    backend_weight_free(f->gpu, &w->g);
}

/* Compares the two backends' outputs; prints the error so a run shows the margins. */
static void expect_close(fixture *f, const char *what, const pair *y)
{
    size_t n = (size_t)tensor_numel(&y->c);
    float *want_f = bt_read(f->cpu, &y->c);
    float *got = bt_read(f->gpu, &y->g);
    double *want = malloc(n * sizeof(double));
    assert_non_null(want);
    for (size_t i = 0; i < n; i++)
        want[i] = want_f[i];
    double e = bt_rel_error(got, want, n);
    double tol = tolerance(f->type);
    printf("  %-4s %-56s rel error %.3g\n", dtype_name(f->type), what, e);
    free(want);
    free(want_f);
    free(got);
    if (!(e < tol))
        fail_msg("%s %s: relative error %g is over %g", dtype_name(f->type), what, e, tol);
}

static void reset(fixture *f, arena_mark host, arena_mark device)
{
    arena_reset_to(&f->host, host);
    arena_reset_to(&f->device, device);
}

/* ---- matrix products ---------------------------------------------------------------------- */

static void check_linear(fixture *f, int64_t b, int64_t t, int64_t k, int64_t n, bool bias,
                         backend_act act)
{
    arena_mark hm = arena_get_mark(&f->host), dm = arena_get_mark(&f->device);
    sdxl_error err;
    /* t > 0: token rows [b, t, k]; t == 0: one vector per image [b, k]. */
    int ndim = t > 0 ? 3 : 2;
    int64_t xs[3] = {b, t, k}, ys[3] = {b, t, n};
    if (t == 0) {
        xs[1] = k;
        ys[1] = n;
    }
    size_t rows = (size_t)(b * (t > 0 ? t : 1));
    float *xh = random_values(f, rows * (size_t)k, 1.0f);
    float *wh = random_values(f, (size_t)(n * k), 1.0f / sqrtf((float)k));
    float *bh = random_values(f, (size_t)n, 0.5f);
    pair x = input(f, ndim, xs, xh);
    pair w = weight(f, TENSOR_WEIGHT_LINEAR, 2, (int64_t[]){n, k}, wh);
    pair bv = weight(f, TENSOR_WEIGHT_VECTOR, 1, (int64_t[]){n}, bh);
    pair y = output(f, ndim, ys);
    expect_ok(backend_linear(f->cpu, &x.c, &w.c, bias ? &bv.c : NULL, act, &y.c, &err), &err);
    expect_ok(backend_linear(f->gpu, &x.g, &w.g, bias ? &bv.g : NULL, act, &y.g, &err), &err);
    char what[96];
    snprintf(what, sizeof(what), "linear %lldx%lld -> %lld bias %d act %d", (long long)rows,
             (long long)k, (long long)n, bias, (int)act);
    expect_close(f, what, &y);
    weight_free(f, &w);
    weight_free(f, &bv);
    free(xh);
    free(wh);
    free(bh);
    reset(f, hm, dm);
}

static void test_linear(void **state)
{
    fixture *f = need_gpu(state);
    check_linear(f, 2, 77, 768, 3072, true, BACKEND_ACT_QUICK_GELU); /* CLIP-L MLP */
    check_linear(f, 2, 77, 1280, 5120, true, BACKEND_ACT_GELU);      /* bigG MLP */
    check_linear(f, 2, 333, 640, 5120, true, BACKEND_ACT_NONE);      /* GEGLU projection */
    check_linear(f, 2, 256, 640, 640, false, BACKEND_ACT_NONE);      /* to_q */
    check_linear(f, 2, 0, 1280, 1280, true, BACKEND_ACT_SILU);       /* time embedding [B, C] */
    check_linear(f, 1, 0, 2816, 1280, true, BACKEND_ACT_NONE);       /* add_embedding */
}

static void check_matmul(fixture *f, int64_t batch, int64_t m, int64_t k, int64_t n, bool trans_b,
                         float alpha)
{
    arena_mark hm = arena_get_mark(&f->host), dm = arena_get_mark(&f->device);
    sdxl_error err;
    int64_t bs[3] = {batch, trans_b ? n : k, trans_b ? k : n};
    float *ah = random_values(f, (size_t)(batch * m * k), 1.0f);
    float *bh = random_values(f, (size_t)(batch * k * n), 1.0f);
    pair a = input(f, 3, (int64_t[]){batch, m, k}, ah);
    pair bm = input(f, 3, bs, bh);
    pair c = output(f, 3, (int64_t[]){batch, m, n});
    expect_ok(backend_matmul(f->cpu, &a.c, &bm.c, trans_b, alpha, &c.c, &err), &err);
    expect_ok(backend_matmul(f->gpu, &a.g, &bm.g, trans_b, alpha, &c.g, &err), &err);
    char what[96];
    snprintf(what, sizeof(what), "matmul %lld x (%lldx%lld . %lldx%lld) trans_b %d",
             (long long)batch, (long long)m, (long long)k, (long long)k, (long long)n, trans_b);
    expect_close(f, what, &c);
    free(ah);
    free(bh);
    reset(f, hm, dm);
}

static void test_matmul(void **state)
{
    fixture *f = need_gpu(state);
    check_matmul(f, 3, 100, 64, 77, false, 1.0f);
    check_matmul(f, 3, 100, 64, 77, true, 0.125f);
    check_matmul(f, 2, 33, 130, 250, false, -0.5f);
}

/* ---- convolution ---------------------------------------------------------------------------- */

static void check_conv(fixture *f, int64_t n, int64_t h, int64_t w, int64_t cin, int64_t cout,
                       int64_t k, conv2d_params p, bool bias)
{
    arena_mark hm = arena_get_mark(&f->host), dm = arena_get_mark(&f->device);
    sdxl_error err;
    int64_t ho = (h + p.pad_top + p.pad_bottom - k) / p.stride + 1;
    int64_t wo = (w + p.pad_left + p.pad_right - k) / p.stride + 1;
    float *xh = random_values(f, (size_t)(n * h * w * cin), 1.0f);
    float *wh = random_values(f, (size_t)(cout * cin * k * k), 1.0f / sqrtf((float)(cin * k * k)));
    float *bh = random_values(f, (size_t)cout, 0.5f);
    pair x = input(f, 4, (int64_t[]){n, h, w, cin}, xh);
    pair wt = weight(f, TENSOR_WEIGHT_CONV, 4, (int64_t[]){cout, cin, k, k}, wh);
    pair bv = weight(f, TENSOR_WEIGHT_VECTOR, 1, (int64_t[]){cout}, bh);
    pair y = output(f, 4, (int64_t[]){n, ho, wo, cout});
    expect_ok(backend_conv2d(f->cpu, &x.c, &wt.c, bias ? &bv.c : NULL, &p, &y.c, &err), &err);
    expect_ok(backend_conv2d(f->gpu, &x.g, &wt.g, bias ? &bv.g : NULL, &p, &y.g, &err), &err);
    char what[96];
    snprintf(what, sizeof(what), "conv %lldx%lld s%d pad %d%d%d%d [%lld,%lld,%lld,%lld]->%lld",
             (long long)k, (long long)k, p.stride, p.pad_top, p.pad_left, p.pad_bottom, p.pad_right,
             (long long)n, (long long)h, (long long)w, (long long)cin, (long long)cout);
    expect_close(f, what, &y);
    weight_free(f, &wt);
    weight_free(f, &bv);
    free(xh);
    free(wh);
    free(bh);
    reset(f, hm, dm);
}

static void test_conv2d(void **state)
{
    fixture *f = need_gpu(state);
    conv2d_params same = {1, 1, 1, 1, 1}, none = {1, 0, 0, 0, 0};
    conv2d_params down = {2, 1, 1, 1, 1}, vae_down = {2, 0, 0, 1, 1};
    check_conv(f, 2, 24, 24, 320, 320, 3, same, true);     /* UNet resnet conv */
    check_conv(f, 2, 64, 64, 4, 320, 3, same, true);       /* UNet conv_in */
    check_conv(f, 2, 64, 64, 320, 4, 3, same, true);       /* UNet conv_out */
    check_conv(f, 1, 128, 128, 3, 128, 3, same, true);     /* VAE encoder conv_in, RGB */
    check_conv(f, 2, 32, 32, 320, 320, 3, down, true);     /* UNet downsampler */
    check_conv(f, 2, 32, 32, 128, 128, 3, vae_down, true); /* VAE downsampler */
    check_conv(f, 2, 32, 32, 640, 320, 1, none, true);     /* resnet shortcut, 1x1 */
    check_conv(f, 1, 17, 23, 64, 96, 3, same, false);      /* odd sizes, no bias */
    check_conv(f, 2, 8, 8, 8, 8, 1, none, true);           /* quant_conv */
    check_conv(f, 2, 16, 16, 4, 4, 1, none, true);         /* post_quant_conv: 8-byte rows */
}

/* Where cuDNN can, a convolution's bias is added inside its plan (fused). A shape then has two
 * plans, with and without a bias, kept apart by the plan's key: a fused plan reused for a
 * convolution without a bias would read a bias that is not there. Both orders of first use. */
static void test_conv2d_bias_plans(void **state)
{
    fixture *f = need_gpu(state);
    conv2d_params same = {1, 1, 1, 1, 1};
    check_conv(f, 2, 20, 20, 256, 256, 3, same, false); /* without a bias first */
    check_conv(f, 2, 20, 20, 256, 256, 3, same, true);
    check_conv(f, 2, 12, 12, 192, 128, 3, same, true); /* with a bias first */
    check_conv(f, 2, 12, 12, 192, 128, 3, same, false);
}

/* ---- normalisation and softmax ---------------------------------------------------------- */

static void check_group_norm(fixture *f, int ndim, const int64_t *shape, int groups, float eps,
                             bool silu)
{
    arena_mark hm = arena_get_mark(&f->host), dm = arena_get_mark(&f->device);
    sdxl_error err;
    int64_t c = shape[ndim - 1];
    size_t n = numel_of(ndim, shape);
    /* An offset mean, as real activations have, so E[x²] - mean² would show cancellation. */
    float *xh = random_values(f, n, 2.0f);
    for (size_t i = 0; i < n; i++)
        xh[i] += 1.5f;
    round_to_type(f->type, xh, n);
    float *gh = random_values(f, (size_t)c, 1.0f);
    float *bh = random_values(f, (size_t)c, 1.0f);
    pair x = input(f, ndim, shape, xh);
    pair g = weight(f, TENSOR_WEIGHT_VECTOR, 1, &c, gh);
    pair bt = weight(f, TENSOR_WEIGHT_VECTOR, 1, &c, bh);
    pair y = output(f, ndim, shape);
    expect_ok(backend_group_norm(f->cpu, &x.c, groups, eps, &g.c, &bt.c, silu, &y.c, &err), &err);
    expect_ok(backend_group_norm(f->gpu, &x.g, groups, eps, &g.g, &bt.g, silu, &y.g, &err), &err);
    char what[96], buf[64];
    snprintf(what, sizeof(what), "group_norm %s groups %d silu %d",
             tensor_shape_str(&x.c, buf, sizeof(buf)), groups, silu);
    expect_close(f, what, &y);
    /* In place gives the same. */
    expect_ok(backend_group_norm(f->gpu, &x.g, groups, eps, &g.g, &bt.g, silu, &x.g, &err), &err);
    pair in_place = {y.c, x.g};
    expect_close(f, "  ... in place", &in_place);
    weight_free(f, &g);
    weight_free(f, &bt);
    free(xh);
    free(gh);
    free(bh);
    reset(f, hm, dm);
}

static void test_group_norm(void **state)
{
    fixture *f = need_gpu(state);
    check_group_norm(f, 4, (int64_t[]){2, 32, 32, 320}, 32, 1e-5f, true);
    check_group_norm(f, 4, (int64_t[]){2, 16, 16, 2560}, 32, 1e-5f, true); /* widest concat */
    check_group_norm(f, 4, (int64_t[]){1, 64, 64, 128}, 32, 1e-6f, false); /* VAE */
    check_group_norm(f, 4, (int64_t[]){2, 7, 9, 96}, 32, 1e-5f, true);     /* odd */
    check_group_norm(f, 3, (int64_t[]){2, 1024, 640}, 32, 1e-6f, false);   /* transformer in */
}

static void check_layer_norm(fixture *f, int ndim, const int64_t *shape)
{
    arena_mark hm = arena_get_mark(&f->host), dm = arena_get_mark(&f->device);
    sdxl_error err;
    int64_t c = shape[ndim - 1];
    size_t n = numel_of(ndim, shape);
    float *xh = random_values(f, n, 3.0f);
    float *gh = random_values(f, (size_t)c, 1.0f);
    float *bh = random_values(f, (size_t)c, 1.0f);
    pair x = input(f, ndim, shape, xh);
    pair g = weight(f, TENSOR_WEIGHT_VECTOR, 1, &c, gh);
    pair bt = weight(f, TENSOR_WEIGHT_VECTOR, 1, &c, bh);
    pair y = output(f, ndim, shape);
    expect_ok(backend_layer_norm(f->cpu, &x.c, 1e-5f, &g.c, &bt.c, &y.c, &err), &err);
    expect_ok(backend_layer_norm(f->gpu, &x.g, 1e-5f, &g.g, &bt.g, &y.g, &err), &err);
    char what[96], buf[64];
    snprintf(what, sizeof(what), "layer_norm %s", tensor_shape_str(&x.c, buf, sizeof(buf)));
    expect_close(f, what, &y);
    weight_free(f, &g);
    weight_free(f, &bt);
    free(xh);
    free(gh);
    free(bh);
    reset(f, hm, dm);
}

static void test_layer_norm(void **state)
{
    fixture *f = need_gpu(state);
    check_layer_norm(f, 3, (int64_t[]){2, 1024, 640});
    check_layer_norm(f, 3, (int64_t[]){2, 77, 1280});
    check_layer_norm(f, 2, (int64_t[]){5, 333});
}

static void check_softmax(fixture *f, int ndim, const int64_t *shape)
{
    arena_mark hm = arena_get_mark(&f->host), dm = arena_get_mark(&f->device);
    sdxl_error err;
    float *xh = random_values(f, numel_of(ndim, shape), 8.0f);
    pair x = input(f, ndim, shape, xh);
    pair y = output(f, ndim, shape);
    expect_ok(backend_softmax(f->cpu, &x.c, &y.c, &err), &err);
    expect_ok(backend_softmax(f->gpu, &x.g, &y.g, &err), &err);
    char what[96], buf[64];
    snprintf(what, sizeof(what), "softmax %s", tensor_shape_str(&x.c, buf, sizeof(buf)));
    expect_close(f, what, &y);
    free(xh);
    reset(f, hm, dm);
}

static void test_softmax(void **state)
{
    fixture *f = need_gpu(state);
    check_softmax(f, 3, (int64_t[]){3, 50, 1000});
    check_softmax(f, 3, (int64_t[]){2, 77, 77});
    check_softmax(f, 1, (int64_t[]){4099});
}

/* ---- attention ---------------------------------------------------------------------------- */

static void check_attention(fixture *f, int64_t b, int64_t tq, int64_t tk, int64_t width, int heads,
                            bool causal)
{
    arena_mark hm = arena_get_mark(&f->host), dm = arena_get_mark(&f->device);
    sdxl_error err;
    float *qh = random_values(f, (size_t)(b * tq * width), 2.0f);
    float *kh = random_values(f, (size_t)(b * tk * width), 2.0f);
    float *vh = random_values(f, (size_t)(b * tk * width), 1.0f);
    pair q = input(f, 3, (int64_t[]){b, tq, width}, qh);
    pair k = input(f, 3, (int64_t[]){b, tk, width}, kh);
    pair v = input(f, 3, (int64_t[]){b, tk, width}, vh);
    pair y = output(f, 3, (int64_t[]){b, tq, width});
    expect_ok(backend_attention(f->cpu, &q.c, &k.c, &v.c, heads, causal, &y.c, &err), &err);
    expect_ok(backend_attention(f->gpu, &q.g, &k.g, &v.g, heads, causal, &y.g, &err), &err);
    char what[96];
    snprintf(what, sizeof(what), "attention B%lld Tq%lld Tk%lld %dx%lld causal %d", (long long)b,
             (long long)tq, (long long)tk, heads, (long long)(width / heads), causal);
    expect_close(f, what, &y);
    free(qh);
    free(kh);
    free(vh);
    reset(f, hm, dm);
}

static const struct attention_shape {
    int64_t b, tq, tk, width;
    int heads;
    bool causal;
} attention_shapes[] = {
    {2, 576, 576, 640, 10, false},  /* UNet self-attention, heads of 64 */
    {1, 1024, 1024, 640, 10, false}, /* UNet 32x32 level at 512x512: cuDNN's by default */
    {2, 576, 77, 640, 10, false},   /* UNet cross-attention on the text */
    {1, 256, 256, 1280, 20, false}, /* UNet 16x16 level: 2-warp blocks */
    {2, 77, 77, 768, 12, true},     /* CLIP-L, causal */
    {1, 77, 77, 1280, 20, true},    /* OpenCLIP bigG, causal */
    {1, 300, 300, 1280, 10, false}, /* heads of 128 */
    {1, 130, 200, 320, 5, false},   /* rows and keys not multiples of 64 */
    {1, 1024, 1024, 512, 1, false}, /* the VAE's one head of 512 */
    {1, 200, 150, 640, 8, false},   /* heads of 80: the tiled path (cuDNN's with cudnn) */
};

/* ---- element-wise ops ------------------------------------------------------------------- */

static void test_activations(void **state)
{
    fixture *f = need_gpu(state);
    arena_mark hm = arena_get_mark(&f->host), dm = arena_get_mark(&f->device);
    sdxl_error err;
    int64_t shape[3] = {2, 100, 333};
    float *xh = random_values(f, numel_of(3, shape), 6.0f);
    pair x = input(f, 3, shape, xh);
    static const backend_act acts[3] = {BACKEND_ACT_GELU, BACKEND_ACT_QUICK_GELU, BACKEND_ACT_SILU};
    static const char *const names[3] = {"gelu", "quick_gelu", "silu"};
    for (int i = 0; i < 3; i++) {
        pair y = output(f, 3, shape);
        expect_ok(backend_activation(f->cpu, acts[i], &x.c, &y.c, &err), &err);
        expect_ok(backend_activation(f->gpu, acts[i], &x.g, &y.g, &err), &err);
        expect_close(f, names[i], &y);
    }
    float *gh = random_values(f, 2 * 100 * 666, 4.0f);
    pair g = input(f, 3, (int64_t[]){2, 100, 666}, gh);
    pair y = output(f, 3, shape);
    expect_ok(backend_geglu(f->cpu, &g.c, &y.c, &err), &err);
    expect_ok(backend_geglu(f->gpu, &g.g, &y.g, &err), &err);
    expect_close(f, "geglu [2, 100, 666]", &y);
    free(xh);
    free(gh);
    reset(f, hm, dm);
}

static void test_arithmetic(void **state)
{
    fixture *f = need_gpu(state);
    arena_mark hm = arena_get_mark(&f->host), dm = arena_get_mark(&f->device);
    sdxl_error err;
    int64_t shape[3] = {2, 77, 768};
    size_t n = numel_of(3, shape);
    float *xh = random_values(f, n, 2.0f), *zh = random_values(f, n, 2.0f);
    float *th = random_values(f, 77 * 768, 2.0f);
    pair x = input(f, 3, shape, xh), z = input(f, 3, shape, zh);
    pair tail = input(f, 2, (int64_t[]){77, 768}, th);
    pair y = output(f, 3, shape);
    expect_ok(backend_add(f->cpu, &x.c, &z.c, &y.c, &err), &err);
    expect_ok(backend_add(f->gpu, &x.g, &z.g, &y.g, &err), &err);
    expect_close(f, "add", &y);
    expect_ok(backend_add(f->cpu, &x.c, &tail.c, &y.c, &err), &err);
    expect_ok(backend_add(f->gpu, &x.g, &tail.g, &y.g, &err), &err);
    expect_close(f, "add [2, 77, 768] + [77, 768]", &y);
    expect_ok(backend_mul(f->cpu, &x.c, &tail.c, &y.c, &err), &err);
    expect_ok(backend_mul(f->gpu, &x.g, &tail.g, &y.g, &err), &err);
    expect_close(f, "mul [2, 77, 768] * [77, 768]", &y);
    expect_ok(backend_add_scaled(f->cpu, 0.7f, &x.c, -1.3f, &z.c, &y.c, &err), &err);
    expect_ok(backend_add_scaled(f->gpu, 0.7f, &x.g, -1.3f, &z.g, &y.g, &err), &err);
    expect_close(f, "add_scaled", &y);
    expect_ok(backend_scale(f->cpu, &x.c, 0.13025f, 0.5f, &y.c, &err), &err);
    expect_ok(backend_scale(f->gpu, &x.g, 0.13025f, 0.5f, &y.g, &err), &err);
    expect_close(f, "scale", &y);

    int64_t img[4] = {2, 16, 16, 320};
    float *ih = random_values(f, numel_of(4, img), 2.0f), *eh = random_values(f, 2 * 320, 2.0f);
    pair xi = input(f, 4, img, ih), e = input(f, 2, (int64_t[]){2, 320}, eh);
    pair yi = output(f, 4, img);
    expect_ok(backend_add_channels(f->cpu, &xi.c, &e.c, &yi.c, &err), &err);
    expect_ok(backend_add_channels(f->gpu, &xi.g, &e.g, &yi.g, &err), &err);
    expect_close(f, "add_channels [2, 16, 16, 320] + [2, 320]", &yi);
    free(xh);
    free(zh);
    free(th);
    free(ih);
    free(eh);
    reset(f, hm, dm);
}

/* ---- data movement ---------------------------------------------------------------------- */

static void test_layout(void **state)
{
    fixture *f = need_gpu(state);
    arena_mark hm = arena_get_mark(&f->host), dm = arena_get_mark(&f->device);
    sdxl_error err;
    int64_t s[4] = {2, 16, 12, 320};
    float *xh = random_values(f, numel_of(4, s), 3.0f);
    pair x = input(f, 4, s, xh);
    pair up = output(f, 4, (int64_t[]){2, 32, 24, 320});
    expect_ok(backend_upsample_nearest2x(f->cpu, &x.c, &up.c, &err), &err);
    expect_ok(backend_upsample_nearest2x(f->gpu, &x.g, &up.g, &err), &err);
    expect_close(f, "upsample_nearest2x [2, 16, 12, 320]", &up);

    float *bh = random_values(f, 2 * 16 * 12 * 640, 3.0f);
    pair other = input(f, 4, (int64_t[]){2, 16, 12, 640}, bh);
    pair cat = output(f, 4, (int64_t[]){2, 16, 12, 960});
    expect_ok(backend_concat_channels(f->cpu, &x.c, &other.c, &cat.c, &err), &err);
    expect_ok(backend_concat_channels(f->gpu, &x.g, &other.g, &cat.g, &err), &err);
    expect_close(f, "concat 320 + 640", &cat);

    pair part = output(f, 4, (int64_t[]){2, 16, 12, 100});
    expect_ok(backend_slice_channels(f->cpu, &cat.c, 300, &part.c, &err), &err);
    expect_ok(backend_slice_channels(f->gpu, &cat.g, 300, &part.g, &err), &err);
    expect_close(f, "slice 300..399 of 960", &part);

    pair copy = output(f, 4, s);
    expect_ok(backend_copy(f->cpu, &x.c, &copy.c, &err), &err);
    expect_ok(backend_copy(f->gpu, &x.g, &copy.g, &err), &err);
    expect_close(f, "copy", &copy);
    expect_ok(backend_zero(f->gpu, &copy.g, &err), &err);
    float *zeros = bt_read(f->gpu, &copy.g);
    for (size_t i = 0; i < numel_of(4, s); i++)
        if (zeros[i] != 0.0f || signbit(zeros[i]))
            fail_msg("zero: element %zu is %g", i, (double)zeros[i]);
    free(zeros);

    /* Embedding rows, and rows of an activation (CLIP's EOS pooling). */
    float *table = random_values(f, 1000 * 768, 1.0f);
    int32_t *ids = bt_random_ids(&f->rng, 154, 1000);
    pair emb = weight(f, TENSOR_WEIGHT_EMBEDDING, 2, (int64_t[]){1000, 768}, table);
    tensor ic = bt_input_ids(f->cpu, &f->host, 154, ids), ig;
    expect_ok(tensor_alloc(&ig, &f->device, DTYPE_I32, 1, (int64_t[]){154}, &err), &err);
    expect_ok(backend_tensor_write(f->gpu, &ig, DTYPE_I32, ids, 154, &err), &err);
    pair rows = output(f, 2, (int64_t[]){154, 768});
    expect_ok(backend_gather_rows(f->cpu, &emb.c, &ic, &rows.c, &err), &err);
    expect_ok(backend_gather_rows(f->gpu, &emb.g, &ig, &rows.g, &err), &err);
    expect_close(f, "gather_rows from an embedding", &rows);
    pair flat = input(f, 2, (int64_t[]){1000, 768}, table);
    expect_ok(backend_gather_rows(f->cpu, &flat.c, &ic, &rows.c, &err), &err);
    expect_ok(backend_gather_rows(f->gpu, &flat.g, &ig, &rows.g, &err), &err);
    expect_close(f, "gather_rows from an activation", &rows);
    weight_free(f, &emb);

    /* Timesteps up to 999 (arguments of ~1000 radians) and time ids. */
    float th[3] = {999.0f, 500.5f, 1.0f};
    tensor tc, tg;
    expect_ok(tensor_alloc(&tc, &f->host, DTYPE_F32, 1, (int64_t[]){3}, &err), &err);
    expect_ok(backend_tensor_write(f->cpu, &tc, DTYPE_F32, th, 3, &err), &err);
    expect_ok(tensor_alloc(&tg, &f->device, DTYPE_F32, 1, (int64_t[]){3}, &err), &err);
    expect_ok(backend_tensor_write(f->gpu, &tg, DTYPE_F32, th, 3, &err), &err);
    pair emb320 = output(f, 2, (int64_t[]){3, 320});
    expect_ok(backend_timestep_embedding(f->cpu, &tc, true, 0.0f, 10000.0f, &emb320.c, &err), &err);
    expect_ok(backend_timestep_embedding(f->gpu, &tg, true, 0.0f, 10000.0f, &emb320.g, &err), &err);
    expect_close(f, "timestep_embedding 320 flip", &emb320);
    pair emb257 = output(f, 2, (int64_t[]){3, 257});
    expect_ok(backend_timestep_embedding(f->cpu, &tc, false, 1.0f, 10000.0f, &emb257.c, &err),
              &err);
    expect_ok(backend_timestep_embedding(f->gpu, &tg, false, 1.0f, 10000.0f, &emb257.g, &err),
              &err);
    expect_close(f, "timestep_embedding 257 (odd) shift 1", &emb257);
    free(xh);
    free(bh);
    free(table);
    free(ids);
    reset(f, hm, dm);
}

/* ---- host copies, determinism, batch invariance ----------------------------------------- */

/* The tensor's raw bits (its own type), read through be (whose queued ops it waits for). */
static void *read_bits_on(backend *be, const tensor *t)
{
    sdxl_error err;
    void *bits = malloc(tensor_nbytes(t));
    assert_non_null(bits);
    expect_ok(backend_tensor_read(be, t, t->type, bits, (size_t)tensor_numel(t), &err), &err);
    return bits;
}

static void *read_bits(fixture *f, const tensor *t)
{
    return read_bits_on(f->gpu, t);
}

static void test_write_read(void **state)
{
    fixture *f = need_gpu(state);
    arena_mark dm = arena_get_mark(&f->device);
    size_t n = 1000003;
    float *x = random_values(f, n, 100.0f);
    tensor t = gpu_tensor(f, 1, (int64_t[]){(int64_t)n}, x);
    float *back = bt_read(f->gpu, &t);
    /* Values representable in the type come back exactly. */
    assert_memory_equal(back, x, n * sizeof(float));
    free(back);
    free(x);
    arena_reset_to(&f->device, dm);
}

/* Runs an op on the GPU through `run`, twice, and on each image alone: the same bits each time. */
typedef void (*gpu_op)(fixture *f, const tensor *in, tensor *out);

static void same_bits(fixture *f, const char *what, gpu_op run, int64_t images,
                      const int64_t *in_image, const int64_t *out_image, int ndim)
{
    arena_mark dm = arena_get_mark(&f->device);
    sdxl_error err;
    int64_t in_shape[4] = {images}, out_shape[4] = {images};
    for (int i = 1; i < ndim; i++) {
        in_shape[i] = in_image[i - 1];
        out_shape[i] = out_image[i - 1];
    }
    float *xh = random_values(f, numel_of(ndim, in_shape), 1.0f);
    tensor x = gpu_tensor(f, ndim, in_shape, xh);
    tensor y, y2;
    expect_ok(tensor_alloc(&y, &f->device, f->type, ndim, out_shape, &err), &err);
    expect_ok(tensor_alloc(&y2, &f->device, f->type, ndim, out_shape, &err), &err);
    run(f, &x, &y);
    run(f, &x, &y2);
    void *a = read_bits(f, &y), *b = read_bits(f, &y2);
    size_t image_bytes = tensor_nbytes(&y) / (size_t)images;
    if (memcmp(a, b, tensor_nbytes(&y)) != 0)
        fail_msg("%s %s: two runs on the same inputs differ", dtype_name(f->type), what);
    for (int64_t i = 0; i < images; i++) {
        tensor xi, yi;
        expect_ok(tensor_view_outer(&xi, &x, i, 1, &err), &err);
        expect_ok(tensor_view_outer(&yi, &y2, i, 1, &err), &err);
        run(f, &xi, &yi);
        void *alone = read_bits(f, &yi);
        if (memcmp(alone, (unsigned char *)a + (size_t)i * image_bytes, image_bytes) != 0)
            fail_msg("%s %s: image %lld differs alone and in a batch of %lld", dtype_name(f->type),
                     what, (long long)i, (long long)images);
        free(alone);
    }
    printf("  %-4s %-56s same bits\n", dtype_name(f->type), what);
    free(a);
    free(b);
    free(xh);
    arena_reset_to(&f->device, dm);
}

static pair g_w, g_b, g_gamma, g_beta; /* weights for the ops below (GPU sides used) */

static void run_linear(fixture *f, const tensor *x, tensor *y)
{
    sdxl_error err;
    expect_ok(backend_linear(f->gpu, x, &g_w.g, &g_b.g, BACKEND_ACT_GELU, y, &err), &err);
}

static void run_conv(fixture *f, const tensor *x, tensor *y)
{
    sdxl_error err;
    conv2d_params p = {1, 1, 1, 1, 1};
    expect_ok(backend_conv2d(f->gpu, x, &g_w.g, &g_b.g, &p, y, &err), &err);
}

static void run_group_norm(fixture *f, const tensor *x, tensor *y)
{
    sdxl_error err;
    expect_ok(backend_group_norm(f->gpu, x, 32, 1e-5f, &g_gamma.g, &g_beta.g, true, y, &err), &err);
}

static void run_attention(fixture *f, const tensor *x, tensor *y)
{
    sdxl_error err;
    expect_ok(backend_attention(f->gpu, x, x, x, x->shape[2] / 64, false, y, &err), &err);
}

static void run_vae_attention(fixture *f, const tensor *x, tensor *y)
{
    sdxl_error err;
    expect_ok(backend_attention(f->gpu, x, x, x, 1, false, y, &err), &err);
}

static void test_same_bits(void **state)
{
    fixture *f = need_gpu(state);
    float *wh = random_values(f, 640 * 320, 0.05f), *bh = random_values(f, 640, 0.5f);
    g_w = weight(f, TENSOR_WEIGHT_LINEAR, 2, (int64_t[]){640, 320}, wh);
    g_b = weight(f, TENSOR_WEIGHT_VECTOR, 1, (int64_t[]){640}, bh);
    same_bits(f, "linear [3, 1000, 320] -> 640 + gelu", run_linear, 3, (int64_t[]){1000, 320},
              (int64_t[]){1000, 640}, 3);
    weight_free(f, &g_w);
    free(wh);

    float *ch = random_values(f, 640 * 320 * 9, 0.02f);
    g_w = weight(f, TENSOR_WEIGHT_CONV, 4, (int64_t[]){640, 320, 3, 3}, ch);
    same_bits(f, "conv 3x3 [3, 24, 24, 320] -> 640", run_conv, 3, (int64_t[]){24, 24, 320},
              (int64_t[]){24, 24, 640}, 4);
    weight_free(f, &g_w);
    weight_free(f, &g_b);
    free(ch);
    free(bh);

    float *gh = random_values(f, 320, 1.0f), *beh = random_values(f, 320, 1.0f);
    g_gamma = weight(f, TENSOR_WEIGHT_VECTOR, 1, (int64_t[]){320}, gh);
    g_beta = weight(f, TENSOR_WEIGHT_VECTOR, 1, (int64_t[]){320}, beh);
    same_bits(f, "group_norm + silu [3, 40, 40, 320]", run_group_norm, 3, (int64_t[]){40, 40, 320},
              (int64_t[]){40, 40, 320}, 4);
    weight_free(f, &g_gamma);
    weight_free(f, &g_beta);
    free(gh);
    free(beh);

    same_bits(f, "attention [2, 600, 512], one head", run_vae_attention, 2, (int64_t[]){600, 512},
              (int64_t[]){600, 512}, 3);
}

/* ---- which attention runs (SDXLD_CUDA_ATTENTION) ------------------------------------------ */

/* A cuda backend of the fixture's type made with SDXLD_CUDA_ATTENTION set to `setting` (NULL:
 * unset, the default). */
static backend *attention_backend(fixture *f, const char *setting)
{
    sdxl_error err;
    backend_params p = backend_default_params();
    p.compute_type = f->type;
    backend *be = NULL;
    if (setting)
        assert_int_equal(setenv("SDXLD_CUDA_ATTENTION", setting, 1), 0);
    sdxl_status st = backend_create("cuda", &p, &be, &err);
    unsetenv("SDXLD_CUDA_ATTENTION");
    expect_ok(st, &err);
    return be;
}

/* How many lines of the debug log so far contain `what`. */
static int lines_logged(FILE *log, const char *what)
{
    char line[1024];
    int n = 0;
    fflush(log);
    rewind(log);
    while (fgets(line, sizeof(line), log))
        if (strstr(line, what))
            n++;
    fseek(log, 0, SEEK_END);
    return n;
}

/* For one test, the fixture's GPU backend replaced by one made with `setting`, and the debug
 * log sent to a file that lines_logged reads. attention_run_end undoes both. */
typedef struct attention_run {
    backend *saved;
    FILE *log;
} attention_run;

static attention_run attention_run_begin(fixture *f, const char *setting)
{
    attention_run r = {f->gpu, tmpfile()};
    assert_non_null(r.log);
    log_configure(LOG_LEVEL_DEBUG, LOG_FORMAT_TEXT, r.log);
    f->gpu = attention_backend(f, setting);
    return r;
}

static void attention_run_end(fixture *f, attention_run *r)
{
    backend_destroy(f->gpu);
    f->gpu = r->saved;
    log_configure(LOG_LEVEL_INFO, LOG_FORMAT_TEXT, NULL);
    fclose(r->log);
}

/* cuda_sdpa.c's debug line for a cuDNN attention plan built. */
#define CUDNN_PLAN_LOGGED "attention through cuDNN"

/* Whether an attention of tq queries over tk keys in heads of d channels should go to cuDNN
 * under `setting` (cuda_attention.c): cuDNN takes F16/BF16 heads of up to 128 channels in
 * multiples of 8; "flash" gives it none, "cudnn" all of those, the default those with
 * 1024 x 1024 scores or more. */
static bool cudnn_expected(const fixture *f, const char *setting, int64_t tq, int64_t tk,
                           int64_t d)
{
    bool takes = f->type != DTYPE_F32 && d <= 128 && d % 8 == 0;
    if (setting && strcmp(setting, "flash") == 0)
        return false;
    if (setting && strcmp(setting, "cudnn") == 0)
        return takes;
    return takes && tq * tk >= 1024 * 1024;
}

/* The shapes above under a setting, against the cpu, then an image's bits alone and in a
 * batch. Which attention computed them is checked too: each shape must build a cuDNN plan (a
 * debug line, counted in a log file) exactly when it should. Neither path falls back to the
 * other on these shapes, so a plan built means cuDNN's values were compared. */
static void attention_through(fixture *f, const char *setting)
{
    attention_run run = attention_run_begin(f, setting);
    FILE *log = run.log;
    printf("  SDXLD_CUDA_ATTENTION %s\n", setting ? setting : "unset");
    for (size_t i = 0; i < sizeof(attention_shapes) / sizeof(attention_shapes[0]); i++) {
        const struct attention_shape *a = &attention_shapes[i];
        int64_t d = a->width / a->heads;
        int want = lines_logged(log, CUDNN_PLAN_LOGGED) +
                   cudnn_expected(f, setting, a->tq, a->tk, d);
        check_attention(f, a->b, a->tq, a->tk, a->width, a->heads, a->causal);
        int got = lines_logged(log, CUDNN_PLAN_LOGGED);
        if (got != want)
            fail_msg("%s attention Tq%lld Tk%lld %dx%lld: %d cuDNN plans logged, expected %d",
                     dtype_name(f->type), (long long)a->tq, (long long)a->tk, a->heads,
                     (long long)d, got, want);
    }
    /* A shape of its own: a plan built above would be found, not built again. */
    int want = lines_logged(log, CUDNN_PLAN_LOGGED) + cudnn_expected(f, setting, 1100, 1100, 64);
    same_bits(f, "attention [2, 1100, 640], heads of 64", run_attention, 2,
              (int64_t[]){1100, 640}, (int64_t[]){1100, 640}, 3);
    assert_int_equal(lines_logged(log, CUDNN_PLAN_LOGGED), want);
    attention_run_end(f, &run);
}

static void test_attention(void **state)
{
    attention_through(need_gpu(state), NULL);
}

static void test_attention_flash(void **state)
{
    attention_through(need_gpu(state), "flash");
}

static void test_attention_cudnn(void **state)
{
    attention_through(need_gpu(state), "cudnn");
}

/* [1, rows, width] of the compute type starting 2 bytes past an aligned address: a view that
 * cuDNN's fused attention, which loads 16 bytes at a time, may refuse. */
static pair misaligned(fixture *f, int64_t rows, int64_t width, const float *host)
{
    pair p = {bt_input(f->cpu, &f->host, 3, (int64_t[]){1, rows, width}, host), {0}};
    size_t n = (size_t)(rows * width);
    float *padded = calloc(n + 1, sizeof(float));
    assert_non_null(padded);
    memcpy(padded + 1, host, n * sizeof(float));
    tensor block = gpu_tensor(f, 1, (int64_t[]){(int64_t)n + 1}, padded);
    free(padded);
    p.g = block;
    p.g.ndim = 3;
    p.g.shape[0] = 1;
    p.g.shape[1] = rows;
    p.g.shape[2] = width;
    p.g.data = (unsigned char *)block.data + dtype_size(f->type);
    return p;
}

/* Heads 2 bytes past alignment, which cuDNN alone (SDXLD_CUDA_ATTENTION=cudnn) must either
 * compute right or refuse, saying what it refused. Refused, the default must run them on our
 * kernels, with one warning: the refusal is kept, so a second call neither tries cuDNN again
 * nor warns again. (cuDNN 9 on an H100 takes them, so there the fall-back is not reached.) */
static void test_attention_misaligned(void **state)
{
    fixture *f = need_gpu(state);
    if (f->type == DTYPE_F32) {
        print_message("F32 never goes to cuDNN: nothing to check\n");
        skip();
    }
    arena_mark hm = arena_get_mark(&f->host), dm = arena_get_mark(&f->device);
    sdxl_error err;
    int64_t tq = 1024, width = 640;
    float *xh = random_values(f, (size_t)(tq * width), 1.0f);
    pair x = misaligned(f, tq, width, xh);
    pair y = output(f, 3, (int64_t[]){1, tq, width});
    expect_ok(backend_attention(f->cpu, &x.c, &x.c, &x.c, 10, false, &y.c, &err), &err);

    backend *cudnn = attention_backend(f, "cudnn");
    sdxl_status st = backend_attention(cudnn, &x.g, &x.g, &x.g, 10, false, &y.g, &err);
    backend_synchronize(cudnn, NULL);
    backend_destroy(cudnn);
    if (st == SDXL_OK) {
        expect_close(f, "attention 2 bytes past alignment, cuDNN", &y);
        print_message("cuDNN took heads 2 bytes past alignment: no fall-back to check here\n");
        free(xh);
        reset(f, hm, dm);
        return;
    }
    assert_int_equal(st, SDXL_ERR_UNSUPPORTED);
    if (!strstr(err.message, "does not take"))
        fail_msg("the refusal does not say what was refused: %s", err.message);
    print_message("cuDNN alone refuses it: %s\n", err.message);

    attention_run run = attention_run_begin(f, NULL);
    for (int i = 0; i < 2; i++) {
        expect_ok(backend_attention(f->gpu, &x.g, &x.g, &x.g, 10, false, &y.g, &err), &err);
        expect_close(f, "attention refused by cuDNN, by default", &y);
    }
    assert_int_equal(lines_logged(run.log, "our kernel runs it instead"), 1);
    assert_int_equal(lines_logged(run.log, CUDNN_PLAN_LOGGED), 0);
    attention_run_end(f, &run);
    free(xh);
    reset(f, hm, dm);
}

/* ---- recorded graphs ---------------------------------------------------------------------- */

/* conv 3x3 -> group norm + SiLU -> attention, on fixed tensors (what a graph replays). */
static void run_block(backend *be, const tensor *x, const tensor *w, const tensor *gamma,
                      tensor *c, tensor *h, tensor *y)
{
    sdxl_error err;
    conv2d_params p = {1, 1, 1, 1, 1};
    expect_ok(backend_conv2d(be, x, w, NULL, &p, c, &err), &err);
    expect_ok(backend_group_norm(be, c, 32, 1e-5f, gamma, gamma, true, h, &err), &err);
    tensor tokens, out;
    int64_t n = x->shape[0], t = x->shape[1] * x->shape[2], ch = w->shape[0];
    expect_ok(tensor_reshape(&tokens, h, 3, (int64_t[]){n, t, ch}, &err), &err);
    expect_ok(tensor_reshape(&out, y, 3, (int64_t[]){n, t, ch}, &err), &err);
    expect_ok(backend_attention(be, &tokens, &tokens, &tokens, (int)(ch / 64), false, &out, &err),
              &err);
}

/* A recorded graph replays the ops on whatever the inputs hold at launch, to the same bits as
 * running them; host copies are refused while recording and the backend works on after a
 * spoilt recording; a graph whose scratch was replaced is stale and refused. */
static void test_record(void **state)
{
    fixture *f = need_gpu(state);
    sdxl_error err;
    backend_params bp = backend_default_params();
    bp.compute_type = f->type;
    backend *be; /* a fresh backend: its scratch starts empty, so growing it is certain */
    expect_ok(backend_create("cuda", &bp, &be, &err), &err);
    assert_true(backend_can_record(be));
    arena_mark dm = arena_get_mark(&f->device);
    int64_t shape[4] = {2, 16, 16, 128};
    size_t n = numel_of(4, shape);
    float *wh = random_values(f, 128 * 128 * 9, 0.03f), *gh = random_values(f, 128, 1.0f);
    tensor w, gamma, x, c, h, y, y_direct;
    expect_ok(backend_weight_upload(be, TENSOR_WEIGHT_CONV, 4, (int64_t[]){128, 128, 3, 3},
                                    DTYPE_F32, wh, &w, &err),
              &err);
    expect_ok(backend_weight_upload(be, TENSOR_WEIGHT_VECTOR, 1, (int64_t[]){128}, DTYPE_F32, gh,
                                    &gamma, &err),
              &err);
    float *x1 = random_values(f, n, 1.0f), *x2 = random_values(f, n, 1.0f);
    x = gpu_tensor(f, 4, shape, x1);
    expect_ok(tensor_alloc(&c, &f->device, f->type, 4, shape, &err), &err);
    expect_ok(tensor_alloc(&h, &f->device, f->type, 4, shape, &err), &err);
    expect_ok(tensor_alloc(&y, &f->device, f->type, 4, shape, &err), &err);
    expect_ok(tensor_alloc(&y_direct, &f->device, f->type, 4, shape, &err), &err);

    run_block(be, &x, &w, &gamma, &c, &h, &y); /* plans and scratch */
    backend_graph *g = NULL;
    expect_ok(backend_record_begin(be, &err), &err);
    assert_int_equal(backend_tensor_write(be, &x, DTYPE_F32, x2, n, &err), SDXL_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "recording"));
    assert_int_equal(backend_record_end(be, NULL, &err), SDXL_OK); /* spoilt: dropped */

    expect_ok(backend_record_begin(be, &err), &err);
    run_block(be, &x, &w, &gamma, &c, &h, &y);
    expect_ok(backend_record_end(be, &g, &err), &err);
    assert_non_null(g);
    assert_true(backend_graph_current(be, g));

    /* new inputs: the replay and the direct run agree bit for bit */
    expect_ok(backend_tensor_write(be, &x, DTYPE_F32, x2, n, &err), &err);
    expect_ok(backend_graph_launch(be, g, &err), &err);
    void *replayed = read_bits_on(be, &y);
    run_block(be, &x, &w, &gamma, &c, &h, &y_direct);
    void *direct = read_bits_on(be, &y_direct);
    assert_memory_equal(replayed, direct, tensor_nbytes(&y));
    printf("  %-4s %-56s same bits\n", dtype_name(f->type), "recorded conv + norm + attention");

    /* a much larger one-head attention (score blocks in scratch, in every type) replaces the
     * scratch: the graph goes stale */
    int64_t big[3] = {1, 8192, 512};
    tensor bx, by;
    float *bh = random_values(f, numel_of(3, big), 1.0f);
    bx = gpu_tensor(f, 3, big, bh);
    expect_ok(tensor_alloc(&by, &f->device, f->type, 3, big, &err), &err);
    expect_ok(backend_attention(be, &bx, &bx, &bx, 1, false, &by, &err), &err);
    assert_false(backend_graph_current(be, g));
    assert_int_equal(backend_graph_launch(be, g, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "stale"));

    backend_graph_free(be, g);
    backend_weight_free(be, &w);
    backend_weight_free(be, &gamma);
    backend_destroy(be);
    free(replayed);
    free(direct);
    free(bh);
    free(x1);
    free(x2);
    free(wh);
    free(gh);
    arena_reset_to(&f->device, dm);
}

/* A second backend computes in its own type on its own queue, beside the first: where one
 * reads what the other wrote, backend_wait_for orders them. Each writer's work is long (a
 * chain of 32 passes over 8M values, about a millisecond), so that a reader that did not wait
 * would read the tensor half made. */
static void test_wait_for(void **state)
{
    fixture *f = need_gpu(state);
    sdxl_error err;
    backend_params bp = backend_default_params();
    bp.compute_type = f->type == DTYPE_BF16 ? DTYPE_F32 : DTYPE_BF16;
    backend *other;
    expect_ok(backend_create("cuda", &bp, &other, &err), &err);
    assert_int_equal(backend_compute_type(other), bp.compute_type);
    arena_mark dm = arena_get_mark(&f->device);
    size_t n = 1 << 23;
    float *xh = random_values(f, n, 4.0f);
    const int64_t *shape = (int64_t[]){(int64_t)n};
    tensor x = gpu_tensor(f, 1, shape, xh), y, z, w, v1, v2;
    expect_ok(tensor_alloc(&y, &f->device, f->type, 1, shape, &err), &err);
    expect_ok(tensor_alloc(&z, &f->device, f->type, 1, shape, &err), &err);
    expect_ok(tensor_alloc(&w, &f->device, bp.compute_type, 1, shape, &err), &err);
    expect_ok(tensor_alloc(&v1, &f->device, f->type, 1, shape, &err), &err);
    expect_ok(tensor_alloc(&v2, &f->device, f->type, 1, shape, &err), &err);

    /* f->gpu makes y; other copies it to z after waiting: z must be the finished y. */
    expect_ok(backend_scale(f->gpu, &x, 1.0f, 0.5f, &y, &err), &err);
    for (int i = 0; i < 32; i++)
        expect_ok(backend_scale(f->gpu, &y, 1.0f, 0.5f, &y, &err), &err);
    expect_ok(backend_wait_for(other, f->gpu, &err), &err);
    expect_ok(backend_copy(other, &y, &z, &err), &err);
    expect_ok(backend_synchronize(other, &err), &err);
    void *yb = read_bits(f, &y), *zb = read_bits(f, &z);
    assert_memory_equal(yb, zb, tensor_nbytes(&y));
    free(yb);
    free(zb);

    /* The other way: other makes w in its type; f->gpu converts it after waiting. */
    expect_ok(backend_convert(other, &x, &w, &err), &err);
    for (int i = 0; i < 32; i++)
        expect_ok(backend_scale(other, &w, 1.0f, 0.5f, &w, &err), &err);
    expect_ok(backend_wait_for(f->gpu, other, &err), &err);
    expect_ok(backend_convert(f->gpu, &w, &v1, &err), &err);
    expect_ok(backend_synchronize(f->gpu, &err), &err);
    expect_ok(backend_convert(f->gpu, &w, &v2, &err), &err); /* w long finished by now */
    void *b1 = read_bits(f, &v1), *b2 = read_bits(f, &v2);
    assert_memory_equal(b1, b2, tensor_nbytes(&v1));
    free(b1);
    free(b2);

    /* Only backends of one kind share work. */
    assert_int_equal(backend_wait_for(f->gpu, f->cpu, &err), SDXL_ERR_INVALID_ARGUMENT);
    free(xh);
    backend_destroy(other);
    arena_reset_to(&f->device, dm);
}

/* ---- the scheduler's ops ------------------------------------------------------------------ */

/* An F32 tensor on the GPU, whatever the compute type (the ops marked "F32 too"). */
static tensor gpu_f32(fixture *f, int ndim, const int64_t *shape, const float *host)
{
    sdxl_error err;
    tensor t;
    expect_ok(tensor_alloc(&t, &f->device, DTYPE_F32, ndim, shape, &err), &err);
    expect_ok(backend_tensor_write(f->gpu, &t, DTYPE_F32, host, numel_of(ndim, shape), &err), &err);
    return t;
}

/* F32 on both backends: the GPU's bits must be the cpu's (ops without exp), or else within
 * CUDA's expf (2 ulp) of them: max |cuda − cpu| / max |cpu| at most 1e-6. NaN must meet NaN. */
static void expect_f32_match(fixture *f, const char *what, const tensor *c, const tensor *g,
                             bool bitwise)
{
    size_t n = (size_t)tensor_numel(c);
    float *want = bt_read(f->cpu, c), *got = read_bits(f, g);
    size_t differ = 0;
    double worst = 0.0, scale = 0.0;
    for (size_t i = 0; i < n; i++) {
        differ += memcmp(&got[i], &want[i], sizeof(float)) != 0;
        if (isnan(want[i]) != isnan(got[i]))
            worst = INFINITY;
        else if (!isnan(want[i])) {
            worst = fmax(worst, fabs((double)got[i] - want[i]));
            scale = fmax(scale, fabs((double)want[i]));
        }
    }
    double rel = scale > 0.0 ? worst / scale : worst;
    printf("  %-4s %-56s %zu of %zu differ, rel error %.3g\n", dtype_name(f->type), what, differ,
           n, rel);
    if (bitwise ? differ != 0 : !(rel <= 1e-6))
        fail_msg("%s %s: %zu elements differ, relative error %g", dtype_name(f->type), what,
                 differ, rel);
    free(want);
    free(got);
}

/* Bit for bit, except that a NaN meets any NaN: CUDA's conversions give their canonical NaN
 * (0x7fff, 0x7fffffff) where the host keeps the sign and payload, and IEEE gives the payload no
 * meaning. */
static void expect_same_bits(dtype type, const void *got, const void *want, size_t n)
{
    size_t es = dtype_size(type);
    float *g = malloc(n * sizeof(float)), *w = malloc(n * sizeof(float));
    assert_non_null(g);
    assert_non_null(w);
    dtype_to_f32(type, got, g, n);
    dtype_to_f32(type, want, w, n);
    for (size_t i = 0; i < n; i++)
        if (!(isnan(g[i]) && isnan(w[i])))
            assert_memory_equal((const char *)got + i * es, (const char *)want + i * es, es);
    free(g);
    free(w);
}

/* The scheduler's arithmetic at a latent shape (1024x1024, batch 2): in F32 on every backend,
 * where the GPU's bits must be the cpu's (IEEE roundings, no fused multiply-add, true
 * division), and in the compute type under its tolerance. Then conversions: F32 and the other
 * half type into the compute type, rounded to nearest even exactly as the host rounds, and
 * back into F32 exactly (a NaN may come back as another NaN). */
static void test_scheduler_ops(void **state)
{
    fixture *f = need_gpu(state);
    arena_mark hm = arena_get_mark(&f->host), dm = arena_get_mark(&f->device);
    sdxl_error err;
    int64_t shape[4] = {2, 128, 128, 4};
    size_t n = numel_of(4, shape);
    float *xh = bt_random(&f->rng, n, 8.0f), *zh = bt_random(&f->rng, n, 3.0f);
    float *lh = bt_random(&f->rng, n, 40.0f);
    xh[0] = -0.0f;
    lh[0] = NAN;
    lh[1] = INFINITY;
    lh[2] = -INFINITY;
    tensor xc = bt_input(f->cpu, &f->host, 4, shape, xh);
    tensor zc = bt_input(f->cpu, &f->host, 4, shape, zh);
    tensor lc = bt_input(f->cpu, &f->host, 4, shape, lh);
    tensor yc = bt_output(f->cpu, &f->host, 4, shape);
    tensor xg = gpu_f32(f, 4, shape, xh), zg = gpu_f32(f, 4, shape, zh);
    tensor lg = gpu_f32(f, 4, shape, lh), yg = gpu_f32(f, 4, shape, lh);
    expect_ok(backend_add_scaled(f->cpu, 1.0f, &xc, -0.2928932f, &zc, &yc, &err), &err);
    expect_ok(backend_add_scaled(f->gpu, 1.0f, &xg, -0.2928932f, &zg, &yg, &err), &err);
    expect_f32_match(f, "F32 add_scaled(1, x, b, z) [2, 128, 128, 4]", &yc, &yg, true);
    expect_ok(backend_scale(f->cpu, &xc, 0.13025f, -0.0f, &yc, &err), &err);
    expect_ok(backend_scale(f->gpu, &xg, 0.13025f, -0.0f, &yg, &err), &err);
    expect_f32_match(f, "F32 scale(x, s, -0)", &yc, &yg, true);
    expect_ok(backend_div_scalar(f->cpu, &xc, 1.0625137f, &yc, &err), &err);
    expect_ok(backend_div_scalar(f->gpu, &xg, 1.0625137f, &yg, &err), &err);
    expect_f32_match(f, "F32 div_scalar", &yc, &yg, true);
    expect_ok(backend_add(f->cpu, &xc, &zc, &yc, &err), &err);
    expect_ok(backend_add(f->gpu, &xg, &zg, &yg, &err), &err);
    expect_f32_match(f, "F32 add", &yc, &yg, true);
    expect_ok(backend_mul(f->cpu, &xc, &zc, &yc, &err), &err);
    expect_ok(backend_mul(f->gpu, &xg, &zg, &yg, &err), &err);
    expect_f32_match(f, "F32 mul", &yc, &yg, true);
    expect_ok(backend_clamp(f->cpu, &lc, -30.0f, 20.0f, &yc, &err), &err);
    expect_ok(backend_clamp(f->gpu, &lg, -30.0f, 20.0f, &yg, &err), &err);
    expect_f32_match(f, "F32 clamp(logvar, -30, 20), NaN and inf among them", &yc, &yg, true);
    /* the clamped log-variance, as the VAE's sample takes it */
    expect_ok(backend_gaussian_sample(f->cpu, &xc, &yc, &zc, &yc, &err), &err);
    expect_ok(backend_gaussian_sample(f->gpu, &xg, &yg, &zg, &yg, &err), &err);
    expect_f32_match(f, "F32 gaussian_sample (in place on logvar)", &yc, &yg, false);

    /* The same in the compute type, inputs exactly representable in it. */
    round_to_type(f->type, xh, n);
    round_to_type(f->type, zh, n);
    for (size_t i = 0; i < n; i++) /* finite this time: lh[0..2] held NaN and ±inf */
        lh[i] = isnan(lh[i]) ? 0.0f : fminf(fmaxf(lh[i], -12.0f), 12.0f);
    round_to_type(f->type, lh, n);
    pair x = input(f, 4, shape, xh), z = input(f, 4, shape, zh), l = input(f, 4, shape, lh);
    pair y = output(f, 4, shape);
    expect_ok(backend_div_scalar(f->cpu, &x.c, 0.13025f, &y.c, &err), &err);
    expect_ok(backend_div_scalar(f->gpu, &x.g, 0.13025f, &y.g, &err), &err);
    expect_close(f, "div_scalar [2, 128, 128, 4]", &y);
    expect_ok(backend_clamp(f->cpu, &x.c, -2.0f, 3.0f, &y.c, &err), &err);
    expect_ok(backend_clamp(f->gpu, &x.g, -2.0f, 3.0f, &y.g, &err), &err);
    expect_close(f, "clamp", &y);
    expect_ok(backend_gaussian_sample(f->cpu, &x.c, &l.c, &z.c, &y.c, &err), &err);
    expect_ok(backend_gaussian_sample(f->gpu, &x.g, &l.g, &z.g, &y.g, &err), &err);
    expect_close(f, "gaussian_sample", &y);

    /* Conversions: F32 -> compute type -> F32, and the other half type -> compute type. */
    float *wide = bt_random(&f->rng, n, 70000.0f);
    wide[0] = NAN;
    wide[1] = -0.0f;
    wide[2] = 1e-7f;
    tensor w32 = gpu_f32(f, 4, shape, wide), narrow, back = gpu_f32(f, 4, shape, wide);
    expect_ok(tensor_alloc(&narrow, &f->device, f->type, 4, shape, &err), &err);
    expect_ok(backend_convert(f->gpu, &w32, &narrow, &err), &err);
    void *want = malloc(n * sizeof(float)), *got = read_bits(f, &narrow);
    assert_non_null(want);
    dtype_from_f32(f->type, wide, want, n);
    expect_same_bits(f->type, got, want, n);
    free(got);
    expect_ok(backend_convert(f->gpu, &narrow, &back, &err), &err);
    got = read_bits(f, &back);
    float *round_trip = malloc(n * sizeof(float));
    assert_non_null(round_trip);
    dtype_to_f32(f->type, want, round_trip, n);
    expect_same_bits(DTYPE_F32, got, round_trip, n);
    free(got);
    dtype other_half = f->type == DTYPE_F16 ? DTYPE_BF16 : DTYPE_F16;
    tensor other;
    expect_ok(tensor_alloc(&other, &f->device, other_half, 4, shape, &err), &err);
    dtype_from_f32(other_half, wide, want, n);
    expect_ok(backend_tensor_write(f->gpu, &other, other_half, want, n, &err), &err);
    expect_ok(backend_convert(f->gpu, &other, &narrow, &err), &err);
    dtype_to_f32(other_half, want, round_trip, n);
    dtype_from_f32(f->type, round_trip, want, n);
    got = read_bits(f, &narrow);
    expect_same_bits(f->type, got, want, n);
    printf("  %-4s convert F32 -> %s -> F32 and %s -> %s: exact (NaN as NaN)\n",
           dtype_name(f->type), dtype_name(f->type), dtype_name(other_half),
           dtype_name(f->type));
    free(got);
    free(want);
    free(round_trip);
    free(wide);
    free(xh);
    free(zh);
    free(lh);
    reset(f, hm, dm);
}

/* The pictures' two crossings: every byte to [-1, 1] (in the compute type and F32), and
 * floats back to bytes, ties, NaN and infinities among them: the cpu's bytes exactly. */
static void test_pixel_ops(void **state)
{
    fixture *f = need_gpu(state);
    arena_mark hm = arena_get_mark(&f->host), dm = arena_get_mark(&f->device);
    sdxl_error err;
    int64_t shape[4] = {1, 96, 128, 3};
    size_t n = numel_of(4, shape);
    uint8_t *bytes = malloc(n), *want = malloc(n), *got = malloc(n);
    float *unit = malloc(n * sizeof(float)), *x = bt_random(&f->rng, n, 1.3f);
    assert_true(bytes && want && got && unit);
    for (size_t i = 0; i < n; i++)
        bytes[i] = (uint8_t)(i * 37 % 256);
    bt_normalize_pixels(f->cpu, bytes, n, unit);
    const dtype types[2] = {DTYPE_F32, f->type};
    for (int t = 0; t < 2; t++) {
        tensor pixels, y;
        expect_ok(tensor_alloc(&pixels, &f->device, DTYPE_U8, 4, shape, &err), &err);
        expect_ok(tensor_alloc(&y, &f->device, types[t], 4, shape, &err), &err);
        expect_ok(backend_tensor_write(f->gpu, &pixels, DTYPE_U8, bytes, n, &err), &err);
        expect_ok(backend_normalize_pixels(f->gpu, &pixels, &y, &err), &err);
        void *expected = malloc(n * sizeof(float)), *bits = read_bits(f, &y);
        assert_non_null(expected);
        dtype_from_f32(types[t], unit, expected, n);
        assert_memory_equal(bits, expected, n * dtype_size(types[t]));
        free(bits);
        free(expected);

        /* Back: values the type holds exactly, so both sides start from the same floats. */
        x[0] = NAN;
        x[1] = INFINITY;
        x[2] = -INFINITY;
        x[3] = (128.5f / 255.0f - 0.5f) * 2.0f;
        x[4] = 0.0f;
        round_to_type(types[t], x, n);
        bt_denormalize_pixels(f->cpu, x, n, want);
        tensor image = types[t] == DTYPE_F32 ? gpu_f32(f, 4, shape, x) : gpu_tensor(f, 4, shape, x);
        expect_ok(backend_denormalize_pixels(f->gpu, &image, &pixels, &err), &err);
        expect_ok(backend_tensor_read(f->gpu, &pixels, DTYPE_U8, got, n, &err), &err);
        assert_memory_equal(got, want, n);
        printf("  %-4s normalize_pixels and denormalize_pixels %s: exact\n", dtype_name(f->type),
               dtype_name(types[t]));
    }
    free(bytes);
    free(want);
    free(got);
    free(unit);
    free(x);
    reset(f, hm, dm);
}

/* ---- fused products: residual in the epilogue, grouped projections ------------------------- */

/* A check of linear_add (groups 0: one weight, y [b, t, n] starting as a residual) or of
 * linear_groups (y [groups, b, t, n]): x [b, t, k] and the stacked weights [max(groups, 1)·n, k]
 * with their biases, on both backends. */
typedef struct fused_case {
    int64_t b, t, k, n;
    int groups;
    float *xh, *wh, *bh, *rh; /* rh: the residual (linear_add) */
    pair x, w, bias;
    arena_mark hm, dm;
} fused_case;

static fused_case fused_case_make(fixture *f, int64_t b, int64_t t, int64_t k, int64_t n,
                                  int groups)
{
    fused_case c = {.b = b, .t = t, .k = k, .n = n, .groups = groups};
    int64_t rows = (groups > 0 ? groups : 1) * n;
    c.hm = arena_get_mark(&f->host);
    c.dm = arena_get_mark(&f->device);
    c.xh = random_values(f, (size_t)(b * t * k), 1.0f);
    c.wh = random_values(f, (size_t)(rows * k), 1.0f / sqrtf((float)k));
    c.bh = random_values(f, (size_t)rows, 0.5f);
    c.rh = random_values(f, (size_t)(b * t * n), 2.0f);
    c.x = input(f, 3, (int64_t[]){b, t, k}, c.xh);
    c.w = weight(f, TENSOR_WEIGHT_LINEAR, 2, (int64_t[]){rows, k}, c.wh);
    c.bias = weight(f, TENSOR_WEIGHT_VECTOR, 1, (int64_t[]){rows}, c.bh);
    return c;
}

static void fused_case_free(fixture *f, fused_case *c)
{
    weight_free(f, &c->w);
    weight_free(f, &c->bias);
    free(c->xh);
    free(c->wh);
    free(c->bh);
    free(c->rh);
    reset(f, c->hm, c->dm);
}

/* The case's op on x of `images` images into y, made here: [images, t, n] holding the residual
 * of the first images, or [groups, images, t, n] filled with NaN. */
static tensor fused_run(fixture *f, backend *be, const fused_case *c, const tensor *x,
                        const tensor *w, const tensor *bias, int64_t images)
{
    sdxl_error err;
    tensor y;
    if (c->groups == 0) {
        int64_t shape[3] = {images, c->t, c->n};
        y = be == f->gpu ? gpu_tensor(f, 3, shape, c->rh)
                         : bt_input(be, &f->host, 3, shape, c->rh);
        expect_ok(backend_linear_add(be, x, w, bias, &y, &err), &err);
        return y;
    }
    int64_t shape[4] = {c->groups, images, c->t, c->n};
    size_t n = numel_of(4, shape);
    float *nan = malloc(n * sizeof(float));
    assert_non_null(nan);
    for (size_t i = 0; i < n; i++)
        nan[i] = NAN;
    y = be == f->gpu ? gpu_tensor(f, 4, shape, nan) : bt_output(be, &f->host, 4, shape);
    free(nan);
    expect_ok(backend_linear_groups(be, x, w, bias, c->groups, &y, &err), &err);
    return y;
}

/* The GPU against the cpu, then on the GPU: a second run gives the same bits, and the first
 * image alone the bits it gets in the batch (linear_groups's outputs lie b·t·n apart in the
 * batch, t·n alone: another plan, the same algorithm). The product runs first on the GPU at
 * the case's shape, so its algorithm is chosen by timing on it (for linear_add into scratch,
 * not over the residual). */
static void check_fused(fixture *f, int64_t b, int64_t t, int64_t k, int64_t n, int groups,
                        bool bias)
{
    fused_case c = fused_case_make(f, b, t, k, n, groups);
    const tensor *bg = bias ? &c.bias.g : NULL;
    pair y;
    y.g = fused_run(f, f->gpu, &c, &c.x.g, &c.w.g, bg, b);
    y.c = fused_run(f, f->cpu, &c, &c.x.c, &c.w.c, bias ? &c.bias.c : NULL, b);
    char what[96];
    snprintf(what, sizeof(what), "%s [%lld, %lld, %lld] -> %d x %lld bias %d",
             groups ? "linear_groups" : "linear_add", (long long)b, (long long)t, (long long)k,
             groups ? groups : 1, (long long)n, bias);
    expect_close(f, what, &y);

    unsigned char *batch = read_bits(f, &y.g);
    tensor again = fused_run(f, f->gpu, &c, &c.x.g, &c.w.g, bg, b), x0;
    unsigned char *second = read_bits(f, &again);
    if (memcmp(batch, second, tensor_nbytes(&again)) != 0)
        fail_msg("%s %s: two runs on the same inputs differ", dtype_name(f->type), what);
    sdxl_error err;
    expect_ok(tensor_view_outer(&x0, &c.x.g, 0, 1, &err), &err);
    tensor alone = fused_run(f, f->gpu, &c, &x0, &c.w.g, bg, 1);
    unsigned char *bits = read_bits(f, &alone);
    size_t image_bytes = tensor_nbytes(&alone) / (size_t)(groups ? groups : 1);
    for (int g = 0; g < (groups ? groups : 1); g++)
        if (memcmp(batch + (size_t)(g * b) * image_bytes, bits + (size_t)g * image_bytes,
                   image_bytes) != 0)
            fail_msg("%s %s: image 0 differs alone and in a batch of %lld", dtype_name(f->type),
                     what, (long long)b);
    free(bits);
    free(second);
    free(batch);
    fused_case_free(f, &c);
}

static void test_linear_fused(void **state)
{
    fixture *f = need_gpu(state);
    check_fused(f, 1, 4096, 640, 640, 0, true);   /* to_out.0 + residual at 512², level 1 */
    check_fused(f, 2, 1024, 5120, 1280, 0, true); /* ff.net.2 + residual at 512², level 2 */
    check_fused(f, 2, 77, 1280, 1280, 0, true);   /* bigG out_proj + residual */
    check_fused(f, 2, 256, 1280, 1280, 3, false); /* attn1 q, k, v at 512², level 2 */
    check_fused(f, 2, 77, 2048, 1280, 2, false);  /* attn2 k, v of the text */
    check_fused(f, 2, 77, 1280, 1280, 3, true);   /* bigG k, v, q with biases */
    check_fused(f, 1, 77, 768, 768, 3, true);     /* CLIP-L */
}

/* ---- creation ------------------------------------------------------------------------------ */

/* Where the backend cannot run, creating it fails cleanly and says why; where it can, it
 * computes in the type asked for and refuses types it cannot compute in. */
static void test_create(void **state)
{
    sdxl_error err;
    backend *be = NULL;
    backend_params p = backend_default_params();
    p.compute_type = DTYPE_BF16;
    sdxl_status st = backend_create("cuda", &p, &be, &err);
    if (no_gpu[0]) {
        assert_null(be);
        assert_true(st == SDXL_ERR_UNSUPPORTED || st == SDXL_ERR_BACKEND);
        bool says_why = strstr(err.message, "no CUDA device") ||
                        strstr(err.message, "not available in this build");
        if (!says_why)
            fail_msg("unclear refusal: %s", err.message);
        print_message("no GPU here, refused as it should be: %s\n", err.message);
        return;
    }
    expect_ok(st, &err);
    assert_string_equal(backend_name(be), "cuda");
    assert_int_equal(backend_compute_type(be), DTYPE_BF16);
    backend_destroy(be);
    p.compute_type = DTYPE_I32;
    assert_int_equal(backend_create("cuda", &p, &be, &err), SDXL_ERR_UNSUPPORTED);
    assert_null(be);
    p.compute_type = DTYPE_F16;
    p.device = 1000;
    assert_int_equal(backend_create("cuda", &p, &be, &err), SDXL_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "no CUDA device"));
}

/* SDXLD_CUDA_ATTENTION is read before the device is looked for, so this runs without a GPU
 * too: a bad value is refused, naming the variable, the value and the accepted values; the
 * accepted values are not refused for their own sake. */
static void test_attention_setting(void **state)
{
    if (strstr(no_gpu, "not available in this build")) {
        print_message("the cuda backend is not built here: nothing to check\n");
        skip();
    }
    sdxl_error err;
    backend *be = NULL;
    backend_params p = backend_default_params();
    assert_int_equal(setenv("SDXLD_CUDA_ATTENTION", "cuDNN", 1), 0);
    sdxl_status st = backend_create("cuda", &p, &be, &err);
    unsetenv("SDXLD_CUDA_ATTENTION");
    assert_int_equal(st, SDXL_ERR_INVALID_ARGUMENT);
    assert_null(be);
    const char *said[] = {"SDXLD_CUDA_ATTENTION", "\"cuDNN\"", "\"auto\"", "\"flash\"",
                          "\"cudnn\""};
    for (size_t i = 0; i < sizeof(said) / sizeof(said[0]); i++)
        if (!strstr(err.message, said[i]))
            fail_msg("the refusal does not say %s: %s", said[i], err.message);
    print_message("refused as it should be: %s\n", err.message);

    const char *accepted[] = {"auto", "flash", "cudnn"};
    for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
        assert_int_equal(setenv("SDXLD_CUDA_ATTENTION", accepted[i], 1), 0);
        st = backend_create("cuda", &p, &be, &err);
        unsetenv("SDXLD_CUDA_ATTENTION");
        if (no_gpu[0]) {
            assert_int_not_equal(st, SDXL_ERR_INVALID_ARGUMENT);
            assert_null(be);
            continue;
        }
        expect_ok(st, &err);
        backend_destroy(be);
    }
}

#define GPU_TESTS                                                                                  \
    cmocka_unit_test(test_write_read), cmocka_unit_test(test_linear),                              \
        cmocka_unit_test(test_matmul), cmocka_unit_test(test_conv2d),                              \
        cmocka_unit_test(test_conv2d_bias_plans),                                                  \
        cmocka_unit_test(test_group_norm), cmocka_unit_test(test_layer_norm),                      \
        cmocka_unit_test(test_softmax), cmocka_unit_test(test_attention),                          \
        cmocka_unit_test(test_attention_flash), cmocka_unit_test(test_attention_cudnn),           \
        cmocka_unit_test(test_attention_misaligned),                                               \
        cmocka_unit_test(test_activations), cmocka_unit_test(test_arithmetic),                     \
        cmocka_unit_test(test_layout), cmocka_unit_test(test_same_bits),                           \
        cmocka_unit_test(test_record), cmocka_unit_test(test_wait_for),                         \
        cmocka_unit_test(test_scheduler_ops), cmocka_unit_test(test_linear_fused),           \
        cmocka_unit_test(test_pixel_ops)

int main(void)
{
    backend *probe = NULL;
    sdxl_error err;
    backend_params p = backend_default_params();
    if (backend_create("cuda", &p, &probe, &err) == SDXL_OK)
        backend_destroy(probe);
    else
        snprintf(no_gpu, sizeof(no_gpu), "%s", err.message[0] ? err.message : "(no message)");
    if (no_gpu[0])
        printf("test_cuda_ops: the GPU tests are skipped, the cuda backend is not available "
               "here: %s\n",
               no_gpu);

    const struct CMUnitTest create[] = {cmocka_unit_test(test_create),
                                        cmocka_unit_test(test_attention_setting)};
    const struct CMUnitTest ops[] = {GPU_TESTS};
    int failed = cmocka_run_group_tests_name("cuda backend creation", create, NULL, NULL);
    failed += cmocka_run_group_tests_name("cuda ops F32", ops, setup_f32, group_teardown);
    failed += cmocka_run_group_tests_name("cuda ops F16", ops, setup_f16, group_teardown);
    failed += cmocka_run_group_tests_name("cuda ops BF16", ops, setup_bf16, group_teardown);
    if (failed == 0 && no_gpu[0]) {
        printf("test_cuda_ops: SKIPPED, no usable GPU: %s\n", no_gpu);
        return EXIT_SKIPPED;
    }
    return failed;
}
