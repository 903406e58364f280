/*
 * test_backend_ops.c — every op of the cpu backend against a plain double-precision reference.
 *
 * Inputs are random, of odd sizes (nothing a power of two, so remainders and tile edges are
 * exercised) and large enough that the work is cut into several tasks. Outputs are filled
 * with NaN first, so an element an op does not write fails the comparison. The error measure
 * is max |got - want| / max |want| over the whole output (bt_rel_error), required below 1e-5:
 * fp32 arithmetic over these sizes stays near 1e-6, while any real mistake (a wrong index, a
 * missed bias, a wrong variance) is far above it.
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

#define TOLERANCE 1e-5
#define ARENA_BYTES (64u << 20)

typedef bt_fixture fixture;

static int setup(void **state)
{
    *state = bt_fixture_new(3, ARENA_BYTES, 12345);
    return 0;
}

static int teardown(void **state)
{
    bt_fixture_free(*state);
    return 0;
}

static void expect_close(const char *what, fixture *f, const tensor *y, const double *want)
{
    double e = bt_rel_error(bt_fixture_read(f, y), want, (size_t)tensor_numel(y));
    printf("  %-40s rel error %.3g\n", what, e);
    if (!(e < TOLERANCE))
        fail_msg("%s: relative error %g is over %g", what, e, TOLERANCE);
}

static void expect_ok(sdxl_status st, const sdxl_error *err)
{
    if (st != SDXL_OK)
        fail_msg("%s: %s", sdxl_status_name(st), err->message);
}

static double act_ref(backend_act act, double v)
{
    switch (act) {
    case BACKEND_ACT_GELU:
        return 0.5 * v * (1.0 + erf(v / sqrt(2.0)));
    case BACKEND_ACT_QUICK_GELU:
        return v / (1.0 + exp(-1.702 * v));
    case BACKEND_ACT_SILU:
        return v / (1.0 + exp(-v));
    case BACKEND_ACT_NONE:
        break;
    }
    return v;
}

/* ---- linear and matmul ----------------------------------------------------------------- */

static void check_linear(fixture *f, int64_t b, int64_t t, int64_t k, int64_t n, bool with_bias,
                         backend_act act)
{
    sdxl_error err;
    int64_t m = b * t;
    float *xh = bt_fixture_random(f, (size_t)(m * k), 1.0f);
    float *wh = bt_fixture_random(f, (size_t)(n * k), 1.0f / sqrtf((float)k));
    float *bh = bt_fixture_random(f, (size_t)n, 0.5f);
    tensor x = bt_input(f->be, &f->a, 3, (int64_t[]){b, t, k}, xh);
    tensor w = bt_fixture_weight(f, TENSOR_WEIGHT_LINEAR, 2, (int64_t[]){n, k}, wh);
    tensor bias = bt_fixture_weight(f, TENSOR_WEIGHT_VECTOR, 1, (int64_t[]){n}, bh);
    tensor y = bt_output(f->be, &f->a, 3, (int64_t[]){b, t, n});
    expect_ok(backend_linear(f->be, &x, &w, with_bias ? &bias : NULL, act, &y, &err), &err);

    double *want = bt_fixture_doubles(f, (size_t)(m * n));
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = with_bias ? bh[j] : 0.0;
            for (int64_t l = 0; l < k; l++)
                s += (double)xh[i * k + l] * wh[j * k + l];
            want[i * n + j] = act_ref(act, s);
        }
    char what[96];
    snprintf(what, sizeof(what), "linear %lldx%lldx%lld bias %d act %d", (long long)m,
             (long long)n, (long long)k, with_bias, (int)act);
    expect_close(what, f, &y, want);
    bt_fixture_release(f);
}

static void test_linear_matches_reference(void **state)
{
    fixture *f = *state;
    check_linear(f, 2, 13, 37, 29, true, BACKEND_ACT_NONE);
    check_linear(f, 2, 13, 37, 29, false, BACKEND_ACT_NONE);
    check_linear(f, 1, 3, 21, 11, true, BACKEND_ACT_GELU);
    check_linear(f, 1, 3, 21, 11, true, BACKEND_ACT_QUICK_GELU);
    check_linear(f, 1, 3, 21, 11, true, BACKEND_ACT_SILU);
    /* Large enough to be cut into chunks: by rows, then by columns (wide and short). */
    check_linear(f, 5, 77, 129, 333, true, BACKEND_ACT_SILU);
    check_linear(f, 1, 31, 257, 1001, true, BACKEND_ACT_GELU);
    check_linear(f, 1, 1, 321, 1283, true, BACKEND_ACT_NONE);
}

/* linear_add gives exactly the bits of linear then add (y + (x · wᵀ + bias)), also where the
 * product is cut into row and column blocks and its rows into a remainder. */
static void check_linear_add(fixture *f, int64_t b, int64_t t, int64_t k, int64_t n,
                             bool with_bias)
{
    sdxl_error err;
    int64_t m = b * t, xs[3] = {b, t, k}, ys[3] = {b, t, n};
    float *xh = bt_fixture_random(f, (size_t)(m * k), 1.0f);
    float *wh = bt_fixture_random(f, (size_t)(n * k), 1.0f / sqrtf((float)k));
    float *bh = bt_fixture_random(f, (size_t)n, 0.5f);
    float *rh = bt_fixture_random(f, (size_t)(m * n), 2.0f); /* the residual */
    tensor x = bt_input(f->be, &f->a, 3, xs, xh);
    tensor w = bt_fixture_weight(f, TENSOR_WEIGHT_LINEAR, 2, (int64_t[]){n, k}, wh);
    tensor bias = bt_fixture_weight(f, TENSOR_WEIGHT_VECTOR, 1, (int64_t[]){n}, bh);
    const tensor *bp = with_bias ? &bias : NULL;
    tensor y = bt_input(f->be, &f->a, 3, ys, rh), want = bt_input(f->be, &f->a, 3, ys, rh);
    tensor product = bt_output(f->be, &f->a, 3, ys);
    expect_ok(backend_linear_add(f->be, &x, &w, bp, &y, &err), &err);
    expect_ok(backend_linear(f->be, &x, &w, bp, BACKEND_ACT_NONE, &product, &err), &err);
    expect_ok(backend_add(f->be, &want, &product, &want, &err), &err);
    float *got = bt_fixture_read(f, &y), *ref = bt_fixture_read(f, &want);
    size_t differ = 0;
    for (int64_t i = 0; i < m * n; i++)
        differ += memcmp(&got[i], &ref[i], sizeof(float)) != 0;
    printf("  linear_add %lldx%lldx%lld bias %d: %zu of %lld differ from linear + add\n",
           (long long)m, (long long)n, (long long)k, with_bias, differ, (long long)(m * n));
    assert_int_equal(differ, 0);
    /* and it did add something: the residual alone is not the answer */
    assert_true(memcmp(got, rh, sizeof(float) * (size_t)(m * n)) != 0);
    bt_fixture_release(f);
}

