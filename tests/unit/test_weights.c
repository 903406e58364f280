/*
 * test_weights.c — stacked linear weights (weights_load_linear_stack): G tensors of a file
 * uploaded as one LINEAR [G·N, K] and one VECTOR [G·N] hold exactly the values of the separate
 * tensors, in the order asked for, whatever their types in the file; each tensor counts as used
 * and towards the progress bytes once; a missing or misshaped tensor is named before anything
 * is uploaded.
 *
 * The file is written here: component "te" of a temporary model folder, with
 *   a.{q,k,v}.weight F16 [4, 3], a.{q,k,v}.bias F32 [4]   (one type: copied as it is)
 *   c.q.weight F16 [2, 3], c.k.weight BF16 [2, 3]          (mixed types: through f32)
 *   b.q.weight F16 [4, 3], b.k.weight F16 [5, 3]           (a misshaped member)
 * Weights are read back through the backend's own ops (a product with the identity, a bias on
 * zeros), so the test does not depend on how the backend lays them out.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/weights.h"
#include "io/safetensors.h"
#include "support/backend_test.h"
#include "support/paths.h"
#include "support/remove_tree.h"

#define N_TENSORS 10
#define K 3

static char model_dir[512];

/* Tensor i's values: distinct, exact in F16 and BF16 (multiples of 1/8 below 16). */
static float value(int which, int element)
{
    return (float)(which * 13 + element) / 8.0f - 4.0f;
}

static const st_tensor_info infos[N_TENSORS] = {
    {"a.q.weight", DTYPE_F16, 2, {4, K}},  {"a.q.bias", DTYPE_F32, 1, {4}},
    {"a.k.weight", DTYPE_F16, 2, {4, K}},  {"a.k.bias", DTYPE_F32, 1, {4}},
    {"a.v.weight", DTYPE_F16, 2, {4, K}},  {"a.v.bias", DTYPE_F32, 1, {4}},
    {"c.q.weight", DTYPE_F16, 2, {2, K}},  {"c.k.weight", DTYPE_BF16, 2, {2, K}},
    {"b.q.weight", DTYPE_F16, 2, {4, K}},  {"b.k.weight", DTYPE_F16, 2, {5, K}},
};

static size_t numel_of(const st_tensor_info *t)
{
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= (size_t)t->shape[i];
    return n;
}

