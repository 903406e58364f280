/*
 * golden_tensor.h — comparing what a backend computed with a golden tensor in one call, for the
 * tests of the engine's models (text encoders, prompt encoder...).
 */
#ifndef SDXL_TESTS_SUPPORT_GOLDEN_TENSOR_H
#define SDXL_TESTS_SUPPORT_GOLDEN_TENSOR_H

#include <stdint.h>

#include "backend/backend.h"
#include "support/golden.h"

/* Reads rows first_row .. first_row + R - 1 of t (its outermost dimension) back from be, where
 * R is the outermost dimension of golden NAME, and compares them with NAME as golden_compare
 * does (same number of elements required). Fails the running cmocka test otherwise. */
void golden_expect_rows(backend *be, const golden *g, const char *name, const tensor *t,
                        int64_t first_row, double max_abs, double max_rel_l2, const char *label);

#endif /* SDXL_TESTS_SUPPORT_GOLDEN_TENSOR_H */