static void test_linear_add_is_linear_then_add(void **state)
{
    fixture *f = *state;
    check_linear_add(f, 2, 13, 37, 29, true);
    check_linear_add(f, 1, 3, 21, 11, false);
    check_linear_add(f, 5, 77, 129, 333, true);  /* batch; rows with a remainder */
    check_linear_add(f, 1, 1000, 129, 640, true); /* several row blocks */
    check_linear_add(f, 2, 50, 300, 1000, true);  /* several column blocks */
}

/* linear_groups gives y[g] with exactly the bits of linear with the g-th stacked weight and
 * bias. t == 0: one vector per image ([b, k]). */
static void check_linear_groups(fixture *f, int64_t b, int64_t t, int64_t k, int64_t n,
                                int groups, bool with_bias)
{
    sdxl_error err;
    int ndim = t > 0 ? 3 : 2;
    int64_t rows = b * (t > 0 ? t : 1);
    int64_t xs[3] = {b, t, k}, ys[4] = {groups, b, t, n}, one[3] = {b, t, n};
    if (t == 0) {
        xs[1] = k;
        ys[2] = n;
        one[1] = n;
    }
    float *xh = bt_fixture_random(f, (size_t)(rows * k), 1.0f);
    float *wh = bt_fixture_random(f, (size_t)(groups * n * k), 1.0f / sqrtf((float)k));
    float *bh = bt_fixture_random(f, (size_t)(groups * n), 0.5f);
    tensor x = bt_input(f->be, &f->a, ndim, xs, xh);
    tensor w = bt_fixture_weight(f, TENSOR_WEIGHT_LINEAR, 2, (int64_t[]){groups * n, k}, wh);
    tensor bias = bt_fixture_weight(f, TENSOR_WEIGHT_VECTOR, 1, (int64_t[]){groups * n}, bh);
    tensor y = bt_output(f->be, &f->a, ndim + 1, ys);
    expect_ok(backend_linear_groups(f->be, &x, &w, with_bias ? &bias : NULL, groups, &y, &err),
              &err);
    float *got = bt_fixture_read(f, &y);
    for (int g = 0; g < groups; g++) {
        tensor wg = bt_fixture_weight(f, TENSOR_WEIGHT_LINEAR, 2, (int64_t[]){n, k},
                                      wh + (size_t)(g * n * k));
        tensor bg = bt_fixture_weight(f, TENSOR_WEIGHT_VECTOR, 1, (int64_t[]){n},
                                      bh + (size_t)(g * n));
        tensor want = bt_output(f->be, &f->a, ndim, one), slice;
        expect_ok(backend_linear(f->be, &x, &wg, with_bias ? &bg : NULL, BACKEND_ACT_NONE, &want,
                                 &err),
                  &err);
        expect_ok(tensor_view_slice(&slice, &y, g, &err), &err);
        assert_true(tensor_same_shape(&slice, &want));
        float *ref = bt_fixture_read(f, &want);
        assert_memory_equal(got + (size_t)(g * rows * n), ref, sizeof(float) * (size_t)(rows * n));
    }
    printf("  linear_groups %d x %lldx%lldx%lld bias %d: the bits of %d linears\n", groups,
           (long long)rows, (long long)n, (long long)k, with_bias, groups);
    bt_fixture_release(f);
}

static void test_linear_groups_are_linears(void **state)
{
    fixture *f = *state;
    check_linear_groups(f, 2, 13, 37, 29, 3, true);
    check_linear_groups(f, 1, 77, 64, 48, 2, false);
    check_linear_groups(f, 3, 0, 40, 24, 3, true);
    check_linear_groups(f, 2, 300, 129, 320, 3, false); /* several row blocks per image */
}

static void check_matmul(fixture *f, bool trans_b)
{
    sdxl_error err;
    int64_t bt = 3, m = 17, k = 23, n = 19;
    float *ah = bt_fixture_random(f, (size_t)(bt * m * k), 1.0f);
    float *bh = bt_fixture_random(f, (size_t)(bt * k * n), 1.0f);
    tensor a = bt_input(f->be, &f->a, 3, (int64_t[]){bt, m, k}, ah);
    tensor bm = bt_input(f->be, &f->a, 3, trans_b ? (int64_t[]){bt, n, k} : (int64_t[]){bt, k, n},
                         bh);
    tensor c = bt_output(f->be, &f->a, 3, (int64_t[]){bt, m, n});
    expect_ok(backend_matmul(f->be, &a, &bm, trans_b, 0.7f, &c, &err), &err);
    double *want = bt_fixture_doubles(f, (size_t)(bt * m * n));
    for (int64_t i = 0; i < bt; i++)
        for (int64_t r = 0; r < m; r++)
            for (int64_t j = 0; j < n; j++) {
                double s = 0.0;
                for (int64_t l = 0; l < k; l++) {
                    double bv = trans_b ? bh[(i * n + j) * k + l] : bh[(i * k + l) * n + j];
                    s += (double)ah[(i * m + r) * k + l] * bv;
                }
                want[(i * m + r) * n + j] = 0.7 * s;
            }
    expect_close(trans_b ? "matmul transposed" : "matmul", f, &c, want);
    bt_fixture_release(f);
}

static void test_matmul_matches_reference(void **state)
{
    check_matmul(*state, false);
    check_matmul(*state, true);
}

/* ---- conv2d ---------------------------------------------------------------------------- */

