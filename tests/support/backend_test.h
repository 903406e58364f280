/*
 * backend_test.h — helpers for tests of backend ops: random inputs, NaN-poisoned outputs,
 * tensors made in one line, reading results back, and the error measure the op tests use.
 *
 * The helpers fail the running cmocka test on any error, so a test reads as the op it checks:
 *
 *     backend *be = bt_backend("cpu", 2);
 *     arena a; bt_arena(&a, 1 << 20);
 *     uint64_t rng = 1;
 *     float *xh = bt_random(&rng, 2 * 3 * 8, 1.0f);
 *     tensor x = bt_input(be, &a, 3, (int64_t[]){2, 3, 8}, xh);
 *     tensor y = bt_output(be, &a, 3, (int64_t[]){2, 3, 8});   // filled with NaN
 *     assert_int_equal(backend_silu(be, &x, &y, NULL), SDXL_OK);
 *     float *yh = bt_read(be, &y);
 */
#ifndef SDXL_TESTS_SUPPORT_BACKEND_TEST_H
#define SDXL_TESTS_SUPPORT_BACKEND_TEST_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"

/* A backend by name with n_threads threads (compute type F32). */
backend *bt_backend(const char *name, int n_threads);
/* A real arena of `bytes` bytes (arena_free it). */
void bt_arena(arena *a, size_t bytes);

/* What the op tests work with: a cpu backend of n_threads threads, a real arena of arena_bytes
 * bytes and a random stream starting at seed (bt_fixture_free frees all). */
#define BT_FIXTURE_MAX_HELD 16
typedef struct bt_fixture {
    backend *be;
    arena a;
    uint64_t rng;
    /* What one check holds until bt_fixture_release, so that a check ends in one call. */
    void *held_host[BT_FIXTURE_MAX_HELD];
    int n_held_host;
    tensor held_weights[BT_FIXTURE_MAX_HELD];
    int n_held_weights;
} bt_fixture;
bt_fixture *bt_fixture_new(int n_threads, size_t arena_bytes, uint64_t seed);
void bt_fixture_free(bt_fixture *f);

/* Held by f until bt_fixture_release: n random floats from f->rng (as bt_random), n doubles
 * for a reference result, a weight (as bt_weight), a tensor's contents (as bt_read). */
float *bt_fixture_random(bt_fixture *f, size_t n, float scale);
double *bt_fixture_doubles(bt_fixture *f, size_t n);
tensor bt_fixture_weight(bt_fixture *f, tensor_kind kind, int ndim, const int64_t *shape,
                         const float *host);
float *bt_fixture_read(bt_fixture *f, const tensor *t);
/* Frees everything held and empties the arena, ready for the next check. */
void bt_fixture_release(bt_fixture *f);

/* n floats uniform in [-scale, scale), from a splitmix64 stream (state advanced). Caller frees. */
float *bt_random(uint64_t *state, size_t n, float scale);
/* n int32 uniform in [0, limit). Caller frees. */
int32_t *bt_random_ids(uint64_t *state, size_t n, int32_t limit);

/* An activation holding host (F32, or I32 for bt_input_ids). */
tensor bt_input(backend *be, arena *a, int ndim, const int64_t *shape, const float *host);
tensor bt_input_ids(backend *be, arena *a, int64_t n, const int32_t *ids);
/* An activation filled with NaN, so that an element the op forgets to write shows up. */
tensor bt_output(backend *be, arena *a, int ndim, const int64_t *shape);
/* A weight of the given kind from host f32 in PyTorch layout. backend_weight_free it. */
tensor bt_weight(backend *be, tensor_kind kind, int ndim, const int64_t *shape,
                 const float *host);
/* The tensor's contents as f32 (malloc'd; caller frees). */
float *bt_read(backend *be, const tensor *t);

/* backend_normalize_pixels / backend_denormalize_pixels on n host values (F32 floats). */
void bt_normalize_pixels(backend *be, const uint8_t *in, size_t n, float *out);
void bt_denormalize_pixels(backend *be, const float *in, size_t n, uint8_t *out);

/* max_i |got_i - want_i| / max_i |want_i|, or +inf when any got_i is NaN or infinite. */
double bt_rel_error(const float *got, const double *want, size_t n);

#endif /* SDXL_TESTS_SUPPORT_BACKEND_TEST_H */
