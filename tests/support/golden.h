/*
 * golden.h — reading the golden tensors of tests/golden/data (written by diffusers through
 * tools/reference/make_goldens.py; names, shapes and tolerances in tests/golden/data/README.md)
 * and comparing sdxld's results with them.
 *
 *     golden g;
 *     GOLDEN_ASSERT_OK(golden_open(&g, "rng.safetensors", &err), err);
 *     golden_shape s;
 *     float *want;
 *     GOLDEN_ASSERT_OK(golden_get(&g, "randn.0.out", &s, &want, &err), err);
 *     ... compute got[s.numel] ...
 *     GOLDEN_ASSERT_CLOSE("randn seed 0", got, want, s.numel, 0.0, 0.0);
 *     free(want);
 *     golden_close(&g);
 *
 * golden_compare prints one line per call, pass or fail: the max abs error with its first
 * index, and the relative L2 error, so a test log shows how close every tensor came.
 */
#ifndef SDXL_TESTS_SUPPORT_GOLDEN_H
#define SDXL_TESTS_SUPPORT_GOLDEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "io/safetensors.h"

typedef struct golden {
    safetensors_file st;
} golden;

typedef struct golden_shape {
    int ndim;
    int64_t dims[SAFETENSORS_MAX_DIMS];
    size_t numel;
} golden_shape;

/* Opens tests/golden/data/FILE (FILE is a name like "rng.safetensors"). */
sdxl_status golden_open(golden *g, const char *file, sdxl_error *err);
void golden_close(golden *g);
/* Opens the file of one KIND for one tiny MODEL: "<kind>_<model>.safetensors" ("text",
 * "tiny-a"). */
sdxl_status golden_open_model(golden *g, const char *kind, const char *model, sdxl_error *err);

/* Whether tensor NAME exists (optional tensors, and loops over "<group>.<i>" cases). */
bool golden_has(const golden *g, const char *name);

/* Copies tensor NAME into a new array (*data, freed by the caller with free()) and fills shape.
 * golden_get converts any dtype to float (F64 rounds; U8 pixels become 0..255);
 * golden_get_f64 keeps F64 values exact and widens the other dtypes;
 * golden_get_i64 accepts only integer dtypes (I64, I32, U8). */
sdxl_status golden_get(const golden *g, const char *name, golden_shape *shape, float **data,
                       sdxl_error *err);
sdxl_status golden_get_f64(const golden *g, const char *name, golden_shape *shape,
                           double **data, sdxl_error *err);
sdxl_status golden_get_i64(const golden *g, const char *name, golden_shape *shape,
                           int64_t **data, sdxl_error *err);

/* Metadata value for KEY (prompts, configs, versions); NULL when absent. Owned by g. */
const char *golden_meta(const golden *g, const char *key);

/* Whether shape is exactly (dims[0], ..., dims[ndim-1]). */
bool golden_shape_is(const golden_shape *shape, int ndim, const int64_t *dims);

/* Compares n values: max |actual - expected| <= max_abs and ‖actual - expected‖₂ / ‖expected‖₂
 * <= max_rel_l2 (pass INFINITY to check only the other). A NaN or infinity where expected has a
 * different value fails. Prints both errors, the first worst index and its two values. */
bool golden_compare(const char *label, const float *actual, const float *expected, size_t n,
                    double max_abs, double max_rel_l2);

/* Exact comparison of integers (token ids, timesteps as ints); prints the first mismatch. */
bool golden_compare_i64(const char *label, const int64_t *actual, const int64_t *expected,
                        size_t n);

/* cmocka helpers (the including test has included <cmocka.h>). */
#define GOLDEN_ASSERT_OK(call, err)                                                              \
    do {                                                                                         \
        sdxl_status golden_st_ = (call);                                                         \
        if (golden_st_ != SDXL_OK)                                                               \
            fail_msg("%s failed: %s: %s", #call, sdxl_status_name(golden_st_), (err).message);   \
    } while (0)

#define GOLDEN_ASSERT_CLOSE(label, actual, expected, n, max_abs, max_rel_l2)                     \
    assert_true(golden_compare((label), (actual), (expected), (n), (max_abs), (max_rel_l2)))

#define GOLDEN_ASSERT_IDS_EQUAL(label, actual, expected, n)                                      \
    assert_true(golden_compare_i64((label), (actual), (expected), (n)))

/* A cmocka test run once per tiny model: TEST gets the model name ("tiny-a") as *state. */
#define GOLDEN_MODEL_TEST(test, model) {#test " " model, test, NULL, NULL, (void *)(model)}

#endif /* SDXL_TESTS_SUPPORT_GOLDEN_H */
