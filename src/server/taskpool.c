/*
 * taskpool.c — a FIFO of tasks served by a few threads (see taskpool.h).
 */
#include "server/taskpool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

typedef struct task {
    struct task *next;
    taskpool_fn fn;
    void *arg;
} task;

struct taskpool {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    task *head, *tail;
    bool stopping;
    int n_threads;
    pthread_t threads[];
};

static void *pool_main(void *arg)
{
    taskpool *pool = arg;
    for (;;) {
        pthread_mutex_lock(&pool->lock);
        while (!pool->head && !pool->stopping)
            pthread_cond_wait(&pool->wake, &pool->lock);
        task *t = pool->head;
        if (t) {
            pool->head = t->next;
            if (!pool->head)
                pool->tail = NULL;
        }
        pthread_mutex_unlock(&pool->lock);
        if (!t)
            return NULL;
        t->fn(t->arg);
        free(t);
    }
}

sdxl_status taskpool_create(int n_threads, taskpool **out, sdxl_error *err)
{
    *out = NULL;
    if (n_threads < 1)
        n_threads = 1;
    taskpool *pool = calloc(1, sizeof *pool + (size_t)n_threads * sizeof(pthread_t));
    if (!pool)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "task pool: out of memory");
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->wake, NULL);
    for (int i = 0; i < n_threads; i++) {
        if (pthread_create(&pool->threads[i], NULL, pool_main, pool)) {
            taskpool_destroy(pool);
            return error_set(err, SDXL_ERR_INTERNAL, "task pool: could not start thread %d", i);
        }
        pool->n_threads++;
    }
    *out = pool;
    return SDXL_OK;
}

sdxl_status taskpool_submit(taskpool *pool, taskpool_fn fn, void *arg, sdxl_error *err)
{
    task *t = malloc(sizeof *t);
    if (!t)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "task pool: out of memory");
    t->next = NULL;
    t->fn = fn;
    t->arg = arg;
    pthread_mutex_lock(&pool->lock);
    if (pool->tail)
        pool->tail->next = t;
    else
        pool->head = t;
    pool->tail = t;
    pthread_cond_signal(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    return SDXL_OK;
}

void taskpool_destroy(taskpool *pool)
{
    if (!pool)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < pool->n_threads; i++)
        pthread_join(pool->threads[i], NULL);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}
