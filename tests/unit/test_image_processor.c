/*
 * test_image_processor.c — diffusers' VaeImageProcessor for SDXL: preprocess (size rounded
 * down to a multiple of 8, Lanczos resize, then the cpu backend's backend_normalize_pixels to
 * [-1, 1]) and postprocess (backend_denormalize_pixels: to uint8 with round half to even)
 * equal diffusers bit for bit (tests/golden/data/image_processor.safetensors, from
 * tools/reference/image_goldens.py; postprocess inputs include every rounding tie). The goldens
 * are diffusers' NCHW; sdxld's processor is NHWC, so the test transposes.
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

#include "engine/image_processor.h"
#include "support/backend_test.h"
#include "support/golden.h"

static backend *cpu; /* the group's: the pixel arithmetic is a backend op */

/* [1, 3, h, w] → [h, w, 3]. */
static float *nchw_to_nhwc(const float *in, int h, int w)
{
    float *out = malloc(sizeof *out * (size_t)h * w * 3);
    assert_non_null(out);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < h * w; i++)
            out[(size_t)i * 3 + c] = in[(size_t)c * h * w + i];
    return out;
}

/* Calls check on every case "<group>.<i>.input" / "<group>.<i>.output" of the goldens (the
 * values as golden_get gives them) and requires at least min_cases of them. */
typedef void (*case_check)(const golden_shape *in_shape, const float *in,
                           const golden_shape *out_shape, const float *want);

static void check_every_case(const char *group, int min_cases, case_check check)
{
    golden g;
    sdxl_error err = {0};
    GOLDEN_ASSERT_OK(golden_open(&g, "image_processor.safetensors", &err), err);
    int i = 0;
    for (;; i++) {
        char in_name[64], out_name[64];
        snprintf(in_name, sizeof in_name, "%s.%d.input", group, i);
        snprintf(out_name, sizeof out_name, "%s.%d.output", group, i);
        if (!golden_has(&g, in_name))
            break;
        golden_shape in_shape, out_shape;
        float *in, *want;
        GOLDEN_ASSERT_OK(golden_get(&g, in_name, &in_shape, &in, &err), err);
        GOLDEN_ASSERT_OK(golden_get(&g, out_name, &out_shape, &want, &err), err);
        check(&in_shape, in, &out_shape, want);
        free(want);
        free(in);
    }
    assert_true(i >= min_cases);
    golden_close(&g);
}

/* in: [h, w, 3] bytes; want: [1, 3, h', w'] in [-1, 1]. */
static void check_preprocess(const golden_shape *in_shape, const float *in,
                             const golden_shape *out_shape, const float *want)
{
    sdxl_error err = {0};
    image img;
    assert_int_equal(image_alloc(&img, (int)in_shape->dims[1], (int)in_shape->dims[0], NULL),
                     SDXL_OK);
    for (size_t j = 0; j < in_shape->numel; j++)
        img.pixels[j] = (uint8_t)in[j];

    int w, h;
    GOLDEN_ASSERT_OK(image_processor_size(img.width, img.height, 0, 0, 8, &w, &h, &err), err);
    assert_int_equal(out_shape->ndim, 4);
    assert_int_equal(out_shape->dims[1], 3);
    assert_int_equal(h, out_shape->dims[2]);
    assert_int_equal(w, out_shape->dims[3]);
    float *got = malloc(sizeof *got * out_shape->numel);
    assert_non_null(got);
    image resized = {0};
    const image *sized;
    GOLDEN_ASSERT_OK(image_processor_preprocess(&img, w, h, &resized, &sized, &err), err);
    bt_normalize_pixels(cpu, sized->pixels, out_shape->numel, got);
    image_free(&resized);
    float *want_nhwc = nchw_to_nhwc(want, h, w);
    char label[64];
    snprintf(label, sizeof label, "preprocess %dx%d -> %dx%d", img.width, img.height, w, h);
    GOLDEN_ASSERT_CLOSE(label, got, want_nhwc, out_shape->numel, 0.0, 0.0);
    free(got);
    free(want_nhwc);
    image_free(&img);
}

