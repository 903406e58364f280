/*
 * test_image_codec.c — encoding: PNG round trips exactly at every compression level, JPEG and
 * WEBP round trip within a PSNR bound that rises with quality, bad parameters are refused,
 * and the WEBP thumbnail has the promised size and content. Also format names.
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

#include "io/image.h"
#include "support/image_test.h"

/* A photo-like test image: the corpus's 24x16 picture (gradients, a disc, hard edges)
 * upscaled, so JPEG's 8x8 blocks and WEBP's macroblocks see both smooth areas and edges. */
static image test_picture(int width, int height)
{
    image small, big;
    assert_true(test_expected_pixels("png_rgb.png", &small));
    assert_int_equal(image_resize_lanczos(&small, width, height, &big, NULL), SDXL_OK);
    image_free(&small);
    return big;
}

static image round_trip(const image *img, image_encode_params params, image_format want_format,
                        size_t *encoded_size)
{
    image_buffer buf;
    sdxl_error err = {0};
    if (image_encode(img, &params, &buf, &err) != SDXL_OK)
        fail_msg("encode: %s", err.message);
    image out;
    image_decode_info info;
    if (image_decode(buf.data, buf.size, NULL, &out, &info, &err) != SDXL_OK)
        fail_msg("decode of our own encoding: %s", err.message);
    assert_int_equal(info.format, want_format);
    *encoded_size = buf.size;
    image_buffer_free(&buf);
    assert_null(buf.data);
    return out;
}

static void test_png_round_trip_is_exact_at_every_level(void **state)
{
    image img = test_picture(131, 77);
    size_t sizes[10];
    for (int level = 0; level <= 9; level++) {
        image_encode_params p = image_encode_default_params();
        p.png_compression = level;
        image out = round_trip(&img, p, IMAGE_FORMAT_PNG, &sizes[level]);
        assert_int_equal(test_image_max_diff(NULL, &out, &img), 0);
        image_free(&out);
    }
    /* Level 0 stores, level 9 compresses. */
    assert_true(sizes[0] > (size_t)131 * 77 * 3);
    assert_true(sizes[9] < sizes[0] / 2);
    image_free(&img);
}

static void test_lossy_round_trips_keep_psnr_and_grow_with_quality(void **state)
{
    image img = test_picture(160, 120);
    image_format formats[] = {IMAGE_FORMAT_JPEG, IMAGE_FORMAT_WEBP};
    for (int f = 0; f < 2; f++) {
        double psnr_low, psnr_high;
        size_t size_low, size_high;
        image_encode_params p = {.format = formats[f], .quality = 30};
        image low = round_trip(&img, p, formats[f], &size_low);
        p.quality = 95;
        image high = round_trip(&img, p, formats[f], &size_high);
        psnr_low = test_image_psnr(&low, &img);
        psnr_high = test_image_psnr(&high, &img);
        fprintf(stderr, "%s: quality 30: %zu bytes, %.1f dB; quality 95: %zu bytes, %.1f dB\n",
                image_format_name(formats[f]), size_low, psnr_low, size_high, psnr_high);
        assert_true(psnr_low >= 25.0);
        assert_true(psnr_high >= 35.0);
        assert_true(psnr_high > psnr_low + 3.0);
        assert_true(size_high > size_low);
        image_free(&low);
        image_free(&high);
    }
    image_free(&img);
}

