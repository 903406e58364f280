/*
 * queue.c — the bounded FIFO (see queue.h).
 */
#include "server/queue.h"

#include <stddef.h>
#include <string.h>

sdxl_status queue_init(job_queue *q, int capacity, sdxl_error *err)
{
    memset(q, 0, sizeof *q);
    if (capacity < 1)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "queue capacity %d: must be at least 1",
                         capacity);
    if (pthread_mutex_init(&q->lock, NULL))
        return error_set(err, SDXL_ERR_INTERNAL, "queue: pthread_mutex_init failed");
    if (pthread_cond_init(&q->nonempty, NULL)) {
        pthread_mutex_destroy(&q->lock);
        return error_set(err, SDXL_ERR_INTERNAL, "queue: pthread_cond_init failed");
    }
    q->head.prev = q->head.next = &q->head;
    q->capacity = capacity;
    return SDXL_OK;
}

void queue_destroy(job_queue *q)
{
    pthread_cond_destroy(&q->nonempty);
    pthread_mutex_destroy(&q->lock);
}

static void unlink_node(job_queue *q, queue_node *node)
{
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->prev = node->next = NULL;
    node->queued = false;
    q->length--;
}

sdxl_status queue_push(job_queue *q, queue_node *node, int *position, sdxl_error *err)
{
    pthread_mutex_lock(&q->lock);
    sdxl_status st = SDXL_OK;
    if (q->closed) {
        st = error_set(err, SDXL_ERR_CANCELLED, "the queue is closed: the server is stopping");
    } else if (q->length >= q->capacity) {
        st = error_set(err, SDXL_ERR_LIMIT, "the queue is full: %d jobs are waiting", q->length);
    } else {
        node->prev = q->head.prev;
        node->next = &q->head;
        q->head.prev->next = node;
        q->head.prev = node;
        node->queued = true;
        node->seq = ++q->pushed;
        q->length++;
        if (position)
            *position = q->length;
        pthread_cond_signal(&q->nonempty);
    }
    pthread_mutex_unlock(&q->lock);
    return st;
}

queue_node *queue_pop(job_queue *q)
{
    pthread_mutex_lock(&q->lock);
    while (q->length == 0 && !q->closed)
        pthread_cond_wait(&q->nonempty, &q->lock);
    queue_node *node = NULL;
    if (q->length > 0) {
        node = q->head.next;
        unlink_node(q, node);
    }
    pthread_mutex_unlock(&q->lock);
    return node;
}

bool queue_remove(job_queue *q, queue_node *node)
{
    pthread_mutex_lock(&q->lock);
    bool was_queued = node->queued;
    if (was_queued)
        unlink_node(q, node);
    pthread_mutex_unlock(&q->lock);
    return was_queued;
}

void queue_remove_all(job_queue *q, void (*fn)(queue_node *node, void *ctx), void *ctx)
{
    for (;;) {
        pthread_mutex_lock(&q->lock);
        queue_node *node = NULL;
        if (q->length > 0) {
            node = q->head.next;
            unlink_node(q, node);
        }
        pthread_mutex_unlock(&q->lock);
        if (!node)
            return;
        fn(node, ctx);
    }
}

void queue_foreach(job_queue *q, void (*fn)(queue_node *node, int position, void *ctx),
                   void *ctx)
{
    pthread_mutex_lock(&q->lock);
    int position = 1;
    for (queue_node *n = q->head.next; n != &q->head; n = n->next)
        fn(n, position++, ctx);
    pthread_mutex_unlock(&q->lock);
}

int queue_length(job_queue *q)
{
    pthread_mutex_lock(&q->lock);
    int length = q->length;
    pthread_mutex_unlock(&q->lock);
    return length;
}

void queue_close(job_queue *q)
{
    pthread_mutex_lock(&q->lock);
    q->closed = true;
    pthread_cond_broadcast(&q->nonempty);
    pthread_mutex_unlock(&q->lock);
}
