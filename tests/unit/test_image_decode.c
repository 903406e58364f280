/*
 * test_image_decode.c — decoding PNG, JPEG and WEBP from memory: every file of the corpus in
 * tests/unit/data/images (made by tools/reference/image_corpus.py) decodes to its expected
 * pixels or fails with its own status, problem and message; every prefix of a valid file fails
 * cleanly; the caller's limits are applied exactly at their boundaries.
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

typedef struct corpus_case {
    const char *file;
    sdxl_status code;
    image_problem problem;
    const char *message; /* a substring the error message must contain; NULL when valid */
    int tolerance;       /* valid files: largest allowed |decoded − expected| */
} corpus_case;

/* Expected pixels come from Pillow (libjpeg-turbo 3.0.4, libwebp 1.4.0); sdxld links Debian's
 * (2.1.5, 1.2.4). Their decoders are the same algorithms (islow IDCT, fancy upsampling), and
 * the test shows the output is byte-identical today; the tolerance of 1 on lossy formats only
 * keeps a future library's last-bit rounding change from failing the build. */
#define LOSSY 1

static const corpus_case valid_files[] = {
    {"png_rgb.png", SDXL_OK, IMAGE_PROBLEM_NONE, NULL, 0},
    {"png_gray.png", SDXL_OK, IMAGE_PROBLEM_NONE, NULL, 0},
    {"png_gray1.png", SDXL_OK, IMAGE_PROBLEM_NONE, NULL, 0},
    {"png_gray2.png", SDXL_OK, IMAGE_PROBLEM_NONE, NULL, 0},
    {"png_gray_alpha.png", SDXL_OK, IMAGE_PROBLEM_NONE, NULL, 0},
    {"png_palette4.png", SDXL_OK, IMAGE_PROBLEM_NONE, NULL, 0},
    {"png_palette_trns.png", SDXL_OK, IMAGE_PROBLEM_NONE, NULL, 0},
    {"png_rgba.png", SDXL_OK, IMAGE_PROBLEM_NONE, NULL, 0},
    {"png_rgb_trns.png", SDXL_OK, IMAGE_PROBLEM_NONE, NULL, 0},
    {"png_rgb16.png", SDXL_OK, IMAGE_PROBLEM_NONE, NULL, 0},
    {"png_gray16.png", SDXL_OK, IMAGE_PROBLEM_NONE, NULL, 0},
    {"png_rgba16.png", SDXL_OK, IMAGE_PROBLEM_NONE, NULL, 0},
    {"png_interlaced.png", SDXL_OK, IMAGE_PROBLEM_NONE, NULL, 0},
    {"png_interlaced_palette2.png", SDXL_OK, IMAGE_PROBLEM_NONE, NULL, 0},
    {"png_interlaced_rgba16.png", SDXL_OK, IMAGE_PROBLEM_NONE, NULL, 0},
    {"png_ztxt_bomb.png", SDXL_OK, IMAGE_PROBLEM_NONE, NULL, 0},
    {"png_iccp_bomb.png", SDXL_OK, IMAGE_PROBLEM_NONE, NULL, 0},
    {"png_missing_iend.png", SDXL_OK, IMAGE_PROBLEM_NONE, NULL, 0},
    {"jpeg_baseline.jpg", SDXL_OK, IMAGE_PROBLEM_NONE, NULL, LOSSY},
    {"jpeg_444.jpg", SDXL_OK, IMAGE_PROBLEM_NONE, NULL, LOSSY},
    {"jpeg_progressive.jpg", SDXL_OK, IMAGE_PROBLEM_NONE, NULL, LOSSY},
    {"jpeg_gray.jpg", SDXL_OK, IMAGE_PROBLEM_NONE, NULL, LOSSY},
    {"jpeg_cmyk.jpg", SDXL_OK, IMAGE_PROBLEM_NONE, NULL, LOSSY},
    {"jpeg_ycck.jpg", SDXL_OK, IMAGE_PROBLEM_NONE, NULL, LOSSY},
    {"jpeg_exif_bad_offset.jpg", SDXL_OK, IMAGE_PROBLEM_NONE, NULL, LOSSY},
    {"webp_lossy.webp", SDXL_OK, IMAGE_PROBLEM_NONE, NULL, LOSSY},
    {"webp_lossless.webp", SDXL_OK, IMAGE_PROBLEM_NONE, NULL, 0},
    {"webp_alpha_lossless.webp", SDXL_OK, IMAGE_PROBLEM_NONE, NULL, 0},
    {"webp_alpha_lossy.webp", SDXL_OK, IMAGE_PROBLEM_NONE, NULL, LOSSY},
};

