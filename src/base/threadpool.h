/*
 * threadpool.h — a fixed set of worker threads for data-parallel loops.
 *
 * threadpool_parallel_for splits n_tasks among the threads and returns when all are done.
 * Task i always runs exactly once, by any thread; work that must be deterministic must not
 * depend on which thread ran a task or in which order tasks ran (give each task its own output
 * range). The calling thread takes part, so a pool of n threads starts n - 1 workers, and a pool
 * of 1 runs everything inline. Calls from several threads at once are serialised.
 */
#ifndef SDXL_BASE_THREADPOOL_H
#define SDXL_BASE_THREADPOOL_H

#include <stddef.h>

#include "base/status.h"

typedef struct threadpool threadpool;

/* ctx is shared by all tasks; thread is 0..threadpool_size()-1 (for per-thread scratch). */
typedef void (*threadpool_task_fn)(void *ctx, size_t task, int thread);

/* n_threads <= 0 means the number of online CPUs. */
threadpool *threadpool_create(int n_threads, sdxl_error *err);
void threadpool_destroy(threadpool *pool);
int threadpool_size(const threadpool *pool);

void threadpool_parallel_for(threadpool *pool, size_t n_tasks, threadpool_task_fn fn, void *ctx);

#endif /* SDXL_BASE_THREADPOOL_H */
