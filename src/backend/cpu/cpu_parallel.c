/*
 * cpu_parallel.c — cutting a range of work into fixed chunks and spreading them over the
 * backend's thread pool (see cpu_parallel_range in cpu_backend.h).
 */
#include "backend/cpu/cpu_backend.h"

typedef struct range_job {
    size_t n, grain;
    cpu_range_fn fn;
    void *ctx;
} range_job;

static void range_task(void *ctx, size_t task, int thread)
{
    const range_job *job = ctx;
    size_t begin = task * job->grain;
    size_t end = begin + job->grain < job->n ? begin + job->grain : job->n;
    job->fn(job->ctx, begin, end, thread);
}

void cpu_parallel_range(cpu_backend *cb, size_t n, size_t grain, cpu_range_fn fn, void *ctx)
{
    if (n == 0)
        return;
    if (grain == 0)
        grain = 1;
    range_job job = {n, grain, fn, ctx};
    size_t tasks = (n + grain - 1) / grain;
    if (tasks == 1) {
        fn(ctx, 0, n, 0);
        return;
    }
    threadpool_parallel_for(cb->pool, tasks, range_task, &job);
}