static void check_conv(fixture *f, int64_t n, int64_t h, int64_t w, int64_t cin, int64_t cout,
                       int64_t kk, conv2d_params p, bool with_bias)
{
    sdxl_error err;
    int64_t ho = (h + p.pad_top + p.pad_bottom - kk) / p.stride + 1;
    int64_t wo = (w + p.pad_left + p.pad_right - kk) / p.stride + 1;
    float *xh = bt_fixture_random(f, (size_t)(n * h * w * cin), 1.0f);
    float *wh = bt_fixture_random(f, (size_t)(cout * cin * kk * kk),
                                  1.0f / sqrtf((float)(cin * kk * kk)));
    float *bh = bt_fixture_random(f, (size_t)cout, 0.5f);
    tensor x = bt_input(f->be, &f->a, 4, (int64_t[]){n, h, w, cin}, xh);
    tensor wt = bt_fixture_weight(f, TENSOR_WEIGHT_CONV, 4, (int64_t[]){cout, cin, kk, kk}, wh);
    tensor bias = bt_fixture_weight(f, TENSOR_WEIGHT_VECTOR, 1, (int64_t[]){cout}, bh);
    tensor y = bt_output(f->be, &f->a, 4, (int64_t[]){n, ho, wo, cout});
    expect_ok(backend_conv2d(f->be, &x, &wt, with_bias ? &bias : NULL, &p, &y, &err), &err);

    /* Straight from the definition, with the weight in PyTorch's [Cout, Cin, kh, kw]. */
    double *want = bt_fixture_doubles(f, (size_t)(n * ho * wo * cout));
    for (int64_t i = 0; i < n; i++)
        for (int64_t oy = 0; oy < ho; oy++)
            for (int64_t ox = 0; ox < wo; ox++)
                for (int64_t co = 0; co < cout; co++) {
                    double s = with_bias ? bh[co] : 0.0;
                    for (int64_t ky = 0; ky < kk; ky++)
                        for (int64_t kx = 0; kx < kk; kx++) {
                            int64_t iy = oy * p.stride + ky - p.pad_top;
                            int64_t ix = ox * p.stride + kx - p.pad_left;
                            if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                                continue;
                            for (int64_t ci = 0; ci < cin; ci++)
                                s += (double)xh[((i * h + iy) * w + ix) * cin + ci] *
                                     wh[((co * cin + ci) * kk + ky) * kk + kx];
                        }
                    want[((i * ho + oy) * wo + ox) * cout + co] = s;
                }
    char what[128];
    snprintf(what, sizeof(what), "conv %lldx%lld s%d pad %d%d%d%d %lldx%lldx%lld->%lld",
             (long long)kk, (long long)kk, p.stride, p.pad_top, p.pad_left, p.pad_bottom,
             p.pad_right, (long long)h, (long long)w, (long long)cin, (long long)cout);
    expect_close(what, f, &y, want);
    bt_fixture_release(f);
}

static void test_conv2d_matches_reference(void **state)
{
    fixture *f = *state;
    check_conv(f, 2, 11, 13, 7, 9, 3, (conv2d_params){1, 1, 1, 1, 1}, true);
    check_conv(f, 2, 11, 13, 7, 9, 3, (conv2d_params){2, 1, 1, 1, 1}, true);
    /* The VAE encoder's downsampler: pad right and bottom only, stride 2. */
    check_conv(f, 2, 11, 13, 7, 9, 3, (conv2d_params){2, 0, 0, 1, 1}, true);
    check_conv(f, 1, 12, 10, 6, 5, 3, (conv2d_params){2, 0, 0, 1, 1}, false);
    check_conv(f, 2, 11, 13, 7, 9, 1, (conv2d_params){1, 0, 0, 0, 0}, true);
    check_conv(f, 2, 11, 13, 7, 9, 1, (conv2d_params){2, 0, 0, 0, 0}, false);
    /* Several tiles per image (1073 output pixels), and a 3-channel input as the VAE's. */
    check_conv(f, 1, 37, 29, 19, 23, 3, (conv2d_params){1, 1, 1, 1, 1}, true);
    check_conv(f, 1, 37, 29, 3, 17, 3, (conv2d_params){1, 1, 1, 1, 1}, true);
    /* Large enough for Winograd F(2x2, 3x3) (cpu_winograd.c): odd sides (half tiles at the
     * right and bottom edges), several tile blocks, two images; and a 3-channel input. */
    check_conv(f, 2, 67, 65, 19, 23, 3, (conv2d_params){1, 1, 1, 1, 1}, true);
    check_conv(f, 1, 64, 64, 3, 17, 3, (conv2d_params){1, 1, 1, 1, 1}, false);
}

/* ---- normalisation, softmax ---------------------------------------------------------------- */

static void check_group_norm(fixture *f, int ndim, const int64_t *shape, int groups, bool silu,
                             float offset)
{
    sdxl_error err;
    tensor probe = {.ndim = ndim};
    memcpy(probe.shape, shape, sizeof(int64_t) * (size_t)ndim);
    size_t total = (size_t)tensor_numel(&probe);
    int64_t n = shape[0], c = shape[ndim - 1], pos = (int64_t)total / (n * c), cg = c / groups;
    float *xh = bt_fixture_random(f, total, 2.0f);
    for (size_t i = 0; i < total; i++)
        xh[i] += offset;
    float *gh = bt_fixture_random(f, (size_t)c, 1.0f);
    float *bh = bt_fixture_random(f, (size_t)c, 1.0f);
    tensor x = bt_input(f->be, &f->a, ndim, shape, xh);
    tensor gamma = bt_fixture_weight(f, TENSOR_WEIGHT_VECTOR, 1, &c, gh);
    tensor beta = bt_fixture_weight(f, TENSOR_WEIGHT_VECTOR, 1, &c, bh);
    tensor y = bt_output(f->be, &f->a, ndim, shape);
    expect_ok(backend_group_norm(f->be, &x, groups, 1e-5f, &gamma, &beta, silu, &y, &err), &err);

    double *want = bt_fixture_doubles(f, total);
    for (int64_t i = 0; i < n; i++)
        for (int64_t g = 0; g < groups; g++) {
            double s = 0.0, s2 = 0.0;
            for (int64_t p = 0; p < pos; p++)
                for (int64_t j = g * cg; j < (g + 1) * cg; j++)
                    s += xh[(i * pos + p) * c + j];
            double mean = s / (double)(pos * cg);
            for (int64_t p = 0; p < pos; p++)
                for (int64_t j = g * cg; j < (g + 1) * cg; j++) {
                    double d = xh[(i * pos + p) * c + j] - mean;
                    s2 += d * d;
                }
            double rstd = 1.0 / sqrt(s2 / (double)(pos * cg) + 1e-5);
            for (int64_t p = 0; p < pos; p++)
                for (int64_t j = g * cg; j < (g + 1) * cg; j++) {
                    size_t at = (size_t)((i * pos + p) * c + j);
                    double v = (xh[at] - mean) * rstd * gh[j] + bh[j];
                    want[at] = silu ? act_ref(BACKEND_ACT_SILU, v) : v;
                }
        }
    char what[96];
    snprintf(what, sizeof(what), "group_norm %zu elements %d groups silu %d offset %g", total,
             groups, silu, (double)offset);
    expect_close(what, f, &y, want);

    /* In place gives the same. */
    expect_ok(backend_group_norm(f->be, &x, groups, 1e-5f, &gamma, &beta, silu, &x, &err), &err);
    expect_close("group_norm in place", f, &x, want);
    bt_fixture_release(f);
}

