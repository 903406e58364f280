/*
 * image_test.c — corpus files, expected pixels and image comparisons for the image tests
 * (see image_test.h).
 */
#include "support/image_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "support/paths.h"
#include "support/read_file.h"

uint8_t *test_read_corpus_file(const char *name, size_t *size)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/unit/data/images/%s", test_source_dir(), name);
    return test_read_file(path, size);
}

bool test_expected_pixels(const char *name, image *out)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/unit/data/images/expected.safetensors",
             test_source_dir());
    safetensors_file f;
    sdxl_error err;
    if (safetensors_open(&f, path, &err) != SDXL_OK) {
        fprintf(stderr, "test_expected_pixels: %s\n", err.message);
        return false;
    }
    const st_tensor *t = safetensors_find(&f, name);
    bool ok = t && t->type == DTYPE_U8 && t->ndim == 3 && t->shape[2] == 3 &&
              image_alloc(out, (int)t->shape[1], (int)t->shape[0], &err) == SDXL_OK;
    if (ok)
        memcpy(out->pixels, t->data, t->nbytes);
    else
        fprintf(stderr, "test_expected_pixels: %s: no uint8 [h, w, 3] tensor %s\n", path, name);
    safetensors_close(&f);
    return ok;
}

int test_image_max_diff(const char *label, const image *a, const image *b)
{
    if (a->width != b->width || a->height != b->height) {
        if (label)
            fprintf(stderr, "%s: size %dx%d != %dx%d\n", label, a->width, a->height, b->width,
                    b->height);
        return -1;
    }
    size_t n = (size_t)a->width * a->height * 3, worst_at = 0;
    int worst = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)a->pixels[i] - (int)b->pixels[i]);
        if (d > worst) {
            worst = d;
            worst_at = i;
        }
    }
    if (label)
        fprintf(stderr, "%s: max difference %d%s", label, worst, worst ? "" : "\n");
    if (label && worst)
        fprintf(stderr, " at x=%zu y=%zu channel %zu (%d vs %d)\n", worst_at / 3 % a->width,
                worst_at / 3 / a->width, worst_at % 3, a->pixels[worst_at], b->pixels[worst_at]);
    return worst;
}

double test_image_psnr(const image *a, const image *b)
{
    size_t n = (size_t)a->width * a->height * 3;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a->pixels[i] - (double)b->pixels[i];
        sum += d * d;
    }
    if (sum == 0.0)
        return INFINITY;
    return 10.0 * log10(255.0 * 255.0 / (sum / (double)n));
}
