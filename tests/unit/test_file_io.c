/*
 * test_file_io.c — io/file.h: whole files written and read back byte for byte (empty, and
 * larger than one read block), the size limit exactly at and one byte over, and the errors for
 * a missing file and an unwritable path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "support/paths.h"
#include "support/remove_tree.h"

static void test_round_trips_and_limits(void **state)
{
    (void)state;
    char dir[512], path[600];
    assert_int_equal(test_make_temp_dir(dir, sizeof dir), SDXL_OK);
    snprintf(path, sizeof path, "%s/data.bin", dir);
    sdxl_error err;
    /* 0 bytes, and more than two of file_read_all's first 64 KiB blocks. */
    static const size_t sizes[] = {0, 1, 200003};
    for (size_t s = 0; s < 3; s++) {
        size_t n = sizes[s];
        uint8_t *bytes = malloc(n + 1);
        assert_non_null(bytes);
        for (size_t i = 0; i < n; i++)
            bytes[i] = (uint8_t)(i * 131 + s);
        assert_int_equal(file_write_all(path, bytes, n, &err), SDXL_OK);
        uint8_t *back;
        size_t size;
        assert_int_equal(file_read_all(path, 0, &back, &size, &err), SDXL_OK);
        assert_int_equal(size, n);
        assert_memory_equal(back, bytes, n);
        back[size] = 0; /* the promised spare byte (ASan checks it is there) */
        free(back);
        if (n > 1) { /* (a limit of n - 1 = 0 would mean none) */
            assert_int_equal(file_read_all(path, n, &back, &size, &err), SDXL_OK);
            free(back);
            assert_int_equal(file_read_all(path, n - 1, &back, &size, &err), SDXL_ERR_LIMIT);
            assert_null(back);
            assert_non_null(strstr(err.message, "larger than the limit"));
        }
        free(bytes);
    }
    snprintf(path, sizeof path, "%s/missing.bin", dir);
    uint8_t *back;
    size_t size;
    assert_int_equal(file_read_all(path, 0, &back, &size, &err), SDXL_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, "missing.bin: cannot open"));
    snprintf(path, sizeof path, "%s/no-dir/out.bin", dir);
    assert_int_equal(file_write_all(path, "x", 1, &err), SDXL_ERR_IO);
    assert_non_null(strstr(err.message, "no-dir/out.bin: cannot create"));
    assert_int_equal(test_remove_tree(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trips_and_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