static const corpus_case broken_files[] = {
    {"empty.bin", SDXL_ERR_FORMAT, IMAGE_PROBLEM_EMPTY, "empty (0 bytes)", 0},
    {"text.txt", SDXL_ERR_UNSUPPORTED, IMAGE_PROBLEM_UNKNOWN_FORMAT,
     "first bytes 68 65 6c 6c 6f 2c 20 74 \"hello, t\" are not the signature", 0},
    {"gif.gif", SDXL_ERR_UNSUPPORTED, IMAGE_PROBLEM_UNKNOWN_FORMAT,
     "image format GIF is not supported", 0},
    {"riff_wave.wav", SDXL_ERR_UNSUPPORTED, IMAGE_PROBLEM_UNKNOWN_FORMAT, "52 49 46 46", 0},
    {"png_signature_only.png", SDXL_ERR_FORMAT, IMAGE_PROBLEM_TRUNCATED,
     "PNG data is truncated: 8 bytes end before the IHDR header", 0},
    {"png_truncated_header.png", SDXL_ERR_FORMAT, IMAGE_PROBLEM_TRUNCATED,
     "PNG data is truncated: 20 bytes", 0},
    {"png_truncated_idat.png", SDXL_ERR_FORMAT, IMAGE_PROBLEM_TRUNCATED, "PNG data is truncated", 0},
    {"png_bad_crc.png", SDXL_ERR_FORMAT, IMAGE_PROBLEM_CORRUPT, "CRC error", 0},
    {"png_bad_zlib.png", SDXL_ERR_FORMAT, IMAGE_PROBLEM_CORRUPT, "PNG data is corrupt", 0},
    {"png_no_ihdr.png", SDXL_ERR_FORMAT, IMAGE_PROBLEM_CORRUPT, "first chunk is not IHDR", 0},
    {"png_huge.png", SDXL_ERR_LIMIT, IMAGE_PROBLEM_SIDE_TOO_LONG,
     "PNG image is 100000x100000: a side is longer than the limit of 8192", 0},
    {"png_too_many_pixels.png", SDXL_ERR_LIMIT, IMAGE_PROBLEM_TOO_MANY_PIXELS,
     "8000x8000 = 64000000 pixels, over the limit of 16777216", 0},
    {"png_zero_width.png", SDXL_ERR_FORMAT, IMAGE_PROBLEM_ZERO_SIZE,
     "PNG header declares a 0x16 image", 0},
    {"jpeg_soi_only.jpg", SDXL_ERR_FORMAT, IMAGE_PROBLEM_TRUNCATED, "JPEG data is truncated", 0},
    {"jpeg_truncated_header.jpg", SDXL_ERR_FORMAT, IMAGE_PROBLEM_TRUNCATED,
     "JPEG data is truncated", 0},
    {"jpeg_truncated_scan.jpg", SDXL_ERR_FORMAT, IMAGE_PROBLEM_TRUNCATED,
     "JPEG data is truncated", 0},
    {"jpeg_truncated_progressive.jpg", SDXL_ERR_FORMAT, IMAGE_PROBLEM_TRUNCATED,
     "JPEG data is truncated", 0},
    {"jpeg_huge.jpg", SDXL_ERR_LIMIT, IMAGE_PROBLEM_SIDE_TOO_LONG, "JPEG image is 60000x60000", 0},
    {"jpeg_zero_height.jpg", SDXL_ERR_FORMAT, IMAGE_PROBLEM_ZERO_SIZE, "width or height of 0", 0},
    {"jpeg_bad_marker.jpg", SDXL_ERR_FORMAT, IMAGE_PROBLEM_CORRUPT,
     "JPEG data is corrupt (libjpeg: Unsupported marker type 0x02)", 0},
    {"jpeg_bad_huffman.jpg", SDXL_ERR_FORMAT, IMAGE_PROBLEM_CORRUPT,
     "JPEG data is corrupt (libjpeg: Bogus Huffman table definition)", 0},
    {"jpeg_lossless.jpg", SDXL_ERR_UNSUPPORTED, IMAGE_PROBLEM_UNSUPPORTED,
     "JPEG variant is not supported", 0},
    {"jpeg_many_scans.jpg", SDXL_ERR_LIMIT, IMAGE_PROBLEM_TOO_MANY_SCANS,
     "more than 100 scans", 0},
    {"webp_truncated.webp", SDXL_ERR_FORMAT, IMAGE_PROBLEM_TRUNCATED, "WEBP data is truncated", 0},
    {"webp_truncated_header.webp", SDXL_ERR_FORMAT, IMAGE_PROBLEM_TRUNCATED,
     "WEBP data is truncated", 0},
    {"webp_wide.webp", SDXL_ERR_LIMIT, IMAGE_PROBLEM_SIDE_TOO_LONG, "WEBP image is 9000x8", 0},
    {"webp_too_many_pixels.webp", SDXL_ERR_LIMIT, IMAGE_PROBLEM_TOO_MANY_PIXELS,
     "8000x2200 = 17600000 pixels", 0},
    {"webp_animated.webp", SDXL_ERR_UNSUPPORTED, IMAGE_PROBLEM_UNSUPPORTED,
     "animated WEBP is not supported", 0},
    {"webp_bad_start_code.webp", SDXL_ERR_FORMAT, IMAGE_PROBLEM_CORRUPT,
     "WEBP data is corrupt", 0},
};

