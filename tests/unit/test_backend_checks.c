/*
 * test_backend_checks.c — what the op wrappers refuse, and planning.
 *
 * Bad shapes, kinds, types and aliasing must come back as SDXL_ERR_INVALID_ARGUMENT with a
 * message that names the op and the shapes involved, before any memory is touched (outputs
 * stay NaN). A planning pass (tensors from a planning arena, no memory) must check the same
 * shapes, run nothing, and measure exactly the arena a real pass then fills.
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

typedef bt_fixture fixture;

static int setup(void **state)
{
    *state = bt_fixture_new(2, 4u << 20, 7);
    return 0;
}

static int teardown(void **state)
{
    bt_fixture_free(*state);
    return 0;
}

static float *zeros(size_t n)
{
    float *x = calloc(n ? n : 1, sizeof(float));
    assert_non_null(x);
    return x;
}

static void assert_all_nan(backend *be, const tensor *t)
{
    float *got = bt_read(be, t);
    for (int64_t i = 0; i < tensor_numel(t); i++)
        assert_true(isnan(got[i]));
    free(got);
}

static void test_linear_rejects_bad_shapes_and_kinds(void **state)
{
    fixture *f = *state;
    float *z = zeros(4096);
    tensor x = bt_input(f->be, &f->a, 3, (int64_t[]){2, 5, 7}, z);
    tensor y = bt_output(f->be, &f->a, 3, (int64_t[]){2, 5, 3});
    tensor w = bt_weight(f->be, TENSOR_WEIGHT_LINEAR, 2, (int64_t[]){3, 8}, z);
    tensor w_ok = bt_weight(f->be, TENSOR_WEIGHT_LINEAR, 2, (int64_t[]){3, 7}, z);
    tensor w_conv = bt_weight(f->be, TENSOR_WEIGHT_CONV, 4, (int64_t[]){3, 7, 1, 1}, z);
    tensor bias4 = bt_weight(f->be, TENSOR_WEIGHT_VECTOR, 1, (int64_t[]){4}, z);
    tensor y_bad = bt_output(f->be, &f->a, 3, (int64_t[]){2, 6, 3});
    sdxl_error err;

    assert_int_equal(backend_linear(f->be, &x, &w, NULL, BACKEND_ACT_NONE, &y, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "linear: x [2, 5, 7] has 7 features but the weight "
                                        "[3, 8] takes 8"));
    assert_int_equal(backend_linear(f->be, &x, &w_ok, &bias4, BACKEND_ACT_NONE, &y, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "bias has 4 elements; expected 3"));
    assert_int_equal(backend_linear(f->be, &x, &w_ok, NULL, BACKEND_ACT_NONE, &y_bad, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "y is [2, 6, 3]"));
    /* An activation where a weight belongs, and a weight where an activation belongs. */
    assert_int_equal(backend_linear(f->be, &x, &x, NULL, BACKEND_ACT_NONE, &y, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "w is an activation; expected a LINEAR weight"));
    assert_int_equal(backend_linear(f->be, &w_ok, &w_ok, NULL, BACKEND_ACT_NONE, &y, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "x is a weight"));
    assert_int_equal(backend_linear(f->be, &x, &w_conv, NULL, BACKEND_ACT_NONE, &y, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "linear: w is a CONV weight; expected a LINEAR weight"));
    assert_all_nan(f->be, &y);
    backend_weight_free(f->be, &w);
    backend_weight_free(f->be, &w_ok);
    backend_weight_free(f->be, &bias4);
    backend_weight_free(f->be, &w_conv);
    free(z);
}