static void test_group_norm_matches_reference(void **state)
{
    fixture *f = *state;
    check_group_norm(f, 4, (int64_t[]){2, 7, 9, 24}, 6, false, 0.0f);
    check_group_norm(f, 4, (int64_t[]){2, 7, 9, 24}, 6, true, 0.0f);
    check_group_norm(f, 3, (int64_t[]){2, 33, 16}, 4, true, 0.0f);
    /* More positions than one chunk, and a mean far from zero (variance by cancellation). */
    check_group_norm(f, 4, (int64_t[]){2, 23, 31, 12}, 3, true, 5.0f);
    check_group_norm(f, 2, (int64_t[]){3, 30}, 5, false, 0.0f);
}

static void test_layer_norm_matches_reference(void **state)
{
    fixture *f = *state;
    sdxl_error err;
    int64_t shape[] = {3, 11, 77}, c = 77, rows = 33;
    float *xh = bt_fixture_random(f, (size_t)(rows * c), 3.0f);
    for (int64_t i = 0; i < rows * c; i++)
        xh[i] += 1.5f;
    float *gh = bt_fixture_random(f, (size_t)c, 1.0f);
    float *bh = bt_fixture_random(f, (size_t)c, 1.0f);
    tensor x = bt_input(f->be, &f->a, 3, shape, xh);
    tensor gamma = bt_fixture_weight(f, TENSOR_WEIGHT_VECTOR, 1, &c, gh);
    tensor beta = bt_fixture_weight(f, TENSOR_WEIGHT_VECTOR, 1, &c, bh);
    tensor y = bt_output(f->be, &f->a, 3, shape);
    expect_ok(backend_layer_norm(f->be, &x, 1e-5f, &gamma, &beta, &y, &err), &err);
    double *want = bt_fixture_doubles(f, (size_t)(rows * c));
    for (int64_t r = 0; r < rows; r++) {
        double s = 0.0, s2 = 0.0;
        for (int64_t j = 0; j < c; j++)
            s += xh[r * c + j];
        double mean = s / (double)c;
        for (int64_t j = 0; j < c; j++)
            s2 += (xh[r * c + j] - mean) * (xh[r * c + j] - mean);
        double rstd = 1.0 / sqrt(s2 / (double)c + 1e-5);
        for (int64_t j = 0; j < c; j++)
            want[r * c + j] = (xh[r * c + j] - mean) * rstd * gh[j] + bh[j];
    }
    expect_close("layer_norm", f, &y, want);
    expect_ok(backend_layer_norm(f->be, &x, 1e-5f, &gamma, &beta, &x, &err), &err);
    expect_close("layer_norm in place", f, &x, want);
}

static void test_softmax_matches_reference(void **state)
{
    fixture *f = *state;
    sdxl_error err;
    int64_t shape[] = {5, 7, 131}, c = 131, rows = 35;
    float *xh = bt_fixture_random(f, (size_t)(rows * c), 8.0f);
    tensor x = bt_input(f->be, &f->a, 3, shape, xh);
    tensor y = bt_output(f->be, &f->a, 3, shape);
    expect_ok(backend_softmax(f->be, &x, &y, &err), &err);
    double *want = bt_fixture_doubles(f, (size_t)(rows * c));
    for (int64_t r = 0; r < rows; r++) {
        double mx = -INFINITY, s = 0.0;
        for (int64_t j = 0; j < c; j++)
            mx = fmax(mx, xh[r * c + j]);
        for (int64_t j = 0; j < c; j++)
            s += exp(xh[r * c + j] - mx);
        for (int64_t j = 0; j < c; j++)
            want[r * c + j] = exp(xh[r * c + j] - mx) / s;
    }
    expect_close("softmax", f, &y, want);
    expect_ok(backend_softmax(f->be, &x, &x, &err), &err);
    expect_close("softmax in place", f, &x, want);
}

/* A NaN score must not be laundered into finite probabilities: its row comes out NaN (so a
 * numerical blow-up upstream is seen), and the other rows are untouched. */
static void test_softmax_keeps_nan_in_its_row(void **state)
{
    fixture *f = *state;
    sdxl_error err;
    int64_t shape[] = {3, 41};
    float *xh = bt_fixture_random(f, 3 * 41, 4.0f);
    xh[41 + 17] = NAN;
    tensor x = bt_input(f->be, &f->a, 2, shape, xh);
    expect_ok(backend_softmax(f->be, &x, &x, &err), &err);
    float *got = bt_fixture_read(f, &x);
    for (int j = 0; j < 41; j++) {
        assert_true(isfinite(got[j]) && isfinite(got[82 + j]));
        assert_true(isnan(got[41 + j]));
    }
}

/* ---- attention ------------------------------------------------------------------------- */

static void check_attention(fixture *f, int64_t b, int64_t tq, int64_t tk, int heads, int64_t d,
                            bool causal)
{
    sdxl_error err;
    int64_t w = heads * d;
    float *qh = bt_fixture_random(f, (size_t)(b * tq * w), 2.0f);
    float *kh = bt_fixture_random(f, (size_t)(b * tk * w), 2.0f);
    float *vh = bt_fixture_random(f, (size_t)(b * tk * w), 1.0f);
    tensor q = bt_input(f->be, &f->a, 3, (int64_t[]){b, tq, w}, qh);
    tensor k = bt_input(f->be, &f->a, 3, (int64_t[]){b, tk, w}, kh);
    tensor v = bt_input(f->be, &f->a, 3, (int64_t[]){b, tk, w}, vh);
    tensor y = bt_output(f->be, &f->a, 3, (int64_t[]){b, tq, w});
    expect_ok(backend_attention(f->be, &q, &k, &v, heads, causal, &y, &err), &err);

    double *want = bt_fixture_doubles(f, (size_t)(b * tq * w));
    double *p = bt_fixture_doubles(f, (size_t)tk);
    double scale = 1.0 / sqrt((double)d);
    for (int64_t i = 0; i < b; i++)
        for (int h = 0; h < heads; h++)
            for (int64_t r = 0; r < tq; r++) {
                int64_t seen = causal ? r + 1 : tk;
                double mx = -INFINITY, s = 0.0;
                for (int64_t j = 0; j < seen; j++) {
                    double dot = 0.0;
                    for (int64_t l = 0; l < d; l++)
                        dot += (double)qh[(i * tq + r) * w + h * d + l] *
                               kh[(i * tk + j) * w + h * d + l];
                    p[j] = dot * scale;
                    mx = fmax(mx, p[j]);
                }
                for (int64_t j = 0; j < seen; j++) {
                    p[j] = exp(p[j] - mx);
                    s += p[j];
                }
                for (int64_t l = 0; l < d; l++) {
                    double o = 0.0;
                    for (int64_t j = 0; j < seen; j++)
                        o += p[j] * vh[(i * tk + j) * w + h * d + l];
                    want[(i * tq + r) * w + h * d + l] = o / s;
                }
            }
    char what[96];
    snprintf(what, sizeof(what), "attention B%lld Tq%lld Tk%lld H%d D%lld causal %d",
             (long long)b, (long long)tq, (long long)tk, heads, (long long)d, causal);
    expect_close(what, f, &y, want);
    bt_fixture_release(f);
}

