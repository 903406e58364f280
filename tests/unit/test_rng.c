/*
 * test_rng.c — torch's CPU generator: every golden draw of rng.safetensors (torch.randn and
 * torch.rand from seeded generators, single draws and consecutive draws from one generator) must
 * be equal bit for bit, and MT19937 itself must give the value the C++ standard fixes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/rng.h"
#include "support/golden.h"

typedef void (*draw_fn)(rng_generator *gen, float *out, size_t n);

/* Bitwise equality (so −0 and +0 differ), with golden_compare's line for the log. */
static bool equal_bits(const char *label, const float *got, const float *want, size_t n)
{
    golden_compare(label, got, want, n, 0.0, 0.0);
    for (size_t i = 0; i < n; i++) {
        uint32_t a, b;
        memcpy(&a, &got[i], 4);
        memcpy(&b, &want[i], 4);
        if (a != b) {
            printf("%s: element %zu of %zu: 0x%08x (%.9g), torch 0x%08x (%.9g)\n", label, i, n, a,
                   (double)got[i], b, (double)want[i]);
            return false;
        }
    }
    return true;
}

static uint64_t golden_seed(const golden *g, const char *name)
{
    sdxl_error err;
    golden_shape shape;
    int64_t *seed;
    GOLDEN_ASSERT_OK(golden_get_i64(g, name, &shape, &seed, &err), err);
    assert_int_equal(shape.numel, 1);
    uint64_t value = (uint64_t)seed[0];
    free(seed);
    return value;
}

/* Runs every case "<group>.<i>" of the form {seed, out}: a fresh generator, one draw. */
static void check_single_draws(const char *group, draw_fn draw)
{
    sdxl_error err;
    golden g;
    GOLDEN_ASSERT_OK(golden_open(&g, "rng.safetensors", &err), err);
    int i = 0;
    for (;; i++) {
        char seed_name[64], out_name[64];
        snprintf(seed_name, sizeof seed_name, "%s.%d.seed", group, i);
        snprintf(out_name, sizeof out_name, "%s.%d.out", group, i);
        if (!golden_has(&g, seed_name))
            break;
        uint64_t seed = golden_seed(&g, seed_name);
        golden_shape shape;
        float *want;
        GOLDEN_ASSERT_OK(golden_get(&g, out_name, &shape, &want, &err), err);
        float *got = malloc(shape.numel * sizeof(float));
        assert_non_null(got);
        rng_generator gen;
        rng_seed(&gen, seed);
        draw(&gen, got, shape.numel);
        char label[96];
        snprintf(label, sizeof label, "%s seed %llu numel %zu", out_name,
                 (unsigned long long)seed, shape.numel);
        assert_true(equal_bits(label, got, want, shape.numel));
        free(got);
        free(want);
    }
    assert_true(i > 0);
    golden_close(&g);
}

static void test_randn_equals_torch_for_every_seed_and_shape(void **state)
{
    check_single_draws("randn", rng_randn_f32);
}

static void test_rand_equals_torch(void **state)
{
    check_single_draws("rand", rng_rand_f32);
}

/* Consecutive draws from one generator: below 16 elements torch caches the second normal of a
 * pair in the generator for the next small draw; a large draw leaves the cache alone. */
static void test_consecutive_draws_continue_the_stream_and_the_cached_normal(void **state)
{
    sdxl_error err;
    golden g;
    GOLDEN_ASSERT_OK(golden_open(&g, "rng.safetensors", &err), err);
    int i = 0;
    for (;; i++) {
        char name[64];
        snprintf(name, sizeof name, "seq.%d.seed", i);
        if (!golden_has(&g, name))
            break;
        rng_generator gen;
        rng_seed(&gen, golden_seed(&g, name));
        int j = 0;
        for (;; j++) {
            snprintf(name, sizeof name, "seq.%d.draw%d", i, j);
            if (!golden_has(&g, name))
                break;
            golden_shape shape;
            float *want;
            GOLDEN_ASSERT_OK(golden_get(&g, name, &shape, &want, &err), err);
            float *got = malloc(shape.numel * sizeof(float));
            assert_non_null(got);
            rng_randn_f32(&gen, got, shape.numel);
            assert_true(equal_bits(name, got, want, shape.numel));
            free(got);
            free(want);
        }
        assert_true(j >= 2);
    }
    assert_true(i > 0);
    golden_close(&g);
}

/* The C++ standard requires the 10000th output of mt19937 seeded 5489 to be 4123659995. */
static void test_mt19937_matches_the_standard_check_value(void **state)
{
    rng_generator gen;
    rng_seed(&gen, 5489);
    uint32_t value = 0;
    for (int i = 0; i < 10000; i++)
        value = rng_next_u32(&gen);
    assert_int_equal(value, 4123659995u);
}

/* manual_seed keeps only the low 32 bits; a 64-bit draw puts the first 32-bit draw high. */
static void test_seed_uses_low_32_bits_and_u64_is_high_word_first(void **state)
{
    rng_generator a, b;
    rng_seed(&a, 7);
    rng_seed(&b, (UINT64_C(5) << 32) | 7);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(rng_next_u32(&a), rng_next_u32(&b));
    rng_seed(&a, 7);
    rng_seed(&b, 7);
    uint64_t hi = rng_next_u32(&a), lo = rng_next_u32(&a);
    assert_true(rng_next_u64(&b) == ((hi << 32) | lo));
}

/* Reseeding drops the cached normal: an odd small draw, reseed, and the next draw starts over. */
static void test_reseeding_clears_the_cached_normal(void **state)
{
    rng_generator gen;
    float first[3], again[3], odd;
    rng_seed(&gen, 42);
    rng_randn_f32(&gen, first, 3);
    rng_seed(&gen, 42);
    rng_randn_f32(&gen, &odd, 1); /* leaves a cached normal behind */
    rng_seed(&gen, 42);
    rng_randn_f32(&gen, again, 3);
    assert_memory_equal(first, again, sizeof first);
    assert_memory_equal(&odd, first, sizeof odd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_randn_equals_torch_for_every_seed_and_shape),
        cmocka_unit_test(test_rand_equals_torch),
        cmocka_unit_test(test_consecutive_draws_continue_the_stream_and_the_cached_normal),
        cmocka_unit_test(test_mt19937_matches_the_standard_check_value),
        cmocka_unit_test(test_seed_uses_low_32_bits_and_u64_is_high_word_first),
        cmocka_unit_test(test_reseeding_clears_the_cached_normal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
