/*
 * test_prompt_cache.c — the LRU cache of prompt embeddings (prompt_cache.h): hits copy out
 * exactly what was put in, misses touch nothing, the least recently USED entry (a hit counts
 * as a use) is the one evicted, a text put twice is one entry, keys are exact bytes (NUL,
 * case, a trailing space all matter), a capacity of 0 stores nothing, and several threads may
 * use one cache at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "engine/prompt_cache.h"

#define NE 6 /* embeds floats per entry */
#define NP 2 /* pooled floats per entry */

/* An entry's values, distinct per seed; -0.0 and a subnormal must come back bit for bit. */
static void values(int seed, float *e, float *p)
{
    for (int i = 0; i < NE; i++)
        e[i] = (float)seed * 1.5f + (float)i / 7.0f;
    e[0] = seed % 2 ? -0.0f : 1e-40f;
    p[0] = (float)-seed;
    p[1] = (float)seed / 3.0f;
}

static prompt_cache *create(size_t capacity)
{
    prompt_cache *c = NULL;
    sdxl_error err;
    assert_int_equal(prompt_cache_create(capacity, NE, NP, &c, &err), SDXL_OK);
    return c;
}

static void put(prompt_cache *c, const char *text, int seed)
{
    float e[NE], p[NP];
    values(seed, e, p);
    sdxl_error err;
    assert_int_equal(prompt_cache_put(c, text, strlen(text), e, p, &err), SDXL_OK);
}

/* Whether text is cached, and then that its values are seed's, bit for bit. */
static bool holds(prompt_cache *c, const char *text, int seed)
{
    float e[NE], p[NP], we[NE], wp[NP];
    memset(e, 0xA5, sizeof e);
    memset(p, 0xA5, sizeof p);
    bool hit = prompt_cache_get(c, text, strlen(text), e, p);
    if (!hit) {
        float untouched[NE];
        memset(untouched, 0xA5, sizeof untouched);
        assert_memory_equal(e, untouched, sizeof e);
        return false;
    }
    values(seed, we, wp);
    assert_memory_equal(e, we, sizeof e);
    assert_memory_equal(p, wp, sizeof p);
    return true;
}

static void hits_misses_and_values(void **state)
{
    (void)state;
    prompt_cache *c = create(4);
    assert_false(holds(c, "a cat", 1));
    put(c, "a cat", 1);
    put(c, "a dog", 2);
    assert_true(holds(c, "a cat", 1));
    assert_true(holds(c, "a dog", 2));
    assert_true(holds(c, "a cat", 1));
    assert_false(holds(c, "a bird", 3));
    prompt_cache_stats s = prompt_cache_get_stats(c);
    assert_int_equal(s.hits, 3);
    assert_int_equal(s.misses, 2);
    assert_int_equal(s.evictions, 0);
    assert_int_equal(s.entries, 2);
    assert_int_equal(s.capacity, 4);
    prompt_cache_free(c);
}

/* Capacity 3: put a b c, a hit on a, then d evicts b (the least recently used, not the
 * oldest put); after hits on c and d, e evicts a. */
static void evicts_least_recently_used(void **state)
{
    (void)state;
    prompt_cache *c = create(3);
    put(c, "a", 1);
    put(c, "b", 2);
    put(c, "c", 3);
    assert_true(holds(c, "a", 1));
    put(c, "d", 4);
    assert_false(holds(c, "b", 2));
    assert_true(holds(c, "c", 3));
    assert_true(holds(c, "d", 4));
    /* recency now (oldest first): a, c, d */
    put(c, "e", 5);
    assert_false(holds(c, "a", 1));
    assert_true(holds(c, "c", 3));
    assert_true(holds(c, "d", 4));
    assert_true(holds(c, "e", 5));
    prompt_cache_stats s = prompt_cache_get_stats(c);
    assert_int_equal(s.evictions, 2);
    assert_int_equal(s.entries, 3);
    prompt_cache_free(c);
}

/* Putting a cached text again replaces its values and makes it the most recent: no second
 * entry, no eviction. */