static void test_attention_matches_reference(void **state)
{
    fixture *f = *state;
    check_attention(f, 2, 37, 53, 3, 24, false); /* cross-attention */
    check_attention(f, 2, 77, 77, 3, 16, true);  /* CLIP: causal, two query blocks */
    check_attention(f, 1, 150, 150, 5, 8, false);
    check_attention(f, 1, 70, 70, 1, 512, false); /* the VAE's one head of 512 */
}

/* ---- element-wise ---------------------------------------------------------------------- */

typedef sdxl_status (*unary_fn)(backend *, const tensor *, tensor *, sdxl_error *);

static void test_activations_match_reference(void **state)
{
    fixture *f = *state;
    sdxl_error err;
    int64_t n = 10007;
    float *xh = bt_fixture_random(f, (size_t)n, 9.0f);
    xh[0] = -100.0f; /* far into exp's clamps */
    xh[1] = 100.0f;
    xh[2] = 0.0f;
    tensor x = bt_input(f->be, &f->a, 1, &n, xh);
    tensor y = bt_output(f->be, &f->a, 1, &n);
    double *want = bt_fixture_doubles(f, (size_t)n);
    static const backend_act acts[] = {BACKEND_ACT_GELU, BACKEND_ACT_QUICK_GELU, BACKEND_ACT_SILU};
    static const unary_fn fns[] = {backend_gelu, backend_quick_gelu, backend_silu};
    static const char *const names[] = {"gelu", "quick_gelu", "silu"};
    for (int a = 0; a < 3; a++) {
        for (int64_t i = 0; i < n; i++)
            want[i] = act_ref(acts[a], xh[i]);
        expect_ok(fns[a](f->be, &x, &y, &err), &err);
        expect_close(names[a], f, &y, want);
        tensor z = bt_input(f->be, &f->a, 1, &n, xh);
        expect_ok(backend_activation(f->be, acts[a], &z, &z, &err), &err);
        expect_close("... in place", f, &z, want);
    }
}

static void test_geglu_matches_reference(void **state)
{
    fixture *f = *state;
    sdxl_error err;
    int64_t rows = 15, ff = 37;
    float *xh = bt_fixture_random(f, (size_t)(rows * 2 * ff), 4.0f);
    tensor x = bt_input(f->be, &f->a, 3, (int64_t[]){3, 5, 2 * ff}, xh);
    tensor y = bt_output(f->be, &f->a, 3, (int64_t[]){3, 5, ff});
    expect_ok(backend_geglu(f->be, &x, &y, &err), &err);
    double *want = bt_fixture_doubles(f, (size_t)(rows * ff));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < ff; j++)
            want[r * ff + j] = xh[r * 2 * ff + j] * act_ref(BACKEND_ACT_GELU, xh[r * 2 * ff + ff + j]);
    expect_close("geglu", f, &y, want);
}

static void check_binary(fixture *f, bool mul, int zdim)
{
    sdxl_error err;
    int64_t shape[] = {2, 5, 7, 11};
    size_t n = 2 * 5 * 7 * 11, zn = 1;
    for (int i = 4 - zdim; i < 4; i++)
        zn *= (size_t)shape[i];
    float *xh = bt_fixture_random(f, n, 3.0f);
    float *zh = bt_fixture_random(f, zn, 3.0f);
    tensor x = bt_input(f->be, &f->a, 4, shape, xh);
    tensor z = bt_input(f->be, &f->a, zdim, shape + 4 - zdim, zh);
    tensor y = bt_output(f->be, &f->a, 4, shape);
    double *want = bt_fixture_doubles(f, n);
    for (size_t i = 0; i < n; i++)
        want[i] = mul ? (double)xh[i] * zh[i % zn] : (double)xh[i] + zh[i % zn];
    expect_ok((mul ? backend_mul : backend_add)(f->be, &x, &z, &y, &err), &err);
    char what[64];
    snprintf(what, sizeof(what), "%s with z of %d dims", mul ? "mul" : "add", zdim);
    expect_close(what, f, &y, want);
    expect_ok((mul ? backend_mul : backend_add)(f->be, &x, &z, &x, &err), &err);
    expect_close("... in place", f, &x, want);
    bt_fixture_release(f);
}

static void test_add_and_mul_broadcast_trailing_dims(void **state)
{
    for (int zdim = 1; zdim <= 4; zdim++) {
        check_binary(*state, false, zdim);
        check_binary(*state, true, zdim);
    }
}

static void test_add_scaled_scale_and_add_channels(void **state)
{
    fixture *f = *state;
    sdxl_error err;
    int64_t shape[] = {3, 5, 7, 13};
    size_t n = 3 * 5 * 7 * 13;
    float *xh = bt_fixture_random(f, n, 3.0f);
    float *zh = bt_fixture_random(f, n, 3.0f);
    float *eh = bt_fixture_random(f, 3 * 13, 3.0f);
    tensor x = bt_input(f->be, &f->a, 4, shape, xh);
    tensor z = bt_input(f->be, &f->a, 4, shape, zh);
    tensor e = bt_input(f->be, &f->a, 2, (int64_t[]){3, 13}, eh);
    tensor y = bt_output(f->be, &f->a, 4, shape);
    double *want = bt_fixture_doubles(f, n);

    for (size_t i = 0; i < n; i++)
        want[i] = 0.75 * xh[i] + -1.25 * zh[i];
    expect_ok(backend_add_scaled(f->be, 0.75f, &x, -1.25f, &z, &y, &err), &err);
    expect_close("add_scaled", f, &y, want);

    for (size_t i = 0; i < n; i++)
        want[i] = 0.5 * xh[i] + 2.0;
    expect_ok(backend_scale(f->be, &x, 0.5f, 2.0f, &y, &err), &err);
    expect_close("scale", f, &y, want);

    for (size_t i = 0; i < n; i++)
        want[i] = (double)xh[i] + eh[(i / (5 * 7 * 13)) * 13 + i % 13];
    expect_ok(backend_add_channels(f->be, &x, &e, &y, &err), &err);
    expect_close("add_channels", f, &y, want);
    tensor rows;
    expect_ok(tensor_reshape(&rows, &x, 3, (int64_t[]){3, 35, 13}, &err), &err);
    expect_ok(backend_add_channels(f->be, &rows, &e, &rows, &err), &err);
    expect_close("add_channels in place, [N, T, C]", f, &x, want);
}

/* ---- the scheduler's arithmetic: torch's roundings, bit for bit ---------------------------- */

