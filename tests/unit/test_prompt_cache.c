/*
 * test_prompt_cache.c — the LRU cache of prompt embeddings (prompt_cache.h), on the cpu
 * backend: hits copy out exactly what was put in, misses touch nothing, the least recently USED
 * entry (a hit counts as a use) is the one evicted, a text put twice is one entry, keys are
 * exact bytes (NUL, case, a trailing space all matter), a capacity of 0 stores nothing and
 * takes no memory, tensors of the wrong shape are refused without harm, and several threads
 * may use one cache at once.
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
#include "support/backend_test.h"

#define T 3            /* tokens per entry */
#define D 2            /* embedding width */
#define NE (T * D)     /* embeds floats per entry */
#define NP 2           /* pooled floats per entry */
#define ARENA_BYTES (1 << 20)

static backend *be;
static arena host_arena; /* tensors of the tests (cpu backend memory) */

static int setup(void **state)
{
    (void)state;
    be = bt_backend("cpu", 1);
    bt_arena(&host_arena, ARENA_BYTES);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    arena_free(&host_arena);
    backend_destroy(be);
    return 0;
}

/* An entry's values, distinct per seed; -0.0 and a subnormal must come back bit for bit. */
static void values(int seed, float *e, float *p)
{
    for (int i = 0; i < NE; i++)
        e[i] = (float)seed * 1.5f + (float)i / 7.0f;
    e[0] = seed % 2 ? -0.0f : 1e-40f;
    p[0] = (float)-seed;
    p[1] = (float)seed / 3.0f;
}

/* One batch row's tensors: embeds [1, T, D] and pooled [1, NP]. */
typedef struct row {
    tensor e, p;
} row;

static row row_of(const float *e, const float *p)
{
    return (row){bt_input(be, &host_arena, 3, (int64_t[]){1, T, D}, e),
                 bt_input(be, &host_arena, 2, (int64_t[]){1, NP}, p)};
}

static prompt_cache *create(size_t capacity)
{
    prompt_cache *c = NULL;
    sdxl_error err;
    assert_int_equal(prompt_cache_create(be, capacity, T, D, NP, &c, &err), SDXL_OK);
    return c;
}

static void put(prompt_cache *c, const char *text, int seed)
{
    float e[NE], p[NP];
    values(seed, e, p);
    arena_mark m = arena_get_mark(&host_arena);
    row r = row_of(e, p);
    sdxl_error err;
    assert_int_equal(prompt_cache_put(c, text, strlen(text), &r.e, &r.p, &err), SDXL_OK);
    arena_reset_to(&host_arena, m);
}

/* Looks text up into tensors filled with a marker; *got_e and *got_p: their contents after. */
static bool lookup(prompt_cache *c, const char *text, size_t len, float *got_e, float *got_p)
{
    float marker[NE];
    memset(marker, 0xA5, sizeof marker);
    arena_mark m = arena_get_mark(&host_arena);
    row r = row_of(marker, marker);
    bool hit;
    sdxl_error err;
    assert_int_equal(prompt_cache_get(c, text, len, &r.e, &r.p, &hit, &err), SDXL_OK);
    assert_int_equal(backend_tensor_read(be, &r.e, DTYPE_F32, got_e, NE, &err), SDXL_OK);
    assert_int_equal(backend_tensor_read(be, &r.p, DTYPE_F32, got_p, NP, &err), SDXL_OK);
    arena_reset_to(&host_arena, m);
    return hit;
}