static void put_again_replaces(void **state)
{
    (void)state;
    prompt_cache *c = create(2);
    put(c, "a", 1);
    put(c, "b", 2);
    put(c, "a", 7);
    prompt_cache_stats s = prompt_cache_get_stats(c);
    assert_int_equal(s.entries, 2);
    assert_int_equal(s.evictions, 0);
    put(c, "c", 3); /* evicts b: a was refreshed by the second put */
    assert_true(holds(c, "a", 7));
    assert_false(holds(c, "b", 2));
    assert_true(holds(c, "c", 3));
    prompt_cache_free(c);
}

/* Keys are the exact bytes: an embedded NUL, case and trailing spaces make other prompts (the
 * tokenizer may map some of them to the same ids, but the cache does not guess). */
static void keys_are_exact_bytes(void **state)
{
    (void)state;
    prompt_cache *c = create(8);
    float e[NE], p[NP];
    values(1, e, p);
    sdxl_error err;
    assert_int_equal(prompt_cache_put(c, "a\0b", 3, e, p, &err), SDXL_OK);
    put(c, "", 2);
    put(c, "A cat", 3);
    assert_false(holds(c, "a", 1));            /* "a\0b" is not "a" */
    assert_true(prompt_cache_get(c, "a\0b", 3, e, p));
    assert_false(prompt_cache_get(c, "a\0c", 3, e, p));
    assert_true(holds(c, "", 2));
    assert_false(holds(c, "a cat", 3));
    assert_false(holds(c, "A cat ", 3));
    assert_true(holds(c, "A cat", 3));
    prompt_cache_free(c);
}

static void capacity_zero_stores_nothing(void **state)
{
    (void)state;
    prompt_cache *c = create(0);
    put(c, "a", 1);
    assert_false(holds(c, "a", 1));
    prompt_cache_stats s = prompt_cache_get_stats(c);
    assert_int_equal(s.entries, 0);
    assert_int_equal(s.misses, 1);
    assert_int_equal(s.capacity, 0);
    prompt_cache_free(c);
    prompt_cache_free(NULL);
}

static void bad_sizes_are_refused(void **state)
{
    (void)state;
    prompt_cache *c = (prompt_cache *)&c; /* must be set to NULL */
    sdxl_error err;
    assert_int_equal(prompt_cache_create(PROMPT_CACHE_MAX_ENTRIES + 1, NE, NP, &c, &err),
                     SDXL_ERR_LIMIT);
    assert_null(c);
    assert_int_equal(prompt_cache_create(1, 0, NP, &c, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_int_equal(prompt_cache_create(1, SIZE_MAX / 2, NP, &c, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
}

typedef struct worker {
    prompt_cache *c;
    int id;
} worker;

/* Each thread puts and gets its own texts and some shared ones; every hit must carry the
 * values of its own text (a torn or mixed-up entry would not). */
static void *work(void *arg)
{
    const worker *w = arg;
    char text[32];
    float e[NE], p[NP], we[NE], wp[NP];
    for (int i = 0; i < 2000; i++) {
        int key = (i * 7 + w->id) % 24;
        snprintf(text, sizeof text, "prompt %d", key);
        if (prompt_cache_get(w->c, text, strlen(text), e, p)) {
            values(key, we, wp);
            if (memcmp(e, we, sizeof e) || memcmp(p, wp, sizeof p))
                return (void *)1;
        } else {
            values(key, e, p);
            if (prompt_cache_put(w->c, text, strlen(text), e, p, NULL) != SDXL_OK)
                return (void *)1;
        }
    }
    return NULL;
}

static void threads_share_one_cache(void **state)
{
    (void)state;
    prompt_cache *c = create(8);
    pthread_t threads[4];
    worker workers[4];
    for (int i = 0; i < 4; i++) {
        workers[i] = (worker){c, i};
        assert_int_equal(pthread_create(&threads[i], NULL, work, &workers[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        void *failed;
        assert_int_equal(pthread_join(threads[i], &failed), 0);
        assert_null(failed);
    }
    prompt_cache_stats s = prompt_cache_get_stats(c);
    assert_int_equal(s.hits + s.misses, 4 * 2000);
    assert_int_equal(s.entries, 8);
    prompt_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hits_misses_and_values),
        cmocka_unit_test(evicts_least_recently_used),
        cmocka_unit_test(put_again_replaces),
        cmocka_unit_test(keys_are_exact_bytes),
        cmocka_unit_test(capacity_zero_stores_nothing),
        cmocka_unit_test(bad_sizes_are_refused),
        cmocka_unit_test(threads_share_one_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