/* Random values with zeros of both signs among them. */
static float *values_with_zeros(fixture *f, size_t n, float scale)
{
    float *x = bt_fixture_random(f, n, scale);
    x[0] = 0.0f;
    x[1] = -0.0f;
    return x;
}

/* add_scaled(1, x, beta, z) is torch's x + beta * z (the product rounded, then the sum), and
 * scale(x, s, -0) its s * x: the same bits, where a fused multiply-add would differ. */
static void test_add_scaled_and_scale_round_each_product(void **state)
{
    fixture *f = *state;
    sdxl_error err;
    size_t n = 100003;
    int64_t shape[1] = {(int64_t)n};
    float *xh = values_with_zeros(f, n, 4.0f), *zh = values_with_zeros(f, n, 4.0f);
    tensor x = bt_input(f->be, &f->a, 1, shape, xh), z = bt_input(f->be, &f->a, 1, shape, zh);
    tensor y = bt_output(f->be, &f->a, 1, shape);
    const float beta = -0.2928932f;
    expect_ok(backend_add_scaled(f->be, 1.0f, &x, beta, &z, &y, &err), &err);
    float *got = bt_fixture_read(f, &y);
    size_t fused_differs = 0;
    for (size_t i = 0; i < n; i++) {
        float product = beta * zh[i];
        float want = xh[i] + product;
        assert_memory_equal(&got[i], &want, sizeof want);
        fused_differs += fmaf(beta, zh[i], xh[i]) != want;
    }
    printf("  add_scaled(1, x, b, z) == x + b*z bitwise; a fused multiply-add differs in %zu of "
           "%zu\n",
           fused_differs, n);
    assert_true(fused_differs > 0);

    const float s = 0.13025f;
    expect_ok(backend_scale(f->be, &x, s, -0.0f, &y, &err), &err);
    got = bt_fixture_read(f, &y);
    for (size_t i = 0; i < n; i++) {
        float want = s * xh[i];
        assert_memory_equal(&got[i], &want, sizeof want);
    }
    assert_true(signbit(got[1])); /* s * -0 is -0; + (+0) would have made it +0 */
}

/* div_scalar is a true division: torch's x / d, which x * (1 / d) is not. In place too. */
static void test_div_scalar_divides(void **state)
{
    fixture *f = *state;
    sdxl_error err;
    size_t n = 100003;
    int64_t shape[1] = {(int64_t)n};
    float *xh = values_with_zeros(f, n, 30.0f);
    tensor x = bt_input(f->be, &f->a, 1, shape, xh), y = bt_output(f->be, &f->a, 1, shape);
    const float d = 0.13025f;
    expect_ok(backend_div_scalar(f->be, &x, d, &y, &err), &err);
    float *got = bt_fixture_read(f, &y);
    size_t reciprocal_differs = 0;
    for (size_t i = 0; i < n; i++) {
        float want = xh[i] / d;
        assert_memory_equal(&got[i], &want, sizeof want);
        reciprocal_differs += xh[i] * (1.0f / d) != want;
    }
    printf("  div_scalar == x / d bitwise; x * (1/d) differs in %zu of %zu\n",
           reciprocal_differs, n);
    assert_true(reciprocal_differs > 0);
    expect_ok(backend_div_scalar(f->be, &x, -3.0f, &x, &err), &err);
    got = bt_fixture_read(f, &x);
    for (size_t i = 0; i < n; i++) {
        float want = xh[i] / -3.0f;
        assert_memory_equal(&got[i], &want, sizeof want);
    }
}

/* torch.clamp(x, -30, 20): NaN stays NaN, infinities saturate, the bounds themselves and the
 * values between pass unchanged (-0 too). */
static void test_clamp_as_torch(void **state)
{
    fixture *f = *state;
    sdxl_error err;
    const float in[10] = {NAN, -INFINITY, INFINITY, -31.0f, -30.0f, -0.0f, 19.999998f, 20.0f,
                          20.000002f, 1e30f};
    const float want[10] = {NAN, -30.0f, 20.0f, -30.0f, -30.0f, -0.0f, 19.999998f, 20.0f,
                            20.0f, 20.0f};
    int64_t shape[1] = {10};
    tensor x = bt_input(f->be, &f->a, 1, shape, in), y = bt_output(f->be, &f->a, 1, shape);
    for (int in_place = 0; in_place < 2; in_place++) {
        tensor *out = in_place ? &x : &y;
        expect_ok(backend_clamp(f->be, &x, -30.0f, 20.0f, out, &err), &err);
        float *got = bt_fixture_read(f, out);
        assert_true(isnan(got[0]));
        assert_memory_equal(got + 1, want + 1, 9 * sizeof(float));
    }
}

/* mean + exp(0.5 * logvar) * noise with each step rounded (the host loop vae_sample ran
 * before it became an op), in place on any operand. */
static void test_gaussian_sample_rounds_each_step(void **state)
{
    fixture *f = *state;
    sdxl_error err;
    size_t n = 137 * 73 * 4;
    int64_t shape[4] = {1, 137, 73, 4};
    float *mh = bt_fixture_random(f, n, 3.0f), *lh = bt_fixture_random(f, n, 12.0f);
    float *nh = bt_fixture_random(f, n, 2.0f);
    lh[0] = -30.0f;
    lh[1] = 20.0f;
    float *want = malloc(n * sizeof(float));
    assert_non_null(want);
    for (size_t i = 0; i < n; i++) {
        float sd = expf(0.5f * lh[i]);
        float scaled = sd * nh[i];
        want[i] = mh[i] + scaled;
    }
    tensor m = bt_input(f->be, &f->a, 4, shape, mh), l = bt_input(f->be, &f->a, 4, shape, lh);
    tensor z = bt_input(f->be, &f->a, 4, shape, nh), y = bt_output(f->be, &f->a, 4, shape);
    expect_ok(backend_gaussian_sample(f->be, &m, &l, &z, &y, &err), &err);
    assert_memory_equal(bt_fixture_read(f, &y), want, n * sizeof(float));
    expect_ok(backend_gaussian_sample(f->be, &m, &l, &z, &z, &err), &err);
    assert_memory_equal(bt_fixture_read(f, &z), want, n * sizeof(float));
    expect_ok(backend_tensor_write(f->be, &z, DTYPE_F32, nh, n, &err), &err);
    expect_ok(backend_gaussian_sample(f->be, &m, &l, &z, &m, &err), &err);
    assert_memory_equal(bt_fixture_read(f, &m), want, n * sizeof(float));
    free(want);
}

/* convert: another type's tensor (here F16 and BF16 bits in host memory, as another backend's
 * would be) into F32 exactly; F32 into F32 unchanged. */
