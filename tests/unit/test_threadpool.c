/*
 * test_threadpool.c — every task runs exactly once, for many task counts and pool sizes, over
 * many repeated calls and with several threads calling one pool at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/threadpool.h"

enum { MAX_TASKS = 5000 };

typedef struct counting {
    atomic_int runs[MAX_TASKS];
    atomic_int bad_thread; /* a thread index outside 0..size-1 */
    int pool_size;
} counting;

static void count_task(void *ctx, size_t task, int thread)
{
    counting *c = ctx;
    atomic_fetch_add(&c->runs[task], 1);
    if (thread < 0 || thread >= c->pool_size)
        atomic_fetch_add(&c->bad_thread, 1);
}

static void assert_each_ran(counting *c, size_t n_tasks, int times)
{
    for (size_t i = 0; i < n_tasks; i++)
        assert_int_equal(atomic_load(&c->runs[i]), times);
    for (size_t i = n_tasks; i < MAX_TASKS; i++)
        assert_int_equal(atomic_load(&c->runs[i]), 0);
    assert_int_equal(atomic_load(&c->bad_thread), 0);
}

static void test_every_task_runs_exactly_once(void **state)
{
    static const size_t counts[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 64, 100, 1000, 4097};
    counting *c = malloc(sizeof *c);
    for (int size = 1; size <= 4; size++) {
        sdxl_error err;
        threadpool *pool = threadpool_create(size, &err);
        assert_non_null(pool);
        assert_int_equal(threadpool_size(pool), size);
        for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
            memset(c, 0, sizeof *c);
            c->pool_size = size;
            threadpool_parallel_for(pool, counts[k], count_task, c);
            assert_each_ran(c, counts[k], 1);
        }
        threadpool_destroy(pool);
    }
    free(c);
}

/* A UNet forward pass makes ~2000 calls; the pool must stay correct across that many. */
static void test_repeated_small_calls(void **state)
{
    counting *c = calloc(1, sizeof *c);
    sdxl_error err;
    threadpool *pool = threadpool_create(4, &err);
    assert_non_null(pool);
    c->pool_size = 4;
    for (int call = 0; call < 3000; call++)
        threadpool_parallel_for(pool, (size_t)(call % 13), count_task, c);
    /* Task i ran once in every call whose size (call % 13) is above i. */
    for (size_t i = 0; i < 13; i++) {
        int expected = 0;
        for (int call = 0; call < 3000; call++)
            expected += (size_t)(call % 13) > i;
        assert_int_equal(atomic_load(&c->runs[i]), expected);
    }
    assert_int_equal(atomic_load(&c->bad_thread), 0);
    threadpool_destroy(pool);
    free(c);
}

typedef struct caller {
    threadpool *pool;
    counting *c;
    size_t n_tasks;
} caller;

static void *caller_main(void *arg)
{
    caller *self = arg;
    for (int call = 0; call < 200; call++)
        threadpool_parallel_for(self->pool, self->n_tasks, count_task, self->c);
    return NULL;
}

static void test_concurrent_callers_are_serialised(void **state)
{
    enum { CALLERS = 4 };
    sdxl_error err;
    threadpool *pool = threadpool_create(3, &err);
    assert_non_null(pool);
    counting *cs = calloc(CALLERS, sizeof *cs);
    caller callers[CALLERS];
    pthread_t threads[CALLERS];
    for (int i = 0; i < CALLERS; i++) {
        cs[i].pool_size = 3;
        callers[i] = (caller){pool, &cs[i], (size_t)(10 + 37 * i)};
        assert_int_equal(pthread_create(&threads[i], NULL, caller_main, &callers[i]), 0);
    }
    for (int i = 0; i < CALLERS; i++)
        pthread_join(threads[i], NULL);
    for (int i = 0; i < CALLERS; i++)
        assert_each_ran(&cs[i], callers[i].n_tasks, 200);
    threadpool_destroy(pool);
    free(cs);
}

static void sum_task(void *ctx, size_t task, int thread)
{
    double *out = ctx;
    out[task] = (double)task * 0.5 + 1.0;
}

/* Results depend only on the task index, never on which thread ran it. */
static void test_results_are_identical_for_every_pool_size(void **state)
{
    enum { N = 1000 };
    double reference[N], got[N];
    for (size_t i = 0; i < N; i++)
        reference[i] = (double)i * 0.5 + 1.0;
    for (int size = 1; size <= 4; size++) {
        sdxl_error err;
        threadpool *pool = threadpool_create(size, &err);
        memset(got, 0, sizeof got);
        threadpool_parallel_for(pool, N, sum_task, got);
        assert_memory_equal(got, reference, sizeof got);
        threadpool_destroy(pool);
    }
}

static void test_default_size_and_limits(void **state)
{
    sdxl_error err;
    threadpool *pool = threadpool_create(0, &err);
    assert_non_null(pool);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    assert_int_equal(threadpool_size(pool), cpus < 1 ? 1 : cpus > 256 ? 256 : cpus);
    threadpool_destroy(pool);
    threadpool_destroy(NULL);
    assert_null(threadpool_create(100000, &err));
    assert_int_equal(err.code, SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "100000"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_task_runs_exactly_once),
        cmocka_unit_test(test_repeated_small_calls),
        cmocka_unit_test(test_concurrent_callers_are_serialised),
        cmocka_unit_test(test_results_are_identical_for_every_pool_size),
        cmocka_unit_test(test_default_size_and_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