static void test_encode_refuses_bad_parameters(void **state)
{
    image img = test_picture(16, 16);
    image_buffer buf = {.data = (uint8_t *)1};
    sdxl_error err = {0};
    image_encode_params p = {.format = IMAGE_FORMAT_JPEG, .quality = 0};
    assert_int_equal(image_encode(&img, &p, &buf, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "quality 0 is out of range"));
    assert_null(buf.data);
    p = (image_encode_params){.format = IMAGE_FORMAT_WEBP, .quality = 101};
    assert_int_equal(image_encode(&img, &p, &buf, &err), SDXL_ERR_INVALID_ARGUMENT);
    p = (image_encode_params){.format = IMAGE_FORMAT_PNG, .png_compression = 10};
    assert_int_equal(image_encode(&img, &p, &buf, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "compression level 10"));
    p = (image_encode_params){.format = (image_format)7, .quality = 90};
    assert_int_equal(image_encode(&img, &p, &buf, &err), SDXL_ERR_INVALID_ARGUMENT);
    image empty = {0};
    p = image_encode_default_params();
    assert_int_equal(image_encode(&empty, &p, &buf, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_int_equal(image_encode_thumbnail(&img, 0, &buf, &err), SDXL_ERR_INVALID_ARGUMENT);
    image_free(&img);
}

static void test_thumbnail_size_keeps_aspect_with_longest_side_256(void **state)
{
    static const int cases[][4] = {
        {1024, 1024, 256, 256}, {1024, 512, 256, 128}, {512, 1024, 128, 256},
        {1000, 333, 256, 85},   {333, 1000, 85, 256},  {100, 50, 256, 128},
        {5000, 1, 256, 1},      {1, 1, 256, 256},      {768, 1344, 146, 256},
        {1000, 334, 256, 86},   {1000, 2, 256, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int w, h;
        image_thumbnail_size(cases[i][0], cases[i][1], &w, &h);
        if (w != cases[i][2] || h != cases[i][3])
            fail_msg("%dx%d: thumbnail %dx%d, want %dx%d", cases[i][0], cases[i][1], w, h,
                     cases[i][2], cases[i][3]);
    }
}

static void test_thumbnail_is_a_webp_of_the_lanczos_downscale(void **state)
{
    image img = test_picture(640, 400);
    image_buffer buf;
    sdxl_error err = {0};
    assert_int_equal(image_encode_thumbnail(&img, 90, &buf, &err), SDXL_OK);
    image thumb;
    image_decode_info info;
    assert_int_equal(image_decode(buf.data, buf.size, NULL, &thumb, &info, &err), SDXL_OK);
    assert_int_equal(info.format, IMAGE_FORMAT_WEBP);
    assert_int_equal(thumb.width, 256);
    assert_int_equal(thumb.height, 160);
    image want;
    assert_int_equal(image_resize_lanczos(&img, 256, 160, &want, NULL), SDXL_OK);
    double psnr = test_image_psnr(&thumb, &want);
    fprintf(stderr, "thumbnail: %zu bytes, %.1f dB against the Lanczos downscale\n", buf.size,
            psnr);
    assert_true(psnr >= 30.0);
    image_buffer_free(&buf);
    image_free(&thumb);
    image_free(&want);
    image_free(&img);
}

static void test_format_names_parse_and_mime_types(void **state)
{
    image_format f;
    assert_true(image_format_parse("PNG", &f));
    assert_int_equal(f, IMAGE_FORMAT_PNG);
    assert_true(image_format_parse("jpg", &f));
    assert_int_equal(f, IMAGE_FORMAT_JPEG);
    assert_true(image_format_parse("Jpeg", &f));
    assert_int_equal(f, IMAGE_FORMAT_JPEG);
    assert_true(image_format_parse("webp", &f));
    assert_int_equal(f, IMAGE_FORMAT_WEBP);
    assert_false(image_format_parse("gif", &f));
    assert_false(image_format_parse("", &f));
    assert_string_equal(image_format_name(IMAGE_FORMAT_WEBP), "WEBP");
    assert_string_equal(image_format_mime_type(IMAGE_FORMAT_JPEG), "image/jpeg");
    image_encode_params p = image_encode_default_params();
    assert_int_equal(p.format, IMAGE_FORMAT_PNG);
    assert_int_equal(p.png_compression, 6);
    assert_int_equal(p.quality, 90);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_round_trip_is_exact_at_every_level),
        cmocka_unit_test(test_lossy_round_trips_keep_psnr_and_grow_with_quality),
        cmocka_unit_test(test_encode_refuses_bad_parameters),
        cmocka_unit_test(test_thumbnail_size_keeps_aspect_with_longest_side_256),
        cmocka_unit_test(test_thumbnail_is_a_webp_of_the_lanczos_downscale),
        cmocka_unit_test(test_format_names_parse_and_mime_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