static void test_convert_into_f32(void **state)
{
    fixture *f = *state;
    sdxl_error err;
    size_t n = 7 * 10001;
    int64_t shape[2] = {7, 10001};
    float *xh = bt_fixture_random(f, n, 70000.0f);
    xh[0] = NAN;
    xh[1] = -INFINITY;
    xh[2] = -0.0f;
    xh[3] = 1e-7f; /* an F16 subnormal */
    uint16_t *h = malloc(n * sizeof(uint16_t)), *bf = malloc(n * sizeof(uint16_t));
    float *want = malloc(n * sizeof(float));
    assert_true(h && bf && want);
    dtype_from_f32(DTYPE_F16, xh, h, n);
    dtype_from_f32(DTYPE_BF16, xh, bf, n);
    const uint16_t *bits[2] = {h, bf};
    const dtype types[2] = {DTYPE_F16, DTYPE_BF16};
    tensor y = bt_output(f->be, &f->a, 2, shape);
    for (int k = 0; k < 2; k++) {
        tensor x;
        expect_ok(tensor_alloc(&x, &f->a, types[k], 2, shape, &err), &err);
        expect_ok(backend_tensor_write(f->be, &x, types[k], bits[k], n, &err), &err);
        expect_ok(backend_convert(f->be, &x, &y, &err), &err);
        float *got = bt_fixture_read(f, &y);
        dtype_to_f32(types[k], bits[k], want, n);
        assert_true(isnan(got[0]));
        assert_memory_equal(got + 1, want + 1, (n - 1) * sizeof(float));
    }
    tensor x32 = bt_input(f->be, &f->a, 2, shape, xh);
    expect_ok(backend_convert(f->be, &x32, &y, &err), &err);
    assert_memory_equal(bt_fixture_read(f, &y), xh, n * sizeof(float));
    free(h);
    free(bf);
    free(want);
}

/* ---- data movement --------------------------------------------------------------------- */

static void test_upsample_concat_slice_copy_are_exact(void **state)
{
    fixture *f = *state;
    sdxl_error err;
    int64_t n = 2, h = 5, w = 7, c = 3, c2 = 4;
    float *xh = bt_fixture_random(f, (size_t)(n * h * w * c), 1.0f);
    float *x2h = bt_fixture_random(f, (size_t)(n * h * w * c2), 1.0f);
    tensor x = bt_input(f->be, &f->a, 4, (int64_t[]){n, h, w, c}, xh);
    tensor x2 = bt_input(f->be, &f->a, 4, (int64_t[]){n, h, w, c2}, x2h);

    tensor up = bt_output(f->be, &f->a, 4, (int64_t[]){n, 2 * h, 2 * w, c});
    expect_ok(backend_upsample_nearest2x(f->be, &x, &up, &err), &err);
    float *got = bt_fixture_read(f, &up);
    for (int64_t i = 0; i < n; i++)
        for (int64_t y = 0; y < 2 * h; y++)
            for (int64_t xx = 0; xx < 2 * w; xx++)
                for (int64_t j = 0; j < c; j++)
                    assert_true(got[((i * 2 * h + y) * 2 * w + xx) * c + j] ==
                                xh[((i * h + y / 2) * w + xx / 2) * c + j]);

    tensor cat = bt_output(f->be, &f->a, 4, (int64_t[]){n, h, w, c + c2});
    expect_ok(backend_concat_channels(f->be, &x, &x2, &cat, &err), &err);
    got = bt_fixture_read(f, &cat);
    for (int64_t r = 0; r < n * h * w; r++) {
        assert_memory_equal(got + r * (c + c2), xh + r * c, sizeof(float) * (size_t)c);
        assert_memory_equal(got + r * (c + c2) + c, x2h + r * c2, sizeof(float) * (size_t)c2);
    }

    tensor part = bt_output(f->be, &f->a, 4, (int64_t[]){n, h, w, c2});
    expect_ok(backend_slice_channels(f->be, &cat, c, &part, &err), &err);
    got = bt_fixture_read(f, &part);
    assert_memory_equal(got, x2h, sizeof(float) * (size_t)(n * h * w * c2));

    tensor same = bt_output(f->be, &f->a, 4, (int64_t[]){n, h, w, c2});
    expect_ok(backend_copy(f->be, &x2, &same, &err), &err);
    got = bt_fixture_read(f, &same);
    assert_memory_equal(got, x2h, sizeof(float) * (size_t)(n * h * w * c2));

    expect_ok(backend_zero(f->be, &same, &err), &err); /* NaN-free: every bit cleared */
    got = bt_fixture_read(f, &same);
    for (int64_t i = 0; i < n * h * w * c2; i++)
        assert_true(got[i] == 0.0f && !signbit(got[i]));
}

static void test_gather_rows_from_weights_and_activations(void **state)
{
    fixture *f = *state;
    sdxl_error err;
    int64_t rows = 50, c = 9, n = 13;
    float *th = bt_fixture_random(f, (size_t)(rows * c), 1.0f);
    int32_t *idh = bt_random_ids(&f->rng, (size_t)n, (int32_t)rows);
    idh[0] = 0;
    idh[1] = (int32_t)rows - 1;
    tensor table = bt_fixture_weight(f, TENSOR_WEIGHT_EMBEDDING, 2, (int64_t[]){rows, c}, th);
    tensor act = bt_input(f->be, &f->a, 2, (int64_t[]){rows, c}, th);
    tensor ids = bt_input_ids(f->be, &f->a, n, idh);
    tensor y = bt_output(f->be, &f->a, 2, (int64_t[]){n, c});
    for (int from_act = 0; from_act < 2; from_act++) {
        expect_ok(backend_gather_rows(f->be, from_act ? &act : &table, &ids, &y, &err), &err);
        float *got = bt_fixture_read(f, &y);
        for (int64_t i = 0; i < n; i++)
            assert_memory_equal(got + i * c, th + idh[i] * c, sizeof(float) * (size_t)c);
    }
    idh[5] = (int32_t)rows; /* one past the end */
    expect_ok(backend_tensor_write(f->be, &ids, DTYPE_I32, idh, (size_t)n, &err), &err);
    assert_int_equal(backend_gather_rows(f->be, &table, &ids, &y, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "ids[5] = 50"));
    free(idh);
}

/* Values computed by diffusers 0.31.0 itself (torch 2.5.1, CPU), in /tmp/refvenv:
 *   t = torch.tensor([0.0, 1.0, 999.0, 500.5, 1024.0])
 *   get_timestep_embedding(t, 10, flip_sin_to_cos=True, downscale_freq_shift=0)
 *   get_timestep_embedding(t, 7, flip_sin_to_cos=False, downscale_freq_shift=1)
 * printed with %.9g. */