static void check_valid(const corpus_case *c)
{
    size_t size;
    uint8_t *data = test_read_corpus_file(c->file, &size);
    assert_non_null(data);
    image_limits limits = image_default_limits();
    image got;
    image_decode_info info;
    sdxl_error err = {0};
    sdxl_status st = image_decode(data, size, &limits, &got, &info, &err);
    if (st != SDXL_OK)
        fail_msg("%s: %s: %s", c->file, sdxl_status_name(st), err.message);
    assert_int_equal(info.problem, IMAGE_PROBLEM_NONE);
    image want;
    assert_true(test_expected_pixels(c->file, &want));
    int diff = test_image_max_diff(c->file, &got, &want);
    assert_true(diff >= 0 && diff <= c->tolerance);
    image_free(&got);
    image_free(&want);
    free(data);
}

static void test_valid_files_decode_to_expected_pixels(void **state)
{
    for (size_t i = 0; i < sizeof valid_files / sizeof valid_files[0]; i++)
        check_valid(&valid_files[i]);
}

static void test_broken_files_fail_with_their_own_error(void **state)
{
    for (size_t i = 0; i < sizeof broken_files / sizeof broken_files[0]; i++) {
        const corpus_case *c = &broken_files[i];
        size_t size;
        uint8_t *data = test_read_corpus_file(c->file, &size);
        assert_non_null(data);
        image_limits limits = image_default_limits();
        image got = {.width = 1};
        image_decode_info info;
        sdxl_error err = {0};
        sdxl_status st = image_decode(data, size, &limits, &got, &info, &err);
        fprintf(stderr, "%-32s %-22s %-16s %s\n", c->file, sdxl_status_name(st),
                image_problem_name(info.problem), err.message);
        if (st != c->code || info.problem != c->problem || !strstr(err.message, c->message))
            fail_msg("%s: got %s / %s / \"%s\", want %s / %s / \"...%s...\"", c->file,
                     sdxl_status_name(st), image_problem_name(info.problem), err.message,
                     sdxl_status_name(c->code), image_problem_name(c->problem), c->message);
        assert_int_equal(err.code, st);
        assert_int_equal(image_problem_is_too_large(info.problem), st == SDXL_ERR_LIMIT);
        assert_null(got.pixels);
        assert_int_equal(got.width, 0);
        free(data);
    }
}

/* Cutting a valid file anywhere must fail as truncated (or, where the cut leaves nothing but
 * trailing markers, still decode), never crash, read out of bounds or succeed with garbage. */
