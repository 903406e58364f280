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

/* An activation of the given type holding zeros (written as that type's bits). */
static tensor typed_input(fixture *f, dtype type, int ndim, const int64_t *shape)
{
    sdxl_error err;
    tensor t;
    assert_int_equal(tensor_alloc(&t, &f->a, type, ndim, shape, &err), SDXL_OK);
    void *zero = calloc((size_t)tensor_numel(&t), dtype_size(type));
    assert_non_null(zero);
    assert_int_equal(backend_tensor_write(f->be, &t, type, zero, (size_t)tensor_numel(&t), &err),
                     SDXL_OK);
    free(zero);
    return t;
}

/* The element-wise ops take F32 or the compute type (on cpu both are F32), all operands of one
 * type; convert reads any float type into F32 or the compute type; the pixel ops go between U8
 * and those. The rest is refused before anything runs. */
static void test_elementwise_type_rule_and_its_refusals(void **state)
{
    fixture *f = *state;
    sdxl_error err;
    int64_t shape[2] = {3, 8};
    float *z = zeros(24);
    tensor x = bt_input(f->be, &f->a, 2, shape, z);
    tensor y = bt_output(f->be, &f->a, 2, shape);
    tensor h = typed_input(f, DTYPE_F16, 2, shape), bf = typed_input(f, DTYPE_BF16, 2, shape);
    tensor ids = typed_input(f, DTYPE_I32, 2, shape);
    tensor h_out = typed_input(f, DTYPE_F16, 2, shape);

    assert_int_equal(backend_add(f->be, &h, &h, &h_out, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "add: x is F16; this op takes F32 or the backend's "
                                        "compute type F32"));
    assert_int_equal(backend_add_scaled(f->be, 1.0f, &x, 1.0f, &h, &y, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "add_scaled: z is F16; expected F32"));
    assert_int_equal(backend_mul(f->be, &x, &x, &h_out, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "mul: y is F16; expected F32"));
    assert_int_equal(backend_scale(f->be, &ids, 2.0f, 0.0f, &y, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "scale: x is I32"));
    assert_int_equal(backend_gaussian_sample(f->be, &x, &bf, &x, &y, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "gaussian_sample: logvar is BF16; expected F32"));
    tensor x5 = bt_input(f->be, &f->a, 2, (int64_t[]){3, 5}, z);
    assert_int_equal(backend_gaussian_sample(f->be, &x, &x, &x5, &y, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "mean [3, 8] and noise [3, 5] differ in shape"));

    assert_int_equal(backend_div_scalar(f->be, &x, 0.0f, &y, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "div_scalar: divisor 0 must be finite and nonzero"));
    assert_int_equal(backend_div_scalar(f->be, &x, INFINITY, &y, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_int_equal(backend_clamp(f->be, &x, 1.0f, -1.0f, &y, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "clamp: bounds [1, -1] must be numbers with lo <= hi"));
    assert_int_equal(backend_clamp(f->be, &x, NAN, 1.0f, &y, &err), SDXL_ERR_INVALID_ARGUMENT);

    /* convert: any float type in, F32 or the compute type out, never in place. */
    assert_int_equal(backend_convert(f->be, &ids, &y, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "convert: x is I32; only float tensors"));
    assert_int_equal(backend_convert(f->be, &x, &h_out, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "convert: y is F16; this op takes F32 or the backend's "
                                        "compute type F32"));
    assert_int_equal(backend_convert(f->be, &y, &y, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "cannot run in place"));
    assert_int_equal(backend_convert(f->be, &h, &x5, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "differ in shape"));
    /* A refused op writes nothing. */
    tensor fresh = bt_output(f->be, &f->a, 2, shape);
    assert_int_equal(backend_div_scalar(f->be, &x, 0.0f, &fresh, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_int_equal(backend_clamp(f->be, &x, 2.0f, 1.0f, &fresh, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_int_equal(backend_convert(f->be, &ids, &fresh, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_all_nan(f->be, &fresh);

    /* The pixel ops: bytes in and floats out, or floats in and bytes out, nothing else. */
    tensor bytes = typed_input(f, DTYPE_U8, 2, shape);
    assert_int_equal(backend_normalize_pixels(f->be, &x, &y, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "normalize_pixels: x is F32; expected U8"));
    assert_int_equal(backend_normalize_pixels(f->be, &bytes, &h_out, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "normalize_pixels: y is F16"));
    assert_int_equal(backend_denormalize_pixels(f->be, &x, &fresh, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "denormalize_pixels: y is F32; expected U8"));
    assert_int_equal(backend_denormalize_pixels(f->be, &x5, &bytes, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "differ in shape"));
    assert_all_nan(f->be, &fresh);
    assert_int_equal(backend_normalize_pixels(f->be, &bytes, &y, &err), SDXL_OK);
    assert_int_equal(backend_denormalize_pixels(f->be, &y, &bytes, &err), SDXL_OK);

    /* Accepted: F32 everywhere, and F16 or BF16 read into F32. */
    assert_int_equal(backend_convert(f->be, &h, &y, &err), SDXL_OK);
    assert_int_equal(backend_convert(f->be, &bf, &y, &err), SDXL_OK);
    assert_int_equal(backend_gaussian_sample(f->be, &x, &x, &x, &x, &err), SDXL_OK);
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

/* The fused products refuse what linear refuses, and their own mistakes: a residual output
 * over the input, groups that do not split the weight, an output without the groups. */
static void test_fused_linears_reject_bad_shapes(void **state)
{
    fixture *f = *state;
    float *z = zeros(4096);
    sdxl_error err;
    tensor x = bt_input(f->be, &f->a, 3, (int64_t[]){2, 5, 8}, z);
    tensor y = bt_output(f->be, &f->a, 3, (int64_t[]){2, 5, 3});
    tensor w = bt_weight(f->be, TENSOR_WEIGHT_LINEAR, 2, (int64_t[]){3, 8}, z);
    tensor w6 = bt_weight(f->be, TENSOR_WEIGHT_LINEAR, 2, (int64_t[]){6, 8}, z);
    tensor bias3 = bt_weight(f->be, TENSOR_WEIGHT_VECTOR, 1, (int64_t[]){3}, z);
    tensor g = bt_output(f->be, &f->a, 4, (int64_t[]){2, 2, 5, 3});

    assert_int_equal(backend_linear_add(f->be, &x, &w, NULL, &x, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "linear_add: y is [2, 5, 8]"));
    /* A square weight lets y be x in shape too: the output would overwrite its input. */
    tensor sq = bt_input(f->be, &f->a, 3, (int64_t[]){2, 4, 3}, z);
    tensor w33 = bt_weight(f->be, TENSOR_WEIGHT_LINEAR, 2, (int64_t[]){3, 3}, z);
    assert_int_equal(backend_linear_add(f->be, &sq, &w33, NULL, &sq, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "linear_add: output y overlaps input x"));
    assert_int_equal(backend_linear_add(f->be, &x, &w6, NULL, &y, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "expected x's leading dimensions and 6 features"));

    assert_int_equal(backend_linear_groups(f->be, &x, &w6, NULL, 4, &g, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(
        strstr(err.message, "linear_groups: 4 groups do not split the weight [6, 8]"));
    assert_int_equal(backend_linear_groups(f->be, &x, &w6, NULL, 0, &g, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_int_equal(backend_linear_groups(f->be, &x, &w6, &bias3, 2, &g, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "bias has 3 elements; expected 6"));
    assert_int_equal(backend_linear_groups(f->be, &x, &w6, NULL, 2, &y, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "expected [groups] then x's leading dimensions"));
    assert_int_equal(backend_linear_groups(f->be, &x, &w6, NULL, 3, &g, &err),
                     SDXL_ERR_INVALID_ARGUMENT); /* [3, ...] would be wanted, not [2, ...] */
    assert_all_nan(f->be, &y);
    assert_all_nan(f->be, &g);
    assert_int_equal(backend_linear_groups(f->be, &x, &w6, NULL, 2, &g, &err), SDXL_OK);
    backend_weight_free(f->be, &w);
    backend_weight_free(f->be, &w6);
    backend_weight_free(f->be, &w33);
    backend_weight_free(f->be, &bias3);
    free(z);
}

/* A slice of a grouped output is one group, its memory inside the whole. */
static void test_view_slice_drops_the_outer_dimension(void **state)
{
    fixture *f = *state;
    sdxl_error err;
    float *z = zeros(3 * 2 * 4 * 5);
    tensor y = bt_input(f->be, &f->a, 4, (int64_t[]){3, 2, 4, 5}, z);
    tensor s;
    assert_int_equal(tensor_view_slice(&s, &y, 2, &err), SDXL_OK);
    assert_int_equal(s.ndim, 3);
    assert_true(s.shape[0] == 2 && s.shape[1] == 4 && s.shape[2] == 5 && s.shape[3] == 0);
    assert_ptr_equal(s.data, (float *)y.data + 2 * 40);
    assert_int_equal(tensor_view_slice(&s, &y, 3, &err), SDXL_ERR_INVALID_ARGUMENT);
    tensor flat;
    assert_int_equal(tensor_reshape(&flat, &y, 1, (int64_t[]){120}, &err), SDXL_OK);
    assert_int_equal(tensor_view_slice(&s, &flat, 0, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "tensor slice: [120] has one dimension"));
    free(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_linear_rejects_bad_shapes_and_kinds, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_conv_rejects_bad_shapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_ops_reject_bad_shapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_elementwise_type_rule_and_its_refusals, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unknown_backend_and_types_are_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_planning_checks_shapes_and_sizes_the_arena, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_views_share_memory_and_check_bounds, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fused_linears_reject_bad_shapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_view_slice_drops_the_outer_dimension, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
