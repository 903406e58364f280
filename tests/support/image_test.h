/*
 * image_test.h — helpers for the image tests: reading corpus files (tests/unit/data/images,
 * written by tools/reference/image_corpus.py), their expected pixels, and comparing images.
 */
#ifndef SDXL_TESTS_SUPPORT_IMAGE_TEST_H
#define SDXL_TESTS_SUPPORT_IMAGE_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io/image.h"

/* tests/unit/data/images/NAME, read whole. */
uint8_t *test_read_corpus_file(const char *name, size_t *size);

/* The pixels NAME must decode to, from tests/unit/data/images/expected.safetensors (a new image;
 * image_free). False, with the reason on stderr, when absent or malformed. */
bool test_expected_pixels(const char *name, image *out);

/* Largest absolute difference of two images' bytes; -1 when their sizes differ. Prints the
 * first worst position when label is not NULL and the difference is not 0. */
int test_image_max_diff(const char *label, const image *a, const image *b);

/* Peak signal-to-noise ratio in dB (INFINITY when equal); sizes must match. */
double test_image_psnr(const image *a, const image *b);

#endif /* SDXL_TESTS_SUPPORT_IMAGE_TEST_H */
