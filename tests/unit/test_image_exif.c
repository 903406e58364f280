/*
 * test_image_exif.c — EXIF orientation: the eight orientations of a JPEG decode to what
 * Pillow's ImageOps.exif_transpose gives (expected pixels from tools/reference/image_corpus.py),
 * each is the matching transform of the unrotated decode, the transforms move pixels where PIL
 * moves them, and the APP1 parser reads hostile payloads without reading out of bounds.
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
#include "support/image_test.h"

static image decode_file(const char *file, int *orientation)
{
    size_t size;
    uint8_t *data = test_read_corpus_file(file, &size);
    assert_non_null(data);
    image img;
    image_decode_info info;
    sdxl_error err = {0};
    if (image_decode(data, size, NULL, &img, &info, &err) != SDXL_OK)
        fail_msg("%s: %s", file, err.message);
    *orientation = info.orientation;
    free(data);
    return img;
}

static void test_orientations_match_pillow_exif_transpose(void **state)
{
    const char *files[] = {"jpeg_exif_1.jpg", "jpeg_exif_2.jpg",       "jpeg_exif_3.jpg",
                           "jpeg_exif_4.jpg", "jpeg_exif_5.jpg",       "jpeg_exif_6.jpg",
                           "jpeg_exif_7.jpg", "jpeg_exif_8.jpg",       "jpeg_exif_6_intel.jpg",
                           "jpeg_exif_8_long.jpg", "jpeg_exif_bad_offset.jpg"};
    const int orientations[] = {1, 2, 3, 4, 5, 6, 7, 8, 6, 8, 1};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        int orientation;
        image got = decode_file(files[i], &orientation);
        assert_int_equal(orientation, orientations[i]);
        image want;
        assert_true(test_expected_pixels(files[i], &want));
        /* Same JPEG library algorithms as Pillow's: exact (see test_image_decode.c). */
        assert_int_equal(test_image_max_diff(files[i], &got, &want), 0);
        image_free(&got);
        image_free(&want);
    }
}

/* All eight files hold the same scan data: each decode is its transform of the first. */
static void test_each_orientation_is_the_transform_of_the_upright_decode(void **state)
{
    int orientation;
    image upright = decode_file("jpeg_exif_1.jpg", &orientation);
    for (int o = 2; o <= 8; o++) {
        char file[32];
        snprintf(file, sizeof file, "jpeg_exif_%d.jpg", o);
        image got = decode_file(file, &orientation);
        image want;
        assert_int_equal(image_apply_orientation(&upright, o, &want, NULL), SDXL_OK);
        assert_int_equal(test_image_max_diff(file, &got, &want), 0);
        image_free(&got);
        image_free(&want);
    }
    image_free(&upright);
}

/* A 3x2 image whose pixel (x, y) holds (x, y, 10x + y); where each orientation puts them. */
static void test_transforms_move_pixels_as_pil_transpose(void **state)
{
    image in;
    assert_int_equal(image_alloc(&in, 3, 2, NULL), SDXL_OK);
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 3; x++) {
            uint8_t *p = in.pixels + (y * 3 + x) * 3;
            p[0] = (uint8_t)x;
            p[1] = (uint8_t)y;
            p[2] = (uint8_t)(10 * x + y);
        }
    /* Source pixel codes (10x + y) of the output, row by row. */
    static const struct {
        int w, h;
        uint8_t codes[6];
    } want[9] = {
        [1] = {3, 2, {0, 10, 20, 1, 11, 21}},
        [2] = {3, 2, {20, 10, 0, 21, 11, 1}},  /* mirrored */
        [3] = {3, 2, {21, 11, 1, 20, 10, 0}},  /* rotated 180° */
        [4] = {3, 2, {1, 11, 21, 0, 10, 20}},  /* flipped */
        [5] = {2, 3, {0, 1, 10, 11, 20, 21}},  /* transposed */
        [6] = {2, 3, {1, 0, 11, 10, 21, 20}},  /* 90° clockwise */
        [7] = {2, 3, {21, 20, 11, 10, 1, 0}},  /* transverse */
        [8] = {2, 3, {20, 21, 10, 11, 0, 1}},  /* 90° counter-clockwise */
    };
    for (int o = 1; o <= 8; o++) {
        image out;
        assert_int_equal(image_apply_orientation(&in, o, &out, NULL), SDXL_OK);
        assert_int_equal(out.width, want[o].w);
        assert_int_equal(out.height, want[o].h);
        for (int i = 0; i < 6; i++)
            assert_int_equal(out.pixels[3 * i + 2], want[o].codes[i]);
        image_free(&out);
    }
    image_free(&in);
}