static void check_every_prefix(const char *file)
{
    size_t size;
    uint8_t *data = test_read_corpus_file(file, &size);
    assert_non_null(data);
    image full;
    assert_int_equal(image_decode(data, size, NULL, &full, NULL, NULL), SDXL_OK);
    size_t decoded = 0;
    for (size_t n = 0; n < size; n++) {
        /* An exact-size copy, so ASan sees any read past the cut. */
        uint8_t *prefix = malloc(n ? n : 1);
        memcpy(prefix, data, n);
        image got;
        image_decode_info info;
        sdxl_error err = {0};
        sdxl_status st = image_decode(prefix, n, NULL, &got, &info, &err);
        if (st == SDXL_OK) {
            assert_int_equal(test_image_max_diff(NULL, &got, &full), 0);
            decoded++;
            image_free(&got);
        } else {
            if (st != SDXL_ERR_FORMAT ||
                (info.problem != IMAGE_PROBLEM_TRUNCATED && info.problem != IMAGE_PROBLEM_EMPTY))
                fail_msg("%s cut to %zu of %zu bytes: %s / %s: %s", file, n, size,
                         sdxl_status_name(st), image_problem_name(info.problem), err.message);
            assert_true(n == 0 || strstr(err.message, "truncated"));
        }
        free(prefix);
    }
    /* Only cuts in the trailer (IEND, the JPEG end marker) may still decode. */
    assert_true(decoded <= 12);
    image_free(&full);
    free(data);
}

static void test_every_prefix_of_a_png_is_truncated(void **state)
{
    check_every_prefix("png_rgb.png");
    check_every_prefix("png_interlaced_rgba16.png");
}

static void test_every_prefix_of_a_jpeg_is_truncated(void **state)
{
    check_every_prefix("jpeg_baseline.jpg");
    check_every_prefix("jpeg_progressive.jpg");
}

static void test_every_prefix_of_a_webp_is_truncated(void **state)
{
    check_every_prefix("webp_lossy.webp");
    check_every_prefix("webp_alpha_lossless.webp");
}

/* Each limit refuses one over and accepts exactly at the limit (all three files are 24x16). */
static void test_limits_apply_exactly_at_their_boundary(void **state)
{
    const char *files[] = {"png_rgb.png", "jpeg_exif_1.jpg", "webp_lossless.webp"};
    for (size_t i = 0; i < 3; i++) {
        size_t size;
        uint8_t *data = test_read_corpus_file(files[i], &size);
        assert_non_null(data);
        struct {
            image_limits limits;
            sdxl_status code;
            image_problem problem;
        } cases[] = {
            {{.max_bytes = size - 1}, SDXL_ERR_LIMIT, IMAGE_PROBLEM_TOO_MANY_BYTES},
            {{.max_bytes = size}, SDXL_OK, IMAGE_PROBLEM_NONE},
            {{.max_side = 23}, SDXL_ERR_LIMIT, IMAGE_PROBLEM_SIDE_TOO_LONG},
            {{.max_side = 24}, SDXL_OK, IMAGE_PROBLEM_NONE},
            {{.max_pixels = 24 * 16 - 1}, SDXL_ERR_LIMIT, IMAGE_PROBLEM_TOO_MANY_PIXELS},
            {{.max_pixels = 24 * 16}, SDXL_OK, IMAGE_PROBLEM_NONE},
        };
        for (size_t j = 0; j < sizeof cases / sizeof cases[0]; j++) {
            image got;
            image_decode_info info;
            sdxl_error err = {0};
            sdxl_status st = image_decode(data, size, &cases[j].limits, &got, &info, &err);
            if (st != cases[j].code || info.problem != cases[j].problem)
                fail_msg("%s case %zu: %s / %s: %s", files[i], j, sdxl_status_name(st),
                         image_problem_name(info.problem), err.message);
            if (st == SDXL_OK) {
                assert_int_equal(got.width, 24);
                assert_int_equal(got.height, 16);
            }
            image_free(&got);
        }
        free(data);
    }
}