static const float timesteps[5] = {0.0f, 1.0f, 999.0f, 500.5f, 1024.0f};
static const float torch_emb_10_flip[5][10] = {
    {1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
    {0.540302336f, 0.987466812f, 0.999684513f, 0.999992073f, 0.999999821f, 0.841470957f,
     0.157826632f, 0.0251162238f, 0.00398106128f, 0.000630957307f},
    {0.999649823f, 0.314189881f, 0.999239802f, -0.670808315f, 0.807835162f, -0.0264607519f,
     0.949360192f, -0.038985163f, -0.741630793f, 0.589408457f},
    {-0.551388979f, -0.708031476f, 0.999984205f, -0.409339666f, 0.95055002f, -0.834248304f,
     -0.706180871f, 0.00562127633f, 0.912382066f, 0.310571462f},
    {0.987353623f, 0.480336785f, 0.83150959f, -0.59379828f, 0.798437774f, -0.158533379f,
     -0.877084136f, 0.555510342f, -0.804613948f, 0.602077365f},
};
static const float torch_emb_7_shift1[5][7] = {
    {0, 0, 0, 1, 1, 1, 0},
    {0.841470957f, 0.00999983307f, 9.99999902e-05f, 0.540302336f, 0.999949992f, 1, 0},
    {-0.0264607519f, -0.535603166f, 0.0997339115f, 0.999649823f, -0.844469786f, 0.995014131f, 0},
    {-0.834248304f, -0.957493961f, 0.0500291027f, -0.551388979f, 0.288453341f, 0.998747766f, 0},
    {-0.158533379f, -0.727877736f, 0.102221124f, 0.987353623f, -0.685706973f, 0.994761705f, 0},
};

static void check_timestep_embedding(fixture *f, int64_t dim, bool flip, float shift,
                                     const float *torch_values)
{
    sdxl_error err;
    int64_t n = 5;
    tensor t = bt_input(f->be, &f->a, 1, &n, timesteps);
    tensor y = bt_output(f->be, &f->a, 2, (int64_t[]){n, dim});
    expect_ok(backend_timestep_embedding(f->be, &t, flip, shift, 10000.0f, &y, &err), &err);
    double want[5 * 10];
    for (int64_t i = 0; i < n * dim; i++)
        want[i] = torch_values[i];
    /* Arguments up to 1024 rad: one float ulp of the argument is ~6e-5 of sin. */
    float *got = bt_fixture_read(f, &y);
    double e = bt_rel_error(got, want, (size_t)(n * dim));
    printf("  timestep_embedding dim %lld vs torch: %.3g\n", (long long)dim, e);
    assert_true(e < 1e-4);
    bt_fixture_release(f);
}

static void test_timestep_embedding_matches_diffusers(void **state)
{
    check_timestep_embedding(*state, 10, true, 0.0f, &torch_emb_10_flip[0][0]);
    check_timestep_embedding(*state, 7, false, 1.0f, &torch_emb_7_shift1[0][0]);
}

/* SDXL's width (320) against the formula in double, given torch's float32 arguments. */
static void test_timestep_embedding_full_width(void **state)
{
    fixture *f = *state;
    sdxl_error err;
    int64_t n = 5, dim = 320, half = 160;
    tensor t = bt_input(f->be, &f->a, 1, &n, timesteps);
    tensor y = bt_output(f->be, &f->a, 2, (int64_t[]){n, dim});
    expect_ok(backend_timestep_embedding(f->be, &t, true, 0.0f, 10000.0f, &y, &err), &err);
    double *want = bt_fixture_doubles(f, (size_t)(n * dim));
    for (int64_t r = 0; r < n; r++)
        for (int64_t i = 0; i < half; i++) {
            float exponent = (float)-log(10000.0) * (float)i / (float)half;
            float arg = timesteps[r] * (float)exp((double)exponent);
            want[r * dim + i] = cos((double)arg);
            want[r * dim + half + i] = sin((double)arg);
        }
    expect_close("timestep_embedding 320", f, &y, want);
}

static void test_host_copies_round_trip(void **state)
{
    fixture *f = *state;
    sdxl_error err;
    int64_t shape[] = {3, 41};
    float *xh = bt_fixture_random(f, 123, 1.0f);
    tensor x = bt_input(f->be, &f->a, 2, shape, xh);
    float *got = bt_fixture_read(f, &x);
    assert_memory_equal(got, xh, 123 * sizeof(float));
    assert_int_equal(backend_tensor_read(f->be, &x, DTYPE_F32, got, 122, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_int_equal(backend_tensor_read(f->be, &x, DTYPE_I32, got, 123, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_int_equal(backend_synchronize(f->be, &err), SDXL_OK);
}

static void test_weights_convert_from_half_types(void **state)
{
    fixture *f = *state;
    sdxl_error err;
    uint16_t h[6], bf[6];
    float want[6] = {1.0f, -2.5f, 0.099975586f, 65504.0f, -0.0f, 3.140625f};
    for (int i = 0; i < 6; i++) {
        h[i] = f32_to_f16(want[i]);
        bf[i] = f32_to_bf16(want[i]);
    }
    int64_t n = 6;
    tensor a, b;
    expect_ok(backend_weight_upload(f->be, TENSOR_WEIGHT_EMBEDDING, 2, (int64_t[]){2, 3},
                                    DTYPE_F16, h, &a, &err), &err);
    expect_ok(backend_weight_upload(f->be, TENSOR_WEIGHT_VECTOR, 1, &n, DTYPE_BF16, bf, &b, &err),
              &err);
    assert_int_equal(a.type, DTYPE_F32);
    for (int i = 0; i < 6; i++) {
        assert_true(((const float *)a.data)[i] == f16_to_f32(h[i]));
        assert_true(((const float *)b.data)[i] == bf16_to_f32(bf[i]));
    }
    backend_weight_free(f->be, &a);
    backend_weight_free(f->be, &b);
    assert_null(a.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_linear_matches_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(test_matmul_matches_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(test_linear_add_is_linear_then_add, setup, teardown),
        cmocka_unit_test_setup_teardown(test_linear_groups_are_linears, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conv2d_matches_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_norm_matches_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layer_norm_matches_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(test_softmax_matches_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(test_softmax_keeps_nan_in_its_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attention_matches_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(test_activations_match_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(test_geglu_matches_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_and_mul_broadcast_trailing_dims, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_scaled_scale_and_add_channels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_scaled_and_scale_round_each_product, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_div_scalar_divides, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clamp_as_torch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gaussian_sample_rounds_each_step, setup, teardown),
        cmocka_unit_test_setup_teardown(test_convert_into_f32, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upsample_concat_slice_copy_are_exact, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_gather_rows_from_weights_and_activations, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_timestep_embedding_matches_diffusers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_timestep_embedding_full_width, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_copies_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_weights_convert_from_half_types, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
