/*
 * test_server_queue.c — the server's bounded FIFO (jobs leave in arrival order, a full queue
 * refuses at once, cancelled jobs leave from the middle, close drains) and the running-average
 * processing-time estimates per job shape.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>

#include "server/eta.h"
#include "server/queue.h"

typedef struct item {
    queue_node node;
    int id;
} item;

#define ITEM(n) ((item *)((char *)(n) - offsetof(item, node)))

static void fifo_order_and_sequence_numbers(void **state)
{
    job_queue q;
    assert_int_equal(queue_init(&q, 8, NULL), SDXL_OK);
    item items[5] = {0};
    for (int i = 0; i < 5; i++) {
        int pos = 0;
        items[i].id = i;
        assert_int_equal(queue_push(&q, &items[i].node, &pos, NULL), SDXL_OK);
        assert_int_equal(pos, i + 1);
        assert_int_equal(items[i].node.seq, i + 1);
    }
    assert_int_equal(queue_length(&q), 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(ITEM(queue_pop(&q))->id, i);
    assert_int_equal(queue_length(&q), 0);
    queue_destroy(&q);
}

static void full_queue_refuses_with_limit(void **state)
{
    job_queue q;
    assert_int_equal(queue_init(&q, 2, NULL), SDXL_OK);
    item a = {0}, b = {0}, c = {0};
    assert_int_equal(queue_push(&q, &a.node, NULL, NULL), SDXL_OK);
    assert_int_equal(queue_push(&q, &b.node, NULL, NULL), SDXL_OK);
    sdxl_error err;
    assert_int_equal(queue_push(&q, &c.node, NULL, &err), SDXL_ERR_LIMIT);
    assert_false(c.node.queued);
    assert_non_null(strstr(err.message, "full"));
    queue_pop(&q);
    assert_int_equal(queue_push(&q, &c.node, NULL, NULL), SDXL_OK);
    assert_int_equal(c.node.seq, 3);
    queue_destroy(&q);
}

static void collect(queue_node *node, int position, void *ctx)
{
    int *ids = ctx;
    ids[position - 1] = ITEM(node)->id;
}

static void removal_from_the_middle_keeps_the_order(void **state)
{
    job_queue q;
    assert_int_equal(queue_init(&q, 8, NULL), SDXL_OK);
    item items[4] = {{.id = 0}, {.id = 1}, {.id = 2}, {.id = 3}};
    for (int i = 0; i < 4; i++)
        assert_int_equal(queue_push(&q, &items[i].node, NULL, NULL), SDXL_OK);
    assert_true(queue_remove(&q, &items[1].node));
    assert_false(queue_remove(&q, &items[1].node)); /* already out */
    int ids[4] = {-1, -1, -1, -1};
    queue_foreach(&q, collect, ids);
    assert_int_equal(ids[0], 0);
    assert_int_equal(ids[1], 2);
    assert_int_equal(ids[2], 3);
    assert_int_equal(ids[3], -1);
    queue_node *popped = queue_pop(&q);
    assert_int_equal(ITEM(popped)->id, 0);
    assert_false(queue_remove(&q, popped)); /* the popper owns it */
    assert_int_equal(queue_length(&q), 2);
    queue_destroy(&q);
}

static void count_removed(queue_node *node, void *ctx)
{
    (*(int *)ctx) += ITEM(node)->id;
}

static void close_drains_then_stops(void **state)
{
    job_queue q;
    assert_int_equal(queue_init(&q, 4, NULL), SDXL_OK);
    item a = {.id = 1}, b = {.id = 2}, c = {.id = 4};
    assert_int_equal(queue_push(&q, &a.node, NULL, NULL), SDXL_OK);
    assert_int_equal(queue_push(&q, &b.node, NULL, NULL), SDXL_OK);
    queue_close(&q);
    assert_int_equal(queue_push(&q, &c.node, NULL, NULL), SDXL_ERR_CANCELLED);
    assert_int_equal(ITEM(queue_pop(&q))->id, 1);
    int sum = 0;
    queue_remove_all(&q, count_removed, &sum);
    assert_int_equal(sum, 2);
    assert_null(queue_pop(&q));
    queue_destroy(&q);
}

enum { N_PRODUCED = 2000 };

typedef struct consumer {
    job_queue *q;
    int seen[N_PRODUCED];
    int n;
} consumer;

static void *consume(void *arg)
{
    consumer *c = arg;
    queue_node *node;
    while ((node = queue_pop(c->q)) != NULL)
        c->seen[c->n++] = ITEM(node)->id;
    return NULL;
}

static void a_blocked_worker_gets_every_job_in_order(void **state)
{
    job_queue q;
    assert_int_equal(queue_init(&q, 16, NULL), SDXL_OK);
    static consumer c;
    c.q = &q;
    c.n = 0;
    pthread_t t;
    pthread_create(&t, NULL, consume, &c);
    static item items[N_PRODUCED];
    for (int i = 0; i < N_PRODUCED; i++) {
        items[i].id = i;
        while (queue_push(&q, &items[i].node, NULL, NULL) == SDXL_ERR_LIMIT)
            sched_yield();
    }
    queue_close(&q);
    pthread_join(t, NULL);
    assert_int_equal(c.n, N_PRODUCED);
    for (int i = 0; i < N_PRODUCED; i++)
        assert_int_equal(c.seen[i], i);
    queue_destroy(&q);
}

static void eta_mean_then_moving_average(void **state)
{
    eta_table t;
    eta_init(&t);
    eta_shape s = {64, 64, 2, 1};
    double ms = -1;
    assert_false(eta_estimate(&t, s, &ms));
    assert_true(ms == 0.0);
    eta_record(&t, s, 100);
    eta_record(&t, s, 200);
    assert_true(eta_estimate(&t, s, &ms));
    assert_true(ms == 150.0); /* the mean of the first samples */
    for (int i = 2; i < ETA_WINDOW; i++)
        eta_record(&t, s, 150);
    assert_true(eta_estimate(&t, s, &ms));
    assert_true(ms == 150.0);
    eta_record(&t, s, 150.0 + 8.0 * ETA_WINDOW);
    assert_true(eta_estimate(&t, s, &ms));
    assert_true(ms == 158.0); /* weight 1/ETA_WINDOW from then on */
    eta_destroy(&t);
}

static void eta_unknown_shape_scales_from_measured_ones(void **state)
{
    eta_table t;
    eta_init(&t);
    eta_record(&t, (eta_shape){64, 64, 2, 1}, 100);
    double ms;
    assert_true(eta_estimate(&t, (eta_shape){128, 64, 4, 2}, &ms));
    assert_true(ms == 800.0); /* 2 × the pixels, 2 × the steps, 2 × the images */
    eta_entry entries[4];
    assert_int_equal(eta_snapshot(&t, entries, 4), 1);
    assert_int_equal(entries[0].samples, 1);
    eta_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fifo_order_and_sequence_numbers),
        cmocka_unit_test(full_queue_refuses_with_limit),
        cmocka_unit_test(removal_from_the_middle_keeps_the_order),
        cmocka_unit_test(close_drains_then_stops),
        cmocka_unit_test(a_blocked_worker_gets_every_job_in_order),
        cmocka_unit_test(eta_mean_then_moving_average),
        cmocka_unit_test(eta_unknown_shape_scales_from_measured_ones),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