static void test_decode_reports_format_and_orientation(void **state)
{
    struct {
        const char *file;
        image_format format;
        int orientation, width, height;
    } cases[] = {
        {"png_rgb.png", IMAGE_FORMAT_PNG, 1, 24, 16},
        {"jpeg_exif_6.jpg", IMAGE_FORMAT_JPEG, 6, 16, 24},
        {"jpeg_exif_3.jpg", IMAGE_FORMAT_JPEG, 3, 24, 16},
        {"webp_lossy.webp", IMAGE_FORMAT_WEBP, 1, 64, 48},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t size;
        uint8_t *data = test_read_corpus_file(cases[i].file, &size);
        assert_non_null(data);
        image got;
        image_decode_info info;
        assert_int_equal(image_decode(data, size, NULL, &got, &info, NULL), SDXL_OK);
        assert_int_equal(info.format, cases[i].format);
        assert_int_equal(info.orientation, cases[i].orientation);
        assert_int_equal(got.width, cases[i].width);
        assert_int_equal(got.height, cases[i].height);
        image_free(&got);
        free(data);
    }
}

static void test_sniff_tells_formats_by_magic_only(void **state)
{
    image_format f;
    sdxl_error err = {0};
    assert_int_equal(image_sniff_format("\x89PNG\r\n\x1a\n", 8, &f, &err), SDXL_OK);
    assert_int_equal(f, IMAGE_FORMAT_PNG);
    assert_int_equal(image_sniff_format("\xff\xd8\xff\xe0", 4, &f, &err), SDXL_OK);
    assert_int_equal(f, IMAGE_FORMAT_JPEG);
    assert_int_equal(image_sniff_format("RIFF\x10\0\0\0WEBPVP8 ", 16, &f, &err), SDXL_OK);
    assert_int_equal(f, IMAGE_FORMAT_WEBP);

    /* A start of a signature is truncation; anything else names the bytes seen. */
    assert_int_equal(image_sniff_format("\x89PN", 3, &f, &err), SDXL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "truncated"));
    assert_int_equal(image_sniff_format("\xff\xd8", 2, &f, &err), SDXL_ERR_FORMAT);
    assert_int_equal(image_sniff_format("RIFF\x10\0\0", 7, &f, &err), SDXL_ERR_FORMAT);
    assert_int_equal(image_sniff_format("RIFF\x10\0\0\0WAVE", 12, &f, &err),
                     SDXL_ERR_UNSUPPORTED);
    assert_int_equal(image_sniff_format("\x89PNG\r\n\x1a\x0b", 8, &f, &err),
                     SDXL_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "89 50 4e 47 0d 0a 1a 0b \".PNG....\""));
    assert_int_equal(image_sniff_format("II*\0\x08\0\0\0", 8, &f, &err), SDXL_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "TIFF is not supported"));
    assert_int_equal(image_sniff_format("\0\0\0\x1c" "ftypavif", 12, &f, &err),
                     SDXL_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "AVIF is not supported"));
    assert_int_equal(image_sniff_format("x", 1, &f, &err), SDXL_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "78 \"x\""));
}

static void test_problem_names_and_classes(void **state)
{
    assert_string_equal(image_problem_name(IMAGE_PROBLEM_TRUNCATED), "truncated");
    assert_string_equal(image_problem_name(IMAGE_PROBLEM_TOO_MANY_SCANS), "too_many_scans");
    assert_true(image_problem_is_too_large(IMAGE_PROBLEM_TOO_MANY_BYTES));
    assert_true(image_problem_is_too_large(IMAGE_PROBLEM_SIDE_TOO_LONG));
    assert_false(image_problem_is_too_large(IMAGE_PROBLEM_CORRUPT));
    assert_false(image_problem_is_too_large(IMAGE_PROBLEM_OUT_OF_MEMORY));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_files_decode_to_expected_pixels),
        cmocka_unit_test(test_broken_files_fail_with_their_own_error),
        cmocka_unit_test(test_every_prefix_of_a_png_is_truncated),
        cmocka_unit_test(test_every_prefix_of_a_jpeg_is_truncated),
        cmocka_unit_test(test_every_prefix_of_a_webp_is_truncated),
        cmocka_unit_test(test_limits_apply_exactly_at_their_boundary),
        cmocka_unit_test(test_decode_reports_format_and_orientation),
        cmocka_unit_test(test_sniff_tells_formats_by_magic_only),
        cmocka_unit_test(test_problem_names_and_classes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
