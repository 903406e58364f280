/*
 * test_image_resize.c — Lanczos resizing equals Pillow's Image.resize(..., LANCZOS) byte for
 * byte (tests/golden/data/image_resize.safetensors, from tools/reference/image_goldens.py:
 * shrinking, enlarging, one side only, to and from one pixel), and the centre crop takes the
 * window diffusers' _resize_and_crop places.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/image.h"
#include "support/golden.h"
#include "support/image_test.h"

/* A uint8 [h, w, 3] golden tensor as an image. */
static image golden_image(const golden *g, const char *name)
{
    golden_shape shape;
    float *values;
    sdxl_error err = {0};
    GOLDEN_ASSERT_OK(golden_get(g, name, &shape, &values, &err), err);
    assert_int_equal(shape.ndim, 3);
    assert_int_equal(shape.dims[2], 3);
    image img;
    assert_int_equal(image_alloc(&img, (int)shape.dims[1], (int)shape.dims[0], NULL), SDXL_OK);
    for (size_t i = 0; i < shape.numel; i++)
        img.pixels[i] = (uint8_t)values[i];
    free(values);
    return img;
}

static void test_resize_equals_pillow_lanczos(void **state)
{
    golden g;
    sdxl_error err = {0};
    GOLDEN_ASSERT_OK(golden_open(&g, "image_resize.safetensors", &err), err);
    int cases = 0;
    for (int i = 0;; i++) {
        char in_name[64], out_name[64];
        snprintf(in_name, sizeof in_name, "resize.%d.input", i);
        snprintf(out_name, sizeof out_name, "resize.%d.output", i);
        if (!golden_has(&g, in_name))
            break;
        image in = golden_image(&g, in_name), want = golden_image(&g, out_name);
        image got;
        GOLDEN_ASSERT_OK(image_resize_lanczos(&in, want.width, want.height, &got, &err), err);
        char label[96];
        snprintf(label, sizeof label, "resize %dx%d -> %dx%d", in.width, in.height, want.width,
                 want.height);
        assert_int_equal(test_image_max_diff(label, &got, &want), 0);
        image_free(&in);
        image_free(&want);
        image_free(&got);
        cases++;
    }
    assert_true(cases >= 10);
    golden_close(&g);
}

static void test_resize_to_the_same_size_copies(void **state)
{
    image in;
    assert_true(test_expected_pixels("png_rgb.png", &in));
    image out;
    assert_int_equal(image_resize_lanczos(&in, in.width, in.height, &out, NULL), SDXL_OK);
    assert_ptr_not_equal(out.pixels, in.pixels);
    assert_int_equal(test_image_max_diff(NULL, &out, &in), 0);
    image_free(&out);
    image_free(&in);
}

static void test_resize_refuses_empty_sizes(void **state)
{
    image in;
    assert_true(test_expected_pixels("png_rgb.png", &in));
    image out = {.width = 5};
    sdxl_error err = {0};
    assert_int_equal(image_resize_lanczos(&in, 0, 8, &out, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "at least 1x1"));
    assert_null(out.pixels);
    assert_int_equal(out.width, 0);
    assert_int_equal(image_resize_lanczos(&in, 8, -1, &out, &err), SDXL_ERR_INVALID_ARGUMENT);
    image_free(&in);
}

/* Pixel (x, y) holds (x, y, 0): the crop's first pixel says where the window starts. */
static void test_center_crop_places_the_window_as_diffusers(void **state)
{
    image in;
    assert_int_equal(image_alloc(&in, 11, 7, NULL), SDXL_OK);
    for (int y = 0; y < 7; y++)
        for (int x = 0; x < 11; x++) {
            uint8_t *p = in.pixels + (y * 11 + x) * 3;
            p[0] = (uint8_t)x;
            p[1] = (uint8_t)y;
            p[2] = 0;
        }
    /* width // 2 - crop // 2, as _resize_and_crop's paste offset (negated). */
    static const int cases[][4] = {{11, 7, 0, 0}, {8, 4, 1, 1}, {3, 3, 4, 2}, {1, 1, 5, 3},
                                   {10, 6, 0, 0}, {2, 5, 4, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        image out;
        assert_int_equal(image_center_crop(&in, cases[i][0], cases[i][1], &out, NULL), SDXL_OK);
        assert_int_equal(out.width, cases[i][0]);
        assert_int_equal(out.height, cases[i][1]);
        for (int y = 0; y < out.height; y++)
            for (int x = 0; x < out.width; x++) {
                const uint8_t *p = out.pixels + (y * out.width + x) * 3;
                assert_int_equal(p[0], cases[i][2] + x);
                assert_int_equal(p[1], cases[i][3] + y);
            }
        image_free(&out);
    }
    image out;
    sdxl_error err = {0};
    assert_int_equal(image_center_crop(&in, 12, 7, &out, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "between 1x1 and the image's 11x7"));
    assert_int_equal(image_center_crop(&in, 0, 7, &out, &err), SDXL_ERR_INVALID_ARGUMENT);
    image_free(&in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resize_equals_pillow_lanczos),
        cmocka_unit_test(test_resize_to_the_same_size_copies),
        cmocka_unit_test(test_resize_refuses_empty_sizes),
        cmocka_unit_test(test_center_crop_places_the_window_as_diffusers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
