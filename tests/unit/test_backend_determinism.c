/*
 * test_backend_determinism.c — the cpu backend's two reproducibility promises, checked bit
 * for bit: the same inputs give the same outputs whatever the thread count (1, 2, 3), and
 * each image of a batch gets exactly the bits it gets when run alone.
 *
 * The shapes are chosen so that the work is cut into many tasks, with remainders (token counts
 * and pixel counts that are not multiples of any block), and images whose rows start at odd
 * offsets in the batch: where a BLAS kernel's summation order depends on a row's place in its
 * call, an accurate but irreproducible kernel shows here.
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
#include "support/backend_test.h"

#define OPS 12
/* The side of the image for the Winograd convolution. */
#define BIG_H 67
#define BIG_W 65

/* The results of one run of every op, each as host floats. */
typedef struct results {
    float *out[OPS];
    size_t n[OPS];
} results;

static void keep(results *r, int i, backend *be, const tensor *t)
{
    r->out[i] = bt_read(be, t);
    r->n[i] = (size_t)tensor_numel(t);
    /* Outputs start as NaN: equal bits must not be two unwritten outputs. */
    for (size_t j = 0; j < r->n[i]; j++)
        if (!isfinite(r->out[i][j]))
            fail_msg("op %d left element %zu unwritten or not finite", i, j);
}

static void results_free(results *r)
{
    for (int i = 0; i < OPS; i++)
        free(r->out[i]);
}

static void ok(sdxl_status st, const sdxl_error *err)
{
    if (st != SDXL_OK)
        fail_msg("%s: %s", sdxl_status_name(st), err->message);
}

/* Random weights and inputs for `batch` images; image i's inputs do not depend on batch. */
typedef struct workload {
    int64_t batch, h, w, c, t, k, n, heads;
    float *img, *tokens, *ctx, *temb, *long_seq, *big;
    float *w_lin, *b_lin, *w_conv, *b_conv, *gamma, *beta;
} workload;

static workload workload_make(void)
{
    workload wl = {.batch = 3, .h = 19, .w = 23, .c = 24, .t = 100, .k = 96, .n = 256,
                   .heads = 4};
    uint64_t rng = 99;
    wl.img = bt_random(&rng, (size_t)(wl.batch * wl.h * wl.w * wl.c), 2.0f);
    wl.tokens = bt_random(&rng, (size_t)(wl.batch * wl.t * wl.k), 1.0f);
    wl.ctx = bt_random(&rng, (size_t)(wl.batch * 77 * wl.k), 1.0f);
    wl.temb = bt_random(&rng, (size_t)(wl.batch * wl.c), 1.0f);
    wl.long_seq = bt_random(&rng, (size_t)(wl.batch * 1000 * 8), 2.0f);
    wl.big = bt_random(&rng, (size_t)(wl.batch * BIG_H * BIG_W * wl.c), 2.0f);
    wl.w_lin = bt_random(&rng, (size_t)(wl.n * wl.k), 0.1f);
    wl.b_lin = bt_random(&rng, (size_t)wl.n, 0.1f);
    wl.w_conv = bt_random(&rng, (size_t)(wl.c * wl.c * 9), 0.07f);
    wl.b_conv = bt_random(&rng, (size_t)wl.c, 0.1f);
    wl.gamma = bt_random(&rng, (size_t)wl.c, 1.0f);
    wl.beta = bt_random(&rng, (size_t)wl.c, 1.0f);
    return wl;
}

static void workload_free(workload *wl)
{
    free(wl->img);
    free(wl->tokens);
    free(wl->ctx);
    free(wl->temb);
    free(wl->long_seq);
    free(wl->big);
    free(wl->w_lin);
    free(wl->b_lin);
    free(wl->w_conv);
    free(wl->b_conv);
    free(wl->gamma);
    free(wl->beta);
}