/* "Exif\0\0" + a TIFF header + IFD0 with n entries; entry 0 is the orientation. */
static size_t make_exif(uint8_t *buf, bool big_endian, uint16_t type, uint32_t value)
{
    memcpy(buf, "Exif\0\0", 6);
    uint8_t *t = buf + 6;
    size_t n = 0;
#define PUT16(v)                                                                                 \
    do {                                                                                         \
        uint16_t v_ = (uint16_t)(v);                                                             \
        t[n++] = big_endian ? (uint8_t)(v_ >> 8) : (uint8_t)v_;                                  \
        t[n++] = big_endian ? (uint8_t)v_ : (uint8_t)(v_ >> 8);                                  \
    } while (0)
#define PUT32(v)                                                                                 \
    do {                                                                                         \
        uint32_t w_ = (uint32_t)(v);                                                             \
        if (big_endian) {                                                                        \
            PUT16(w_ >> 16);                                                                     \
            PUT16(w_);                                                                           \
        } else {                                                                                 \
            PUT16(w_);                                                                           \
            PUT16(w_ >> 16);                                                                     \
        }                                                                                        \
    } while (0)
    t[n++] = big_endian ? 'M' : 'I';
    t[n++] = big_endian ? 'M' : 'I';
    PUT16(42);
    PUT32(8);
    PUT16(2);                /* two entries: something else, then orientation */
    PUT16(0x010f);           /* Make, ASCII */
    PUT16(2);
    PUT32(4);
    PUT32(0x414243);
    PUT16(0x0112);
    PUT16(type);
    PUT32(1);
    if (type == 3) {
        PUT16(value);
        PUT16(0);
    } else {
        PUT32(value);
    }
    PUT32(0);
#undef PUT16
#undef PUT32
    return 6 + n;
}

static void test_exif_parser_reads_both_byte_orders_and_types(void **state)
{
    uint8_t buf[64];
    for (int o = 1; o <= 8; o++) {
        assert_int_equal(image_exif_orientation(buf, make_exif(buf, false, 3, (uint32_t)o)), o);
        assert_int_equal(image_exif_orientation(buf, make_exif(buf, true, 3, (uint32_t)o)), o);
        assert_int_equal(image_exif_orientation(buf, make_exif(buf, true, 4, (uint32_t)o)), o);
    }
    /* Values and types that are not orientations. */
    assert_int_equal(image_exif_orientation(buf, make_exif(buf, false, 3, 0)), 1);
    assert_int_equal(image_exif_orientation(buf, make_exif(buf, false, 3, 9)), 1);
    assert_int_equal(image_exif_orientation(buf, make_exif(buf, true, 4, 0x00060000)), 1);
    assert_int_equal(image_exif_orientation(buf, make_exif(buf, false, 2, 6)), 1);
}

static void test_exif_parser_survives_hostile_payloads(void **state)
{
    uint8_t buf[64];
    size_t n = make_exif(buf, true, 3, 6);
    /* Every truncation: an exact-size copy so ASan sees any read past the end. */
    for (size_t len = 0; len < n; len++) {
        uint8_t *cut = malloc(len ? len : 1);
        memcpy(cut, buf, len);
        int o = image_exif_orientation(cut, len);
        /* The tag's value ends 4 bytes before the next-IFD offset: any shorter cut loses it. */
        assert_int_equal(o, len >= n - 4 ? 6 : 1);
        free(cut);
    }
    /* An IFD offset at or past the end, an entry count far beyond the data, a wrong magic. */
    uint8_t bad[64];
    memcpy(bad, buf, n);
    bad[6 + 4] = 0xff;
    assert_int_equal(image_exif_orientation(bad, n), 1);
    memcpy(bad, buf, n);
    bad[6 + 7] = (uint8_t)(n - 6);
    assert_int_equal(image_exif_orientation(bad, n), 1);
    memcpy(bad, buf, n);
    bad[6 + 8] = 0xff;
    bad[6 + 9] = 0xff;
    assert_int_equal(image_exif_orientation(bad, n), 6);
    memcpy(bad, buf, n);
    bad[6 + 3] = 43;
    assert_int_equal(image_exif_orientation(bad, n), 1);
    memcpy(bad, buf, n);
    bad[0] = 'e';
    assert_int_equal(image_exif_orientation(bad, n), 1);
    memcpy(bad, buf, n);
    bad[6] = 'X';
    bad[7] = 'X';
    assert_int_equal(image_exif_orientation(bad, n), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_orientations_match_pillow_exif_transpose),
        cmocka_unit_test(test_each_orientation_is_the_transform_of_the_upright_decode),
        cmocka_unit_test(test_transforms_move_pixels_as_pil_transpose),
        cmocka_unit_test(test_exif_parser_reads_both_byte_orders_and_types),
        cmocka_unit_test(test_exif_parser_survives_hostile_payloads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
