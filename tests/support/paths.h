/*
 * paths.h — where tests find the source tree, the build tree, tiny models and golden files,
 * and a fresh temporary directory per test.
 */
#ifndef SDXL_TESTS_SUPPORT_PATHS_H
#define SDXL_TESTS_SUPPORT_PATHS_H

#include <stddef.h>

#include "base/status.h"

/* The repository root and the CMake build directory (absolute). */
const char *test_source_dir(void);
const char *test_binary_dir(void);

/* SDXL_BINARY_DIR/models/NAME: a tiny model written by mkmodel (see "// needs:" in tests). */
void test_model_dir(const char *name, char *out, size_t n);
/* SDXL_SOURCE_DIR/tests/golden/data/FILE. */
void test_golden_path(const char *file, char *out, size_t n);

/* Creates a new, empty directory under $TMPDIR (or /tmp) and writes its path to out. The test
 * removes it when done. */
sdxl_status test_make_temp_dir(char *out, size_t n);

#endif /* SDXL_TESTS_SUPPORT_PATHS_H */