/* Runs every op on images first .. first+count-1 of the workload. */
static results run_ops(const workload *wl, int threads, int64_t first, int64_t count)
{
    sdxl_error err;
    results r;
    memset(&r, 0, sizeof(r));
    backend *be = bt_backend("cpu", threads);
    arena a;
    bt_arena(&a, 32u << 20);
    int64_t h = wl->h, w = wl->w, c = wl->c, t = wl->t, k = wl->k, n = wl->n;
    size_t img_size = (size_t)(h * w * c), tok_size = (size_t)(t * k);

    tensor img = bt_input(be, &a, 4, (int64_t[]){count, h, w, c}, wl->img + first * img_size);
    tensor tok = bt_input(be, &a, 3, (int64_t[]){count, t, k}, wl->tokens + first * tok_size);
    tensor ctx = bt_input(be, &a, 3, (int64_t[]){count, 77, k}, wl->ctx + first * 77 * k);
    tensor temb = bt_input(be, &a, 2, (int64_t[]){count, c}, wl->temb + first * c);
    tensor w_lin = bt_weight(be, TENSOR_WEIGHT_LINEAR, 2, (int64_t[]){n, k}, wl->w_lin);
    tensor b_lin = bt_weight(be, TENSOR_WEIGHT_VECTOR, 1, &n, wl->b_lin);
    tensor w_conv = bt_weight(be, TENSOR_WEIGHT_CONV, 4, (int64_t[]){c, c, 3, 3}, wl->w_conv);
    tensor b_conv = bt_weight(be, TENSOR_WEIGHT_VECTOR, 1, &c, wl->b_conv);
    tensor gamma = bt_weight(be, TENSOR_WEIGHT_VECTOR, 1, &c, wl->gamma);
    tensor beta = bt_weight(be, TENSOR_WEIGHT_VECTOR, 1, &c, wl->beta);

    tensor gn = bt_output(be, &a, 4, (int64_t[]){count, h, w, c});
    ok(backend_group_norm(be, &img, 4, 1e-5f, &gamma, &beta, true, &gn, &err), &err);
    keep(&r, 0, be, &gn);
    tensor conv = bt_output(be, &a, 4, (int64_t[]){count, h, w, c});
    ok(backend_conv2d(be, &gn, &w_conv, &b_conv, &(conv2d_params){1, 1, 1, 1, 1}, &conv, &err),
       &err);
    keep(&r, 1, be, &conv);
    tensor down = bt_output(be, &a, 4, (int64_t[]){count, 9, 11, c});
    ok(backend_conv2d(be, &conv, &w_conv, NULL, &(conv2d_params){2, 0, 0, 1, 1}, &down, &err),
       &err);
    keep(&r, 2, be, &down);
    ok(backend_add_channels(be, &conv, &temb, &conv, &err), &err);
    keep(&r, 3, be, &conv);

    tensor lin = bt_output(be, &a, 3, (int64_t[]){count, t, n});
    ok(backend_linear(be, &tok, &w_lin, &b_lin, BACKEND_ACT_GELU, &lin, &err), &err);
    keep(&r, 4, be, &lin);
    tensor ln = bt_output(be, &a, 3, (int64_t[]){count, t, k});
    tensor k_gamma = bt_weight(be, TENSOR_WEIGHT_VECTOR, 1, &k, wl->w_lin);
    tensor k_beta = bt_weight(be, TENSOR_WEIGHT_VECTOR, 1, &k, wl->w_lin + k);
    ok(backend_layer_norm(be, &tok, 1e-5f, &k_gamma, &k_beta, &ln, &err), &err);
    keep(&r, 5, be, &ln);
    tensor att = bt_output(be, &a, 3, (int64_t[]){count, t, k});
    ok(backend_attention(be, &ln, &tok, &tok, (int)wl->heads, false, &att, &err), &err);
    keep(&r, 6, be, &att);
    tensor cross = bt_output(be, &a, 3, (int64_t[]){count, t, k});
    ok(backend_attention(be, &att, &ctx, &ctx, (int)wl->heads, false, &cross, &err), &err);
    keep(&r, 7, be, &cross);
    tensor gg = bt_output(be, &a, 3, (int64_t[]){count, t, n / 2});
    ok(backend_geglu(be, &lin, &gg, &err), &err);
    keep(&r, 8, be, &gg);
    ok(backend_softmax(be, &lin, &lin, &err), &err);
    keep(&r, 9, be, &lin);
    /* One head over 1000 tokens: many query blocks per image, the last one padded. */
    tensor seq = bt_input(be, &a, 3, (int64_t[]){count, 1000, 8}, wl->long_seq + first * 8000);
    tensor seq_out = bt_output(be, &a, 3, (int64_t[]){count, 1000, 8});
    ok(backend_attention(be, &seq, &seq, &seq, 1, false, &seq_out, &err), &err);
    keep(&r, 10, be, &seq_out);
    /* An image large enough for the Winograd path (cpu_winograd.c), odd sides. */
    tensor big = bt_input(be, &a, 4, (int64_t[]){count, BIG_H, BIG_W, c},
                          wl->big + first * BIG_H * BIG_W * c);
    tensor big_out = bt_output(be, &a, 4, (int64_t[]){count, BIG_H, BIG_W, c});
    ok(backend_conv2d(be, &big, &w_conv, &b_conv, &(conv2d_params){1, 1, 1, 1, 1}, &big_out,
                      &err),
       &err);
    keep(&r, 11, be, &big_out);

    backend_weight_free(be, &w_lin);
    backend_weight_free(be, &b_lin);
    backend_weight_free(be, &w_conv);
    backend_weight_free(be, &b_conv);
    backend_weight_free(be, &gamma);
    backend_weight_free(be, &beta);
    backend_weight_free(be, &k_gamma);
    backend_weight_free(be, &k_beta);
    arena_free(&a);
    backend_destroy(be);
    return r;
}

