/*
 * queue.h — the bounded FIFO between the request handlers and the engine's worker thread.
 *
 * Intrusive: a job embeds a queue_node, so pushing and removing never allocate and a cancelled
 * job can be taken out from the middle in O(1). Jobs leave in arrival order. Thread-safe: any
 * thread pushes and removes, the worker pops (blocking).
 */
#ifndef SDXL_SERVER_QUEUE_H
#define SDXL_SERVER_QUEUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/status.h"

typedef struct queue_node {
    struct queue_node *prev, *next;
    bool queued;
    uint64_t seq; /* set by queue_push: 1, 2, 3, … in the order the queue accepted nodes */
} queue_node;

typedef struct job_queue {
    pthread_mutex_t lock;
    pthread_cond_t nonempty;
    queue_node head; /* sentinel of a circular list */
    int length;
    int capacity;
    uint64_t pushed; /* nodes accepted so far */
    bool closed;
} job_queue;

sdxl_status queue_init(job_queue *q, int capacity, sdxl_error *err);
void queue_destroy(job_queue *q);

/* Appends node; *position (when not NULL) is its 1-based place. SDXL_ERR_LIMIT when capacity
 * jobs are waiting, SDXL_ERR_CANCELLED once the queue is closed. */
sdxl_status queue_push(job_queue *q, queue_node *node, int *position, sdxl_error *err);

/* Takes the oldest node, waiting while the queue is empty and open; NULL once it is closed
 * and empty. */
queue_node *queue_pop(job_queue *q);

/* Takes node out if it is still waiting; false when it was already popped or removed (then
 * whoever popped it owns it). */
bool queue_remove(job_queue *q, queue_node *node);

/* Takes out every waiting node, oldest first, calling fn on each (outside the lock). */
void queue_remove_all(job_queue *q, void (*fn)(queue_node *node, void *ctx), void *ctx);

/* Calls fn on each waiting node, oldest first, with its 1-based position, under the lock (fn
 * must not call back into the queue). */
void queue_foreach(job_queue *q, void (*fn)(queue_node *node, int position, void *ctx),
                   void *ctx);

int queue_length(job_queue *q);

/* No more pushes; queue_pop returns what is left, then NULL. */
void queue_close(job_queue *q);

#endif /* SDXL_SERVER_QUEUE_H */