static void test_conv_rejects_bad_shapes(void **state)
{
    fixture *f = *state;
    sdxl_error err;
    float *z = zeros(4096);
    tensor x = bt_input(f->be, &f->a, 4, (int64_t[]){1, 8, 8, 4}, z);
    tensor w = bt_weight(f->be, TENSOR_WEIGHT_CONV, 4, (int64_t[]){6, 5, 3, 3}, z);
    tensor w_ok = bt_weight(f->be, TENSOR_WEIGHT_CONV, 4, (int64_t[]){6, 4, 3, 3}, z);
    tensor y = bt_output(f->be, &f->a, 4, (int64_t[]){1, 8, 8, 6});
    conv2d_params same = {1, 1, 1, 1, 1};
    assert_int_equal(backend_conv2d(f->be, &x, &w, NULL, &same, &y, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "conv2d: x [1, 8, 8, 4] must be [N, H, W, Cin] with "
                                        "Cin = 5"));
    conv2d_params stride2 = {2, 1, 1, 1, 1};
    assert_int_equal(backend_conv2d(f->be, &x, &w_ok, NULL, &stride2, &y, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "expected [1, 4, 4, 6]"));
    conv2d_params bad_pad = {1, 3, 1, 1, 1};
    assert_int_equal(backend_conv2d(f->be, &x, &w_ok, NULL, &bad_pad, &y, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "not valid for a 3x3 kernel"));
    conv2d_params zero_stride = {0, 1, 1, 1, 1};
    assert_int_equal(backend_conv2d(f->be, &x, &w_ok, NULL, &zero_stride, &y, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    /* In place is refused: the output would overwrite input the kernel still reads. */
    tensor xy = bt_output(f->be, &f->a, 4, (int64_t[]){1, 8, 8, 4});
    tensor w44 = bt_weight(f->be, TENSOR_WEIGHT_CONV, 4, (int64_t[]){4, 4, 3, 3}, z);
    assert_int_equal(backend_conv2d(f->be, &xy, &w44, NULL, &same, &xy, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "cannot run in place"));
    assert_all_nan(f->be, &y);
    backend_weight_free(f->be, &w);
    backend_weight_free(f->be, &w_ok);
    backend_weight_free(f->be, &w44);
    free(z);
}

static void test_other_ops_reject_bad_shapes(void **state)
{
    fixture *f = *state;
    sdxl_error err;
    float *z = zeros(8192);
    tensor x = bt_input(f->be, &f->a, 4, (int64_t[]){2, 3, 3, 12}, z);
    tensor y = bt_output(f->be, &f->a, 4, (int64_t[]){2, 3, 3, 12});
    tensor g12 = bt_weight(f->be, TENSOR_WEIGHT_VECTOR, 1, (int64_t[]){12}, z);
    tensor g10 = bt_weight(f->be, TENSOR_WEIGHT_VECTOR, 1, (int64_t[]){10}, z);

    assert_int_equal(backend_group_norm(f->be, &x, 5, 1e-5f, &g12, &g12, false, &y, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "group_norm: 5 groups do not divide 12 channels"));
    assert_int_equal(backend_group_norm(f->be, &x, 4, 1e-5f, &g10, &g12, false, &y, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "gamma has 10 elements; expected 12"));
    assert_int_equal(backend_layer_norm(f->be, &x, 0.0f, &g12, &g12, &y, &err),
                     SDXL_ERR_INVALID_ARGUMENT);

    tensor q = bt_input(f->be, &f->a, 3, (int64_t[]){2, 5, 12}, z);
    tensor k = bt_input(f->be, &f->a, 3, (int64_t[]){2, 7, 12}, z);
    tensor k8 = bt_input(f->be, &f->a, 3, (int64_t[]){2, 7, 8}, z);
    tensor out = bt_output(f->be, &f->a, 3, (int64_t[]){2, 5, 12});
    assert_int_equal(backend_attention(f->be, &q, &k, &k, 5, false, &out, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "attention: 5 heads do not split width 12"));
    assert_int_equal(backend_attention(f->be, &q, &k, &k, 3, true, &out, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "causal mask needs as many keys as queries"));
    assert_int_equal(backend_attention(f->be, &q, &k8, &k8, 2, false, &out, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "k [2, 7, 8] and v [2, 7, 8] must both be [2, Tk, 12]"));
    assert_int_equal(backend_attention(f->be, &q, &k, &k, 3, false, &q, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_all_nan(f->be, &out);

    tensor half = bt_output(f->be, &f->a, 4, (int64_t[]){2, 3, 3, 5});
    assert_int_equal(backend_geglu(f->be, &x, &half, &err), SDXL_ERR_INVALID_ARGUMENT);
    tensor z5 = bt_input(f->be, &f->a, 1, (int64_t[]){5}, z);
    assert_int_equal(backend_add(f->be, &x, &z5, &y, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "add: z [5] is neither x's shape"));
    tensor e = bt_input(f->be, &f->a, 2, (int64_t[]){3, 12}, z);
    assert_int_equal(backend_add_channels(f->be, &x, &e, &y, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "e [3, 12] must be [N, C] for x [2, 3, 3, 12]"));
    tensor up = bt_output(f->be, &f->a, 4, (int64_t[]){2, 6, 5, 12});
    assert_int_equal(backend_upsample_nearest2x(f->be, &x, &up, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    tensor cat = bt_output(f->be, &f->a, 4, (int64_t[]){2, 3, 3, 23});
    assert_int_equal(backend_concat_channels(f->be, &x, &x, &cat, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    tensor part = bt_output(f->be, &f->a, 4, (int64_t[]){2, 3, 3, 5});
    assert_int_equal(backend_slice_channels(f->be, &x, 8, &part, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "channels 8.. of y [2, 3, 3, 5] do not fit"));
    tensor ids_f = bt_input(f->be, &f->a, 1, (int64_t[]){4}, z);
    tensor rows = bt_output(f->be, &f->a, 2, (int64_t[]){4, 12});
    tensor table = bt_input(f->be, &f->a, 2, (int64_t[]){6, 12}, z);
    assert_int_equal(backend_gather_rows(f->be, &table, &ids_f, &rows, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "ids is F32; expected I32"));
    /* Partial overlap is refused even where in place is allowed. */
    tensor shifted = y;
    shifted.data = (float *)y.data + 1;
    assert_int_equal(backend_scale(f->be, &y, 1.0f, 0.0f, &shifted, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "partly overlaps"));
    assert_all_nan(f->be, &y);
    backend_weight_free(f->be, &g12);
    backend_weight_free(f->be, &g10);
    free(z);
}

static void test_unknown_backend_and_types_are_refused(void **state)
{
    sdxl_error err;
    backend *be = NULL;
    assert_int_equal(backend_create("tpu", NULL, &be, &err), SDXL_ERR_UNSUPPORTED);
    assert_null(be);
    assert_non_null(strstr(err.message, "backend \"tpu\" is not available"));
    backend_params p = backend_default_params();
    p.compute_type = DTYPE_F16;
    assert_int_equal(backend_create("cpu", &p, &be, &err), SDXL_ERR_UNSUPPORTED);
    assert_null(be);
    fixture *f = *state;
    tensor w;
    int32_t ints[4] = {0};
    assert_int_equal(backend_weight_upload(f->be, TENSOR_WEIGHT_VECTOR, 1, (int64_t[]){4},
                                           DTYPE_I32, ints, &w, &err),
                     SDXL_ERR_UNSUPPORTED);
    assert_int_equal(backend_weight_upload(f->be, TENSOR_WEIGHT_CONV, 2, (int64_t[]){4, 4},
                                           DTYPE_F32, ints, &w, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_string_equal(backend_name(f->be), "cpu");
    assert_int_equal(backend_compute_type(f->be), DTYPE_F32);
    /* The cpu backend runs ops as they come: it cannot record them. */
    assert_false(backend_can_record(f->be));
    assert_int_equal(backend_record_begin(f->be, &err), SDXL_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "cannot record"));
    assert_false(f->be->recording);
}

/* A small block (norm, conv, attention over its pixels), run on any arena. */
static sdxl_status block_forward(backend *be, arena *a, const tensor *w, const tensor *g,
                                 const float *input, int64_t n, int64_t hw, tensor *out,
                                 sdxl_error *err)
{
    tensor x, h, c;
    sdxl_status st;
    if ((st = tensor_alloc(&x, a, DTYPE_F32, 4, (int64_t[]){n, hw, hw, 8}, err)) ||
        (st = backend_tensor_write(be, &x, DTYPE_F32, input, (size_t)(n * hw * hw * 8), err)) ||
        (st = tensor_alloc_like(&h, a, &x, err)) ||
        (st = backend_group_norm(be, &x, 2, 1e-5f, g, g, true, &h, err)) ||
        (st = tensor_alloc_like(&c, a, &x, err)) ||
        (st = backend_conv2d(be, &h, w, NULL, &(conv2d_params){1, 1, 1, 1, 1}, &c, err)))
        return st;
    tensor tokens;
    if ((st = tensor_reshape(&tokens, &c, 3, (int64_t[]){n, hw * hw, 8}, err)) ||
        (st = tensor_alloc(out, a, DTYPE_F32, 3, (int64_t[]){n, hw * hw, 8}, err)))
        return st;
    return backend_attention(be, &tokens, &tokens, &tokens, 2, false, out, err);
}

static void test_planning_checks_shapes_and_sizes_the_arena(void **state)
{
    fixture *f = *state;
    sdxl_error err;
    uint64_t rng = 3;
    float *wh = bt_random(&rng, 8 * 8 * 9, 0.1f);
    float *gh = bt_random(&rng, 8, 1.0f);
    float *input = bt_random(&rng, 2 * 9 * 9 * 8, 1.0f);
    tensor w = bt_weight(f->be, TENSOR_WEIGHT_CONV, 4, (int64_t[]){8, 8, 3, 3}, wh);
    tensor g = bt_weight(f->be, TENSOR_WEIGHT_VECTOR, 1, (int64_t[]){8}, gh);

    arena plan;
    arena_init_planning(&plan);
    tensor out;
    assert_int_equal(block_forward(f->be, &plan, &w, &g, input, 2, 9, &out, &err), SDXL_OK);
    assert_null(out.data);
    size_t need = arena_peak(&plan);
    assert_true(need >= 4 * sizeof(float) * 2 * 9 * 9 * 8);

    /* Exactly the planned size suffices; a byte less does not, and says so. */
    arena real;
    void *mem;
    assert_int_equal(backend_buffer_alloc(f->be, need, &mem, &err), SDXL_OK);
    arena_init_borrowed(&real, mem, need);
    assert_int_equal(block_forward(f->be, &real, &w, &g, input, 2, 9, &out, &err), SDXL_OK);
    float *got = bt_read(f->be, &out);
    for (size_t i = 0; i < 2 * 81 * 8; i++)
        assert_true(isfinite(got[i]));
    free(got);
    arena_init_borrowed(&real, mem, need - 1);
    assert_int_equal(block_forward(f->be, &real, &w, &g, input, 2, 9, &out, &err),
                     SDXL_ERR_OUT_OF_MEMORY);
    assert_non_null(strstr(err.message, "do not fit in the activation arena"));
    backend_buffer_free(f->be, mem);

    /* A shape error shows up while planning, before any memory exists. */
    arena_init_planning(&plan);
    tensor bad_w = bt_weight(f->be, TENSOR_WEIGHT_CONV, 4, (int64_t[]){8, 7, 3, 3}, wh);
    assert_int_equal(block_forward(f->be, &plan, &bad_w, &g, input, 2, 9, &out, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "conv2d"));

    /* A real output fed from a planned input is a mix-up, not a silent no-op. */
    tensor planned, real_out;
    assert_int_equal(tensor_alloc(&planned, &plan, DTYPE_F32, 1, (int64_t[]){8}, &err), SDXL_OK);
    real_out = bt_output(f->be, &f->a, 1, (int64_t[]){8});
    assert_int_equal(backend_silu(f->be, &planned, &real_out, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "no memory (planned)"));
    backend_weight_free(f->be, &w);
    backend_weight_free(f->be, &bad_w);
    backend_weight_free(f->be, &g);
    free(wh);
    free(gh);
    free(input);
}

static void test_views_share_memory_and_check_bounds(void **state)
{
    fixture *f = *state;
    sdxl_error err;
    uint64_t rng = 5;
    float *xh = bt_random(&rng, 3 * 4 * 5, 1.0f);
    tensor x = bt_input(f->be, &f->a, 3, (int64_t[]){3, 4, 5}, xh);
    tensor one;
    assert_int_equal(tensor_view_outer(&one, &x, 1, 2, &err), SDXL_OK);
    assert_int_equal(one.shape[0], 2);
    assert_ptr_equal(one.data, (float *)x.data + 20);
    assert_int_equal(tensor_view_outer(&one, &x, 2, 2, &err), SDXL_ERR_INVALID_ARGUMENT);
    tensor flat;
    assert_int_equal(tensor_reshape(&flat, &x, 2, (int64_t[]){12, 5}, &err), SDXL_OK);
    assert_int_equal(tensor_reshape(&flat, &x, 2, (int64_t[]){12, 6}, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "[3, 4, 5] has 60 elements, [12, 6] has 72"));
    char buf[8];
    assert_string_equal(tensor_shape_str(&x, buf, sizeof(buf)), "[3, 4, "); /* truncated */
    free(xh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_linear_rejects_bad_shapes_and_kinds, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_conv_rejects_bad_shapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_ops_reject_bad_shapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_backend_and_types_are_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_planning_checks_shapes_and_sizes_the_arena, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_views_share_memory_and_check_bounds, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