static const char *const op_names[OPS] = {
    "group_norm+silu", "conv2d 3x3",  "conv2d stride 2", "add_channels", "linear+gelu",
    "layer_norm",      "attention",   "cross-attention", "geglu",        "softmax",
    "attention, one head of 1000 tokens", "conv2d 3x3, Winograd",
};

static void test_same_bits_with_1_2_3_threads(void **state)
{
    workload wl = workload_make();
    results one = run_ops(&wl, 1, 0, wl.batch);
    for (int threads = 2; threads <= 3; threads++) {
        results many = run_ops(&wl, threads, 0, wl.batch);
        for (int i = 0; i < OPS; i++) {
            assert_int_equal(one.n[i], many.n[i]);
            if (memcmp(one.out[i], many.out[i], one.n[i] * sizeof(float)) != 0)
                fail_msg("%s: %d threads give other bits than 1 thread", op_names[i], threads);
        }
        results_free(&many);
    }
    results_free(&one);
    workload_free(&wl);
}

static void test_each_image_of_a_batch_gets_its_bits_alone(void **state)
{
    workload wl = workload_make();
    results batch = run_ops(&wl, 2, 0, wl.batch);
    for (int64_t img = 0; img < wl.batch; img++) {
        results alone = run_ops(&wl, 2, img, 1);
        for (int i = 0; i < OPS; i++) {
            assert_int_equal(alone.n[i] * (size_t)wl.batch, batch.n[i]);
            if (memcmp(alone.out[i], batch.out[i] + (size_t)img * alone.n[i],
                       alone.n[i] * sizeof(float)) != 0)
                fail_msg("%s: image %lld alone differs from it in a batch of %lld", op_names[i],
                         (long long)img, (long long)wl.batch);
        }
        results_free(&alone);
    }
    results_free(&batch);
    workload_free(&wl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_bits_with_1_2_3_threads),
        cmocka_unit_test(test_each_image_of_a_batch_gets_its_bits_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