/* in: [1, 3, h, w] in [-1, 1]; want: [h, w, 3] bytes. */
static void check_postprocess(const golden_shape *in_shape, const float *in,
                              const golden_shape *out_shape, const float *want)
{
    assert_int_equal(in_shape->dims[1], 3);
    int h = (int)in_shape->dims[2], w = (int)in_shape->dims[3];
    float *in_nhwc = nchw_to_nhwc(in, h, w);
    assert_int_equal(out_shape->numel, (size_t)w * h * 3);
    uint8_t *bytes = malloc(out_shape->numel);
    float *got = malloc(sizeof *got * out_shape->numel);
    assert_non_null(bytes);
    assert_non_null(got);
    bt_denormalize_pixels(cpu, in_nhwc, out_shape->numel, bytes);
    for (size_t j = 0; j < out_shape->numel; j++)
        got[j] = bytes[j];
    GOLDEN_ASSERT_CLOSE("postprocess", got, want, out_shape->numel, 0.0, 0.0);
    free(got);
    free(bytes);
    free(in_nhwc);
}

static void test_preprocess_equals_diffusers(void **state)
{
    check_every_case("pre", 5, check_preprocess);
}

static void test_postprocess_equals_diffusers(void **state)
{
    check_every_case("post", 2, check_postprocess);
}

/* (x / 2 + 0.5) · 255 = k + 0.5 exactly for these x: ties go to the even neighbour. */
static void test_postprocess_rounds_ties_to_even(void **state)
{
    const float in[] = {-1.0f, 1.0f, 0.0f, -0.99607843f, 2.0f, -2.0f, NAN, INFINITY, -INFINITY};
    uint8_t out[9];
    bt_denormalize_pixels(cpu, in, 9, out);
    const uint8_t want[] = {0, 255, 128, 0, 255, 0, 0, 255, 0};
    for (int i = 0; i < 9; i++)
        assert_int_equal(out[i], want[i]);
    /* 0.0 → 0.5 · 255 = 127.5 exactly → 128 (even); find an x giving 128.5 → 128. */
    float x = (128.5f / 255.0f - 0.5f) * 2.0f;
    for (int step = 0; step < 8; step++, x = nextafterf(x, 2.0f)) {
        float y = x / 2.0f + 0.5f;
        float scaled = y * 255.0f;
        uint8_t v;
        bt_denormalize_pixels(cpu, &x, 1, &v);
        if (scaled == 128.5f)
            assert_int_equal(v, 128);
        else
            assert_int_equal(v, scaled < 128.5f ? 128 : 129);
    }
}

static void test_normalize_covers_every_byte(void **state)
{
    uint8_t in[256];
    for (int i = 0; i < 256; i++)
        in[i] = (uint8_t)i;
    float out[256];
    bt_normalize_pixels(cpu, in, 256, out);
    assert_true(out[0] == -1.0f);
    assert_true(out[255] == 1.0f);
    for (int i = 1; i < 256; i++)
        assert_true(out[i] > out[i - 1]);
    /* Back again: every byte survives the round trip. */
    uint8_t back[256];
    bt_denormalize_pixels(cpu, out, 256, back);
    for (int i = 0; i < 256; i++)
        assert_int_equal(back[i], i);
}

static void test_size_rounds_down_to_the_scale_factor(void **state)
{
    static const int cases[][7] = {
        /* image w, h, requested w, h, factor, want w, h */
        {512, 512, 0, 0, 8, 512, 512},  {67, 45, 0, 0, 8, 64, 40},
        {1023, 769, 0, 0, 8, 1016, 768}, {640, 480, 515, 300, 8, 512, 296},
        {8, 15, 0, 0, 8, 8, 8},          {100, 100, 0, 0, 4, 100, 100},
        {9, 9, 0, 0, 1, 9, 9},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int w, h;
        sdxl_error err = {0};
        assert_int_equal(image_processor_size(cases[i][0], cases[i][1], cases[i][2], cases[i][3],
                                              cases[i][4], &w, &h, &err),
                         SDXL_OK);
        assert_int_equal(w, cases[i][5]);
        assert_int_equal(h, cases[i][6]);
    }
    int w, h;
    sdxl_error err = {0};
    assert_int_equal(image_processor_size(7, 100, 0, 0, 8, &w, &h, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "smaller than the VAE's 8-pixel granularity"));
    assert_int_equal(image_processor_size(100, 100, 0, 0, 0, &w, &h, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
}

static int setup(void **state)
{
    cpu = bt_backend("cpu", 2);
    return 0;
}

static int teardown(void **state)
{
    backend_destroy(cpu);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_preprocess_equals_diffusers),
        cmocka_unit_test(test_postprocess_equals_diffusers),
        cmocka_unit_test(test_postprocess_rounds_ties_to_even),
        cmocka_unit_test(test_normalize_covers_every_byte),
        cmocka_unit_test(test_size_rounds_down_to_the_scale_factor),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
