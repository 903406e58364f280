/*
 * test_arena.c — the bump allocator: alignment, planning mode sizing real runs exactly,
 * marks, and running full.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"

static void test_allocations_are_aligned_and_sized_up(void **state)
{
    arena a;
    sdxl_error err;
    assert_int_equal(arena_init(&a, 1 << 16, &err), SDXL_OK);
    assert_int_equal((uintptr_t)a.base % ARENA_BLOCK_ALIGN, 0);
    unsigned char *p1 = arena_alloc(&a, 3, 0); /* 0: default alignment */
    assert_non_null(p1);
    assert_int_equal((uintptr_t)p1 % ARENA_DEFAULT_ALIGN, 0);
    assert_int_equal(arena_get_mark(&a), ARENA_DEFAULT_ALIGN);
    unsigned char *p2 = arena_alloc(&a, 5, 256);
    assert_int_equal((uintptr_t)p2 % 256, 0);
    assert_int_equal(p2 - p1, 256);
    unsigned char *p3 = arena_alloc(&a, 1, 4);
    assert_int_equal(p3 - p2, 256); /* 5 bytes rounded up to the alignment asked, 256 */
    assert_int_equal(arena_get_mark(&a), 512 + 4);
    unsigned char *p4 = arena_alloc(&a, 100, 4096);
    assert_int_equal((uintptr_t)p4 % 4096, 0);
    memset(p4, 0xab, 100); /* the memory is really there (ASan checks) */
    assert_int_equal(p4 - p1, 4096);
    assert_int_equal(arena_peak(&a), 2 * 4096);
    arena_free(&a);
    assert_null(a.base);
}

/* A forward-pass-like sequence: allocations, a scratch region released at a mark, and more. */
static bool run_sequence(arena *a)
{
    bool ok = true;
    void *x = arena_alloc(a, 1000, 64);
    ok &= a->planning || x != NULL;
    for (int block = 0; block < 5; block++) {
        arena_mark mark = arena_get_mark(a);
        for (int k = 1; k <= 4; k++) {
            void *scratch = arena_alloc(a, (size_t)(block * 777 + k * 131), k == 3 ? 256 : 16);
            ok &= a->planning || scratch != NULL;
        }
        arena_reset_to(a, mark);
        void *out = arena_alloc(a, (size_t)(block + 1) * 100, 64);
        ok &= a->planning || out != NULL;
    }
    return ok;
}

static void test_planning_gives_exactly_the_peak_a_real_run_needs(void **state)
{
    arena plan;
    arena_init_planning(&plan);
    assert_true(run_sequence(&plan));
    assert_null(arena_alloc(&plan, 10, 64)); /* planning never hands out memory */
    assert_false(arena_full(&plan, 10, 64));
    size_t peak = arena_peak(&plan);
    /* Worked out by hand (and by a Python model of the rounding): the last block's scratch
     * starts at 2176 and takes 3248 + 3376 + 160 (padding to 256) + 3584 + 3632 bytes. */
    assert_int_equal(peak, 16176);

    arena real;
    sdxl_error err;
    assert_int_equal(arena_init(&real, peak, &err), SDXL_OK);
    assert_true(run_sequence(&real));
    assert_int_equal(arena_peak(&real), peak);
    arena_free(&real);

    /* One byte less and the same sequence no longer fits: the plan is exact, not generous. */
    unsigned char *block = NULL;
    assert_int_equal(posix_memalign((void **)&block, ARENA_BLOCK_ALIGN, peak), 0);
    arena tight;
    arena_init_borrowed(&tight, block, peak - 1);
    assert_false(run_sequence(&tight));
    arena_free(&tight); /* borrowed: not freed by the arena */
    arena exact;
    arena_init_borrowed(&exact, block, peak);
    assert_true(run_sequence(&exact));
    free(block);
}

static void test_reset_to_mark_reuses_memory(void **state)
{
    unsigned char block[4096] __attribute__((aligned(ARENA_BLOCK_ALIGN)));
    arena a;
    arena_init_borrowed(&a, block, sizeof block);
    arena_alloc(&a, 100, 64);
    arena_mark mark = arena_get_mark(&a);
    assert_int_equal(mark, 128);
    void *first = arena_alloc(&a, 500, 64);
    arena_alloc(&a, 700, 64);
    arena_reset_to(&a, mark);
    assert_int_equal(arena_get_mark(&a), mark);
    assert_ptr_equal(arena_alloc(&a, 10, 64), first);
    assert_int_equal(arena_peak(&a), 128 + 512 + 704); /* the peak survives resets */
    arena_reset_to(&a, 0);
    assert_ptr_equal(arena_alloc(&a, 1, 64), block);
}

static void test_full_arena_refuses_and_stays_usable(void **state)
{
    unsigned char block[256] __attribute__((aligned(ARENA_BLOCK_ALIGN)));
    arena a;
    arena_init_borrowed(&a, block, sizeof block);
    assert_non_null(arena_alloc(&a, 130, 64)); /* uses 192 */
    assert_false(arena_full(&a, 64, 64));
    assert_true(arena_full(&a, 65, 64));
    assert_null(arena_alloc(&a, 65, 64));
    assert_int_equal(arena_get_mark(&a), 192); /* a refused allocation changes nothing */
    assert_true(arena_full(&a, SIZE_MAX, 1));
    assert_true(arena_full(&a, SIZE_MAX - 10, 64));
    assert_ptr_equal(arena_alloc(&a, 64, 64), block + 192);
    assert_true(arena_full(&a, 1, 1));
    assert_non_null(arena_alloc(&a, 0, 1)); /* zero bytes still fit at the end */
}

static void test_overflowing_plan_cannot_be_allocated(void **state)
{
    arena plan;
    arena_init_planning(&plan);
    arena_alloc(&plan, 100, 64);
    arena_alloc(&plan, SIZE_MAX - 32, 64);
    assert_int_equal(arena_peak(&plan), SIZE_MAX);
    arena real;
    sdxl_error err;
    assert_int_equal(arena_init(&real, arena_peak(&plan), &err), SDXL_ERR_OUT_OF_MEMORY);
    assert_non_null(strstr(err.message, "arena"));
    assert_null(real.base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allocations_are_aligned_and_sized_up),
        cmocka_unit_test(test_planning_gives_exactly_the_peak_a_real_run_needs),
        cmocka_unit_test(test_reset_to_mark_reuses_memory),
        cmocka_unit_test(test_full_arena_refuses_and_stays_usable),
        cmocka_unit_test(test_overflowing_plan_cannot_be_allocated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
