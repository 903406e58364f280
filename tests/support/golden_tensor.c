/*
 * golden_tensor.c — a backend tensor compared with a golden tensor (see golden_tensor.h).
 */
#include "support/golden_tensor.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <stdlib.h>

#include "support/backend_test.h"

void golden_expect_rows(backend *be, const golden *g, const char *name, const tensor *t,
                        int64_t first_row, double max_abs, double max_rel_l2, const char *label)
{
    golden_shape s;
    float *want;
    sdxl_error err;
    GOLDEN_ASSERT_OK(golden_get(g, name, &s, &want, &err), err);
    tensor rows;
    GOLDEN_ASSERT_OK(tensor_view_outer(&rows, t, first_row, s.dims[0], &err), err);
    assert_int_equal(s.numel, (size_t)tensor_numel(&rows));
    float *got = bt_read(be, &rows);
    GOLDEN_ASSERT_CLOSE(label, got, want, s.numel, max_abs, max_rel_l2);
    free(got);
    free(want);
}
