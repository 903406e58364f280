/*
 * taskpool.h — a few threads running small independent tasks in submission order: request
 * decoding and validation before a job is queued, image encoding after the engine made it.
 * Keeps that work off the gRPC poller (which must keep polling) and off the engine's worker
 * (which should only compute). (base/threadpool.h is for data-parallel loops, not this.)
 */
#ifndef SDXL_SERVER_TASKPOOL_H
#define SDXL_SERVER_TASKPOOL_H

#include "base/status.h"

typedef struct taskpool taskpool;
typedef void (*taskpool_fn)(void *arg);

sdxl_status taskpool_create(int n_threads, taskpool **out, sdxl_error *err);

/* Runs fn(arg) on a pool thread. Fails (SDXL_ERR_OUT_OF_MEMORY) only when no task record can
 * be allocated; then fn is not called. */
sdxl_status taskpool_submit(taskpool *pool, taskpool_fn fn, void *arg, sdxl_error *err);

/* Runs every task already submitted, then joins the threads and frees the pool. */
void taskpool_destroy(taskpool *pool);

#endif /* SDXL_SERVER_TASKPOOL_H */