static int write_model(void **state)
{
    if (test_make_temp_dir(model_dir, sizeof model_dir) != SDXL_OK)
        return -1;
    char path[600];
    snprintf(path, sizeof path, "%s/te", model_dir);
    if (mkdir(path, 0755) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/te/model.safetensors", model_dir);
    void *data[N_TENSORS];
    for (int i = 0; i < N_TENSORS; i++) {
        size_t n = numel_of(&infos[i]);
        float *f = malloc(n * sizeof(float));
        data[i] = malloc(n * dtype_size(infos[i].type));
        if (!f || !data[i])
            return -1;
        for (size_t j = 0; j < n; j++)
            f[j] = value(i, (int)j);
        dtype_from_f32(infos[i].type, f, data[i], n);
        free(f);
    }
    sdxl_error err;
    sdxl_status st = safetensors_write_file(path, infos, (const void *const *)data, N_TENSORS,
                                            NULL, &err);
    for (int i = 0; i < N_TENSORS; i++)
        free(data[i]);
    return st == SDXL_OK ? 0 : -1;
}

static int remove_model(void **state)
{
    return test_remove_tree(model_dir);
}

static void expect_ok(sdxl_status st, const sdxl_error *err)
{
    if (st != SDXL_OK)
        fail_msg("%s: %s", sdxl_status_name(st), err->message);
}

static int64_t file_bytes(const char *const *names, int n)
{
    int64_t bytes = 0;
    for (int i = 0; i < N_TENSORS; i++)
        for (int j = 0; j < n; j++)
            if (strcmp(infos[i].name, names[j]) == 0)
                bytes += (int64_t)(numel_of(&infos[i]) * dtype_size(infos[i].type));
    return bytes;
}

/* w [rows, K] as the backend holds it: y = I · wᵀ, so y[i][r] = w[r][i], exactly. */
static float *read_linear(backend *be, const tensor *w)
{
    sdxl_error err;
    int64_t rows = w->shape[0];
    arena a;
    bt_arena(&a, 1 << 16);
    float eye[K * K] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    tensor x = bt_input(be, &a, 2, (int64_t[]){K, K}, eye);
    tensor y = bt_output(be, &a, 2, (int64_t[]){K, rows});
    expect_ok(backend_linear(be, &x, w, NULL, BACKEND_ACT_NONE, &y, &err), &err);
    float *t = bt_read(be, &y), *out = malloc((size_t)(rows * K) * sizeof(float));
    assert_non_null(out);
    for (int64_t r = 0; r < rows; r++)
        for (int i = 0; i < K; i++)
            out[r * K + i] = t[i * rows + r];
    free(t);
    arena_free(&a);
    return out;
}

/* bias [n] as the backend holds it: a product of zeros plus the bias. */
static float *read_bias(backend *be, const tensor *bias, const tensor *w)
{
    sdxl_error err;
    arena a;
    bt_arena(&a, 1 << 16);
    float zeros[K] = {0};
    tensor x = bt_input(be, &a, 2, (int64_t[]){1, K}, zeros);
    tensor y = bt_output(be, &a, 2, (int64_t[]){1, bias->shape[0]});
    expect_ok(backend_linear(be, &x, w, bias, BACKEND_ACT_NONE, &y, &err), &err);
    float *out = bt_read(be, &y);
    arena_free(&a);
    return out;
}

/* The rows of the stack are the tensors `which`, one after another, value for value. */
static void expect_stacked(const float *got, const int *which, int n, int rows_each)
{
    for (int g = 0; g < n; g++)
        for (int j = 0; j < rows_each * K; j++)
            assert_true(got[g * rows_each * K + j] == value(which[g], j));
}

/* Each test's weights: the file opened onto a cpu backend, progress counted from 0. */
typedef struct opened {
    backend *be;
    weights_progress progress;
    weights w;
} opened;

static int open_weights(void **state)
{
    opened *o = calloc(1, sizeof *o);
    if (!o)
        return -1;
    *state = o;
    o->be = bt_backend("cpu", 1);
    sdxl_error err;
    return weights_open(&o->w, model_dir, "te", "model", o->be, &o->progress, &err) == SDXL_OK
               ? 0
               : -1;
}

static int close_weights(void **state)
{
    opened *o = *state;
    weights_close(&o->w);
    backend_destroy(o->be);
    free(o);
    return 0;
}

static void stack_holds_the_tensors_in_the_order_asked(void **state)
{
    opened *o = *state;
    backend *be = o->be;
    weights *w = &o->w;
    sdxl_error err;

    /* v, q, k: the order asked for, not the file's */
    tensor weight = {0}, bias = {0};
    expect_ok(weights_load_linear_stack(w, "a", 3, (const char *const[]){"v", "q", "k"}, 4, K,
                                        &weight, &bias, &err),
              &err);
    assert_int_equal(weight.kind, TENSOR_WEIGHT_LINEAR);
    assert_true(weight.ndim == 2 && weight.shape[0] == 12 && weight.shape[1] == K);
    assert_true(bias.kind == TENSOR_WEIGHT_VECTOR && bias.ndim == 1 && bias.shape[0] == 12);
    float *got = read_linear(be, &weight);
    expect_stacked(got, (const int[]){4, 0, 2}, 3, 4);
    free(got);
    got = read_bias(be, &bias, &weight);
    for (int j = 0; j < 12; j++)
        assert_true(got[j] == value((const int[]){5, 1, 3}[j / 4], j % 4));
    free(got);

    /* F16 and BF16 members: both converted exactly */
    tensor mixed = {0};
    expect_ok(weights_load_linear_stack(w, "c", 2, (const char *const[]){"q", "k"}, 2, K,
                                        &mixed, NULL, &err),
              &err);
    got = read_linear(be, &mixed);
    expect_stacked(got, (const int[]){6, 7}, 2, 2);
    free(got);

    /* every stacked tensor counted once; the b.* group was never asked for */
    const char *loaded[] = {"a.q.weight", "a.k.weight", "a.v.weight", "a.q.bias",
                            "a.k.bias",   "a.v.bias",   "c.q.weight", "c.k.weight"};
    assert_int_equal((int64_t)o->progress.done, file_bytes(loaded, 8));
    assert_int_equal(weights_finish(w, &err), SDXL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "unexpected tensor \"b.k.weight\""));
    backend_weight_free(be, &weight);
    backend_weight_free(be, &bias);
    backend_weight_free(be, &mixed);
}

static void bad_members_are_named_before_any_upload(void **state)
{
    opened *o = *state;
    weights *w = &o->w;
    sdxl_error err;
    tensor weight = {0}, bias = {0};
    assert_int_equal(weights_load_linear_stack(w, "b", 2, (const char *const[]){"q", "k"}, 4, K,
                                               &weight, NULL, &err),
                     SDXL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "tensor \"b.k.weight\" has shape [5, 3] but the "
                                        "model's config.json implies [4, 3]"));
    assert_null(weight.data);
    assert_int_equal(weights_load_linear_stack(w, "a", 2, (const char *const[]){"q", "o"}, 4, K,
                                               &weight, &bias, &err),
                     SDXL_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, "tensor \"a.o.weight\" [4, 3] is missing"));
    /* with biases, every member needs one */
    assert_int_equal(weights_load_linear_stack(w, "c", 2, (const char *const[]){"q", "k"}, 2, K,
                                               &weight, &bias, &err),
                     SDXL_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, "tensor \"c.q.bias\" [2] is missing"));
    assert_true(weight.data == NULL && bias.data == NULL);
    assert_int_equal(o->progress.done, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(stack_holds_the_tensors_in_the_order_asked, open_weights,
                                        close_weights),
        cmocka_unit_test_setup_teardown(bad_members_are_named_before_any_upload, open_weights,
                                        close_weights),
    };
    return cmocka_run_group_tests(tests, write_model, remove_model);
}
