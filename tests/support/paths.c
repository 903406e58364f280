/*
 * paths.c — test paths from the SDXL_SOURCE_DIR / SDXL_BINARY_DIR compile definitions, which
 * tests/CMakeLists.txt sets for this support library only (see paths.h). Failures are printed
 * to stderr: there is no sdxl_error to fill, and a test only needs to know why it stopped.
 */
#include "support/paths.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *test_source_dir(void)
{
    return SDXL_SOURCE_DIR;
}

const char *test_binary_dir(void)
{
    return SDXL_BINARY_DIR;
}

void test_model_dir(const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s/models/%s", SDXL_BINARY_DIR, name);
}

void test_golden_path(const char *file, char *out, size_t n)
{
    snprintf(out, n, "%s/tests/golden/data/%s", SDXL_SOURCE_DIR, file);
}

sdxl_status test_make_temp_dir(char *out, size_t n)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !tmp[0])
        tmp = "/tmp";
    int len = snprintf(out, n, "%s/sdxl-test-XXXXXX", tmp);
    if (len < 0 || (size_t)len >= n) {
        fprintf(stderr, "test_make_temp_dir: %s/sdxl-test-XXXXXX is longer than %zu bytes\n", tmp,
                n);
        return SDXL_ERR_INVALID_ARGUMENT;
    }
    if (!mkdtemp(out)) {
        fprintf(stderr, "test_make_temp_dir: mkdtemp %s: %s\n", out, strerror(errno));
        return SDXL_ERR_IO;
    }
    return SDXL_OK;
}
