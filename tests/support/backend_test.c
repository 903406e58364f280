/*
 * backend_test.c — helpers for tests of backend ops (see backend_test.h).
 */
#include "support/backend_test.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static void check(sdxl_status st, const sdxl_error *err)
{
    if (st != SDXL_OK)
        fail_msg("%s: %s", sdxl_status_name(st), err->message);
}

backend *bt_backend(const char *name, int n_threads)
{
    sdxl_error err;
    backend_params p = backend_default_params();
    p.n_threads = n_threads;
    backend *be = NULL;
    check(backend_create(name, &p, &be, &err), &err);
    return be;
}

void bt_arena(arena *a, size_t bytes)
{
    sdxl_error err;
    check(arena_init(a, bytes, &err), &err);
}

bt_fixture *bt_fixture_new(int n_threads, size_t arena_bytes, uint64_t seed)
{
    bt_fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->be = bt_backend("cpu", n_threads);
    bt_arena(&f->a, arena_bytes);
    f->rng = seed;
    return f;
}

void bt_fixture_free(bt_fixture *f)
{
    bt_fixture_release(f);
    arena_free(&f->a);
    backend_destroy(f->be);
    free(f);
}

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

float *bt_random(uint64_t *state, size_t n, float scale)
{
    float *x = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(x);
    for (size_t i = 0; i < n; i++) {
        double u = (double)(splitmix64(state) >> 11) * 0x1.0p-53; /* [0, 1) */
        x[i] = (float)((2.0 * u - 1.0) * scale);
    }
    return x;
}

int32_t *bt_random_ids(uint64_t *state, size_t n, int32_t limit)
{
    int32_t *x = malloc((n ? n : 1) * sizeof(int32_t));
    assert_non_null(x);
    for (size_t i = 0; i < n; i++)
        x[i] = (int32_t)(splitmix64(state) % (uint64_t)limit);
    return x;
}

tensor bt_input(backend *be, arena *a, int ndim, const int64_t *shape, const float *host)
{
    sdxl_error err;
    tensor t;
    check(tensor_alloc(&t, a, DTYPE_F32, ndim, shape, &err), &err);
    check(backend_tensor_write(be, &t, DTYPE_F32, host, (size_t)tensor_numel(&t), &err), &err);
    return t;
}

tensor bt_input_ids(backend *be, arena *a, int64_t n, const int32_t *ids)
{
    sdxl_error err;
    tensor t;
    check(tensor_alloc(&t, a, DTYPE_I32, 1, &n, &err), &err);
    check(backend_tensor_write(be, &t, DTYPE_I32, ids, (size_t)n, &err), &err);
    return t;
}

tensor bt_output(backend *be, arena *a, int ndim, const int64_t *shape)
{
    sdxl_error err;
    tensor t;
    check(tensor_alloc(&t, a, DTYPE_F32, ndim, shape, &err), &err);
    size_t n = (size_t)tensor_numel(&t);
    float *nan = malloc(n * sizeof(float));
    assert_non_null(nan);
    for (size_t i = 0; i < n; i++)
        nan[i] = NAN;
    check(backend_tensor_write(be, &t, DTYPE_F32, nan, n, &err), &err);
    free(nan);
    return t;
}

tensor bt_weight(backend *be, tensor_kind kind, int ndim, const int64_t *shape,
                 const float *host)
{
    sdxl_error err;
    tensor t;
    check(backend_weight_upload(be, kind, ndim, shape, DTYPE_F32, host, &t, &err), &err);
    return t;
}

float *bt_read(backend *be, const tensor *t)
{
    sdxl_error err;
    size_t n = (size_t)tensor_numel(t);
    float *x = malloc(n * sizeof(float));
    assert_non_null(x);
    check(backend_tensor_read(be, t, DTYPE_F32, x, n, &err), &err);
    return x;
}

/* n values through one pixel op: in [n] of in_type to out [n] of out_type (host arrays). */
static void run_pixels_op(backend *be, bool normalize, const void *in, void *out, size_t n)
{
    sdxl_error err;
    dtype in_type = normalize ? DTYPE_U8 : DTYPE_F32, out_type = normalize ? DTYPE_F32 : DTYPE_U8;
    arena a;
    bt_arena(&a, 2 * n * sizeof(float) + 2 * TENSOR_ALIGN);
    tensor x, y;
    check(tensor_alloc(&x, &a, in_type, 1, (int64_t[]){(int64_t)n}, &err), &err);
    check(tensor_alloc(&y, &a, out_type, 1, (int64_t[]){(int64_t)n}, &err), &err);
    check(backend_tensor_write(be, &x, in_type, in, n, &err), &err);
    check(normalize ? backend_normalize_pixels(be, &x, &y, &err)
                    : backend_denormalize_pixels(be, &x, &y, &err),
          &err);
    check(backend_tensor_read(be, &y, out_type, out, n, &err), &err);
    arena_free(&a);
}

void bt_normalize_pixels(backend *be, const uint8_t *in, size_t n, float *out)
{
    run_pixels_op(be, true, in, out, n);
}

void bt_denormalize_pixels(backend *be, const float *in, size_t n, uint8_t *out)
{
    run_pixels_op(be, false, in, out, n);
}

double bt_rel_error(const float *got, const double *want, size_t n)
{
    double max_err = 0.0, max_want = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i]))
            return INFINITY;
        double e = fabs((double)got[i] - want[i]);
        max_err = e > max_err ? e : max_err;
        max_want = fabs(want[i]) > max_want ? fabs(want[i]) : max_want;
    }
    return max_want > 0.0 ? max_err / max_want : max_err;
}

static void *hold_host(bt_fixture *f, void *p)
{
    assert_true(f->n_held_host < BT_FIXTURE_MAX_HELD);
    f->held_host[f->n_held_host++] = p;
    return p;
}

float *bt_fixture_random(bt_fixture *f, size_t n, float scale)
{
    return hold_host(f, bt_random(&f->rng, n, scale));
}

double *bt_fixture_doubles(bt_fixture *f, size_t n)
{
    double *x = malloc((n ? n : 1) * sizeof(double));
    assert_non_null(x);
    return hold_host(f, x);
}

tensor bt_fixture_weight(bt_fixture *f, tensor_kind kind, int ndim, const int64_t *shape,
                         const float *host)
{
    assert_true(f->n_held_weights < BT_FIXTURE_MAX_HELD);
    tensor t = bt_weight(f->be, kind, ndim, shape, host);
    f->held_weights[f->n_held_weights++] = t;
    return t;
}

float *bt_fixture_read(bt_fixture *f, const tensor *t)
{
    return hold_host(f, bt_read(f->be, t));
}

void bt_fixture_release(bt_fixture *f)
{
    for (int i = 0; i < f->n_held_host; i++)
        free(f->held_host[i]);
    for (int i = 0; i < f->n_held_weights; i++)
        backend_weight_free(f->be, &f->held_weights[i]);
    f->n_held_host = 0;
    f->n_held_weights = 0;
    arena_reset_to(&f->a, 0);
}