/* Whether text is cached, and then that its values are seed's, bit for bit. */
static bool holds(prompt_cache *c, const char *text, int seed)
{
    float e[NE], p[NP], we[NE], wp[NP];
    bool hit = lookup(c, text, strlen(text), e, p);
    if (!hit) {
        float untouched[NE];
        memset(untouched, 0xA5, sizeof untouched);
        assert_memory_equal(e, untouched, sizeof e);
        assert_memory_equal(p, untouched, sizeof p);
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
    row r = row_of(e, p);
    sdxl_error err;
    assert_int_equal(prompt_cache_put(c, "a\0b", 3, &r.e, &r.p, &err), SDXL_OK);
    put(c, "", 2);
    put(c, "A cat", 3);
    assert_false(holds(c, "a", 1)); /* "a\0b" is not "a" */
    assert_true(lookup(c, "a\0b", 3, e, p));
    assert_false(lookup(c, "a\0c", 3, e, p));
    assert_true(holds(c, "", 2));
    assert_false(holds(c, "a cat", 3));
    assert_false(holds(c, "A cat ", 3));
    assert_true(holds(c, "A cat", 3));
    prompt_cache_free(c);
    arena_reset_to(&host_arena, 0);
}

/* Every entry's memory is taken at creation: two tensors of whole 256-byte blocks each. */
static void memory_is_taken_once(void **state)
{
    (void)state;
    prompt_cache *c = create(5);
    assert_int_equal(prompt_cache_get_stats(c).bytes, 5 * (256 + 256));
    for (int i = 0; i < 12; i++) {
        char text[16];
        snprintf(text, sizeof text, "p%d", i);
        put(c, text, i);
    }
    prompt_cache_stats s = prompt_cache_get_stats(c);
    assert_int_equal(s.bytes, 5 * (256 + 256));
    assert_int_equal(s.entries, 5);
    assert_int_equal(s.evictions, 7);
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
    assert_int_equal(s.bytes, 0);
    prompt_cache_free(c);
    prompt_cache_free(NULL);
}

static void bad_sizes_are_refused(void **state)
{
    (void)state;
    prompt_cache *c = (prompt_cache *)&c; /* must be set to NULL */
    sdxl_error err;
    assert_int_equal(prompt_cache_create(be, PROMPT_CACHE_MAX_ENTRIES + 1, T, D, NP, &c, &err),
                     SDXL_ERR_LIMIT);
    assert_null(c);
    assert_int_equal(prompt_cache_create(be, 1, 0, D, NP, &c, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_int_equal(prompt_cache_create(be, 1, T, D, -1, &c, &err), SDXL_ERR_INVALID_ARGUMENT);
    /* tensor_alloc refuses a shape whose bytes overflow */
    assert_int_equal(prompt_cache_create(be, 2, INT64_MAX / 2, D, NP, &c, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_null(c);
}

/* Tensors that do not fit the entries are refused, naming both shapes; the cache keeps what it
 * held and answers with it. */
static void wrong_shapes_are_refused(void **state)
{
    (void)state;
    prompt_cache *c = create(1);
    put(c, "a", 1);
    float e[NE + D], p[NP];
    values(2, e, p);
    tensor longer = bt_input(be, &host_arena, 3, (int64_t[]){1, T + 1, D}, e);
    tensor pooled = bt_input(be, &host_arena, 2, (int64_t[]){1, NP}, p);
    sdxl_error err;
    assert_int_equal(prompt_cache_put(c, "b", 1, &longer, &pooled, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "[1, 4, 2]"));
    assert_non_null(strstr(err.message, "[1, 3, 2]"));
    bool hit = true;
    assert_int_equal(prompt_cache_get(c, "a", 1, &longer, &pooled, &hit, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_false(hit);
    assert_true(holds(c, "a", 1));
    assert_false(holds(c, "b", 2));
    prompt_cache_stats s = prompt_cache_get_stats(c);
    assert_int_equal(s.entries, 1);
    assert_int_equal(s.evictions, 0);
    prompt_cache_free(c);
    arena_reset_to(&host_arena, 0);
}

typedef struct worker {
    prompt_cache *c;
    int id;
    row r; /* this thread's tensors */
} worker;

/* Each thread puts and gets its own texts and some shared ones; every hit must carry the
 * values of its own text (a torn or mixed-up entry would not). */
static void *work(void *arg)
{
    worker *w = arg;
    char text[32];
    float e[NE], p[NP], we[NE], wp[NP];
    for (int i = 0; i < 2000; i++) {
        int key = (i * 7 + w->id) % 24;
        snprintf(text, sizeof text, "prompt %d", key);
        bool hit;
        if (prompt_cache_get(w->c, text, strlen(text), &w->r.e, &w->r.p, &hit, NULL) != SDXL_OK)
            return (void *)1;
        if (hit) {
            values(key, we, wp);
            if (backend_tensor_read(be, &w->r.e, DTYPE_F32, e, NE, NULL) != SDXL_OK ||
                backend_tensor_read(be, &w->r.p, DTYPE_F32, p, NP, NULL) != SDXL_OK ||
                memcmp(e, we, sizeof e) || memcmp(p, wp, sizeof p))
                return (void *)1;
        } else {
            values(key, e, p);
            if (backend_tensor_write(be, &w->r.e, DTYPE_F32, e, NE, NULL) != SDXL_OK ||
                backend_tensor_write(be, &w->r.p, DTYPE_F32, p, NP, NULL) != SDXL_OK ||
                prompt_cache_put(w->c, text, strlen(text), &w->r.e, &w->r.p, NULL) != SDXL_OK)
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
    float zeros[NE] = {0};
    for (int i = 0; i < 4; i++)
        workers[i] = (worker){c, i, row_of(zeros, zeros)};
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, work, &workers[i]), 0);
    for (int i = 0; i < 4; i++) {
        void *failed;
        assert_int_equal(pthread_join(threads[i], &failed), 0);
        assert_null(failed);
    }
    prompt_cache_stats s = prompt_cache_get_stats(c);
    assert_int_equal(s.hits + s.misses, 4 * 2000);
    assert_int_equal(s.entries, 8);
    prompt_cache_free(c);
    arena_reset_to(&host_arena, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hits_misses_and_values),
        cmocka_unit_test(evicts_least_recently_used),
        cmocka_unit_test(put_again_replaces),
        cmocka_unit_test(keys_are_exact_bytes),
        cmocka_unit_test(memory_is_taken_once),
        cmocka_unit_test(capacity_zero_stores_nothing),
        cmocka_unit_test(bad_sizes_are_refused),
        cmocka_unit_test(wrong_shapes_are_refused),
        cmocka_unit_test(threads_share_one_cache),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
