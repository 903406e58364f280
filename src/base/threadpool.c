/*
 * threadpool.c — persistent worker threads for parallel loops (see threadpool.h).
 *
 * A UNet forward pass calls threadpool_parallel_for about 2000 times, so a call must cost
 * microseconds: workers are created once and wait for a new job generation, first spinning
 * briefly (the next call usually follows within microseconds) and then sleeping on a condition
 * variable, so an idle pool uses no CPU. Tasks are handed out in chunks from an atomic counter,
 * which keeps all threads busy even when one of them is descheduled; which thread runs a task
 * never affects results, since each task owns its output range.
 */
#include "base/threadpool.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

/* Upper bound on pool size: more threads than this only adds contention. */
#define THREADPOOL_MAX_THREADS 256
/* Polls of the generation counter before a waiting thread sleeps (a few µs to ~100 µs, by how
 * long the CPU's pause instruction takes). */
#define THREADPOOL_SPIN 2000
/* Chunks per thread: enough to balance uneven tasks, few enough to keep the counter cool. */
#define THREADPOOL_CHUNKS_PER_THREAD 4

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

typedef struct worker {
    threadpool *pool;
    int index;
} worker;

struct threadpool {
    int n_threads;
    pthread_t *threads;
    worker *workers;
    pthread_mutex_t call_lock; /* serialises parallel_for callers */

    pthread_mutex_t lock; /* with start_cv/done_cv: sleeping and waking */
    pthread_cond_t start_cv;
    pthread_cond_t done_cv;
    atomic_uint generation; /* bumped once per job */
    atomic_bool stop;
    atomic_int pending; /* workers that have not finished the current job */

    /* The current job; written before generation is bumped, read after it is seen. */
    threadpool_task_fn fn;
    void *ctx;
    size_t n_tasks;
    size_t chunk;
    atomic_size_t next_task;
};

/* Set while a thread runs tasks: a nested parallel_for would deadlock on call_lock. */
static _Thread_local bool inside_task;

static void run_tasks(threadpool *pool, int thread)
{
    inside_task = true;
    for (;;) {
        size_t begin = atomic_fetch_add(&pool->next_task, pool->chunk);
        if (begin >= pool->n_tasks)
            break;
        size_t end = pool->n_tasks - begin < pool->chunk ? pool->n_tasks : begin + pool->chunk;
        for (size_t i = begin; i < end; i++)
            pool->fn(pool->ctx, i, thread);
    }
    inside_task = false;
}

static void *worker_main(void *arg)
{
    worker *self = arg;
    threadpool *pool = self->pool;
    unsigned seen = 0;
    for (;;) {
        for (int spin = 0; spin < THREADPOOL_SPIN; spin++) {
            if (atomic_load(&pool->generation) != seen || atomic_load(&pool->stop))
                break;
            cpu_relax();
        }
        pthread_mutex_lock(&pool->lock);
        while (atomic_load(&pool->generation) == seen && !atomic_load(&pool->stop))
            pthread_cond_wait(&pool->start_cv, &pool->lock);
        pthread_mutex_unlock(&pool->lock);
        if (atomic_load(&pool->stop))
            return NULL;
        seen = atomic_load(&pool->generation);
        run_tasks(pool, self->index);
        if (atomic_fetch_sub(&pool->pending, 1) == 1) {
            pthread_mutex_lock(&pool->lock);
            pthread_cond_signal(&pool->done_cv);
            pthread_mutex_unlock(&pool->lock);
        }
    }
}

static int online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > THREADPOOL_MAX_THREADS ? THREADPOOL_MAX_THREADS : (int)n;
}

/* Stops and joins the first `started` workers and frees the pool. */
static void threadpool_teardown(threadpool *pool, int started)
{
    pthread_mutex_lock(&pool->lock);
    atomic_store(&pool->stop, true);
    pthread_cond_broadcast(&pool->start_cv);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < started; i++)
        pthread_join(pool->threads[i], NULL);
    pthread_cond_destroy(&pool->done_cv);
    pthread_cond_destroy(&pool->start_cv);
    pthread_mutex_destroy(&pool->lock);
    pthread_mutex_destroy(&pool->call_lock);
    free(pool->workers);
    free(pool->threads);
    free(pool);
}

threadpool *threadpool_create(int n_threads, sdxl_error *err)
{
    if (n_threads <= 0)
        n_threads = online_cpus();
    if (n_threads > THREADPOOL_MAX_THREADS) {
        error_set(err, SDXL_ERR_INVALID_ARGUMENT, "thread pool: %d threads requested, at most %d",
                  n_threads, THREADPOOL_MAX_THREADS);
        return NULL;
    }
    threadpool *pool = calloc(1, sizeof *pool);
    if (!pool) {
        error_set(err, SDXL_ERR_OUT_OF_MEMORY, "thread pool: out of memory");
        return NULL;
    }
    pool->n_threads = n_threads;
    pool->threads = calloc((size_t)n_threads, sizeof *pool->threads);
    pool->workers = calloc((size_t)n_threads, sizeof *pool->workers);
    pthread_mutex_init(&pool->call_lock, NULL);
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->start_cv, NULL);
    pthread_cond_init(&pool->done_cv, NULL);
    atomic_init(&pool->generation, 0);
    atomic_init(&pool->stop, false);
    atomic_init(&pool->pending, 0);
    atomic_init(&pool->next_task, 0);
    if (!pool->threads || !pool->workers) {
        threadpool_teardown(pool, 0);
        error_set(err, SDXL_ERR_OUT_OF_MEMORY, "thread pool: out of memory");
        return NULL;
    }
    /* Thread 0 is the caller of parallel_for; workers are 1..n-1. */
    for (int i = 1; i < n_threads; i++) {
        pool->workers[i] = (worker){pool, i};
        int rc = pthread_create(&pool->threads[i - 1], NULL, worker_main, &pool->workers[i]);
        if (rc != 0) {
            threadpool_teardown(pool, i - 1);
            error_set(err, SDXL_ERR_OUT_OF_MEMORY,
                      "thread pool: cannot start thread %d of %d (error %d); ask for fewer "
                      "threads",
                      i, n_threads, rc);
            return NULL;
        }
    }
    return pool;
}

void threadpool_destroy(threadpool *pool)
{
    if (pool)
        threadpool_teardown(pool, pool->n_threads - 1);
}

int threadpool_size(const threadpool *pool)
{
    return pool->n_threads;
}

void threadpool_parallel_for(threadpool *pool, size_t n_tasks, threadpool_task_fn fn, void *ctx)
{
    assert(!inside_task && "threadpool_parallel_for called from inside a task");
    if (n_tasks == 0)
        return;
    if (pool->n_threads == 1 || n_tasks == 1) {
        inside_task = true;
        for (size_t i = 0; i < n_tasks; i++)
            fn(ctx, i, 0);
        inside_task = false;
        return;
    }
    pthread_mutex_lock(&pool->call_lock);
    size_t chunk = n_tasks / ((size_t)pool->n_threads * THREADPOOL_CHUNKS_PER_THREAD);
    pool->fn = fn;
    pool->ctx = ctx;
    pool->n_tasks = n_tasks;
    pool->chunk = chunk == 0 ? 1 : chunk;
    atomic_store(&pool->next_task, 0);
    atomic_store(&pool->pending, pool->n_threads - 1);

    pthread_mutex_lock(&pool->lock);
    atomic_fetch_add(&pool->generation, 1);
    pthread_cond_broadcast(&pool->start_cv);
    pthread_mutex_unlock(&pool->lock);

    run_tasks(pool, 0);

    for (int spin = 0; spin < THREADPOOL_SPIN && atomic_load(&pool->pending) != 0; spin++)
        cpu_relax();
    if (atomic_load(&pool->pending) != 0) {
        pthread_mutex_lock(&pool->lock);
        while (atomic_load(&pool->pending) != 0)
            pthread_cond_wait(&pool->done_cv, &pool->lock);
        pthread_mutex_unlock(&pool->lock);
    }
    pthread_mutex_unlock(&pool->call_lock);
}
