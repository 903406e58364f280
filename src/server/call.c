/*
 * call.c — call contexts, reference counts and the send outbox (see call.h).
 */
#include "server/call.h"

#include <stdlib.h>
#include <string.h>

#include <grpc/support/alloc.h>

#include "base/log.h"
#include "server/server.h"
#include "server/wire.h"

#define DEADLINE_SLACK_MS 100

struct outbox_item {
    outbox_item *next;
    outbox_kind kind;
    int key;                   /* with kind, what a newer message replaces */
    grpc_byte_buffer *message; /* NULL: status only */
    bool has_status;
    grpc_status_code code;
    grpc_slice status_message;
    grpc_metadata trailing;    /* grpc-status-details-bin, when details */
    bool has_details;
};

call *call_new(server *srv, server_method method)
{
    call *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->srv = srv;
    c->method = method;
    atomic_init(&c->refs, 1);
    atomic_init(&c->cancelled, false);
    atomic_init(&c->expired, false);
    c->tag_new = (call_tag){TAG_NEW_CALL, c};
    c->tag_close = (call_tag){TAG_RECV_CLOSE, c};
    c->tag_send = (call_tag){TAG_SEND, c};
    c->tag_recv = (call_tag){TAG_RECV, c};
    pthread_mutex_init(&c->lock, NULL);
    grpc_metadata_array_init(&c->request_md);
    grpc_call_details_init(&c->details);
    return c;
}

void call_ref(call *c)
{
    atomic_fetch_add(&c->refs, 1);
}

static void outbox_item_free(outbox_item *item)
{
    if (item->message)
        grpc_byte_buffer_destroy(item->message);
    if (item->has_status)
        grpc_slice_unref(item->status_message);
    if (item->has_details) {
        grpc_slice_unref(item->trailing.key);
        grpc_slice_unref(item->trailing.value);
    }
    free(item);
}

void call_unref(call *c)
{
    if (atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    server *s = c->srv;
    pthread_mutex_lock(&s->calls_lock);
    if (c->prev)
        c->prev->next = c->next;
    else if (s->calls == c)
        s->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&s->calls_lock);
    while (c->out_head) {
        outbox_item *next = c->out_head->next;
        outbox_item_free(c->out_head);
        c->out_head = next;
    }
    if (c->handler_free)
        c->handler_free(c->handler);
    if (c->payload)
        grpc_byte_buffer_destroy(c->payload);
    if (c->recv_buffer)
        grpc_byte_buffer_destroy(c->recv_buffer);
    grpc_metadata_array_destroy(&c->request_md);
    grpc_call_details_destroy(&c->details);
    if (c->grpc)
        grpc_call_unref(c->grpc);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

bool call_is_cancelled(const call *c)
{
    return atomic_load(&c->cancelled) || atomic_load(&c->expired);
}

server_reason call_cancel_reason(const call *c)
{
    if (atomic_load(&c->expired))
        return REASON_DEADLINE_EXCEEDED;
    /* gRPC's deadline timer may fire a little before the deadline as this clock reads it
     * (timer slack, clock conversion): within the slack, the deadline is the cause. */
    gpr_timespec now = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                    gpr_time_from_millis(DEADLINE_SLACK_MS, GPR_TIMESPAN));
    gpr_timespec deadline = gpr_convert_clock_type(c->deadline, GPR_CLOCK_MONOTONIC);
    return gpr_time_cmp(now, deadline) >= 0 ? REASON_DEADLINE_EXCEEDED : REASON_CANCELLED;
}

/* Starts a batch for the head of the outbox when none is in flight. Called with c->lock held. */
static void start_next_send_locked(call *c)
{
    if (c->in_flight || !c->out_head)
        return;
    outbox_item *item = c->out_head;
    c->out_head = item->next;
    if (!c->out_head)
        c->out_tail = NULL;
    item->next = NULL;
    /* A final message and the status that follows it go in one batch. */
    outbox_item *status = NULL;
    if (item->message && c->out_head && c->out_head->has_status && !c->out_head->message) {
        status = c->out_head;
        c->out_head = status->next;
        if (!c->out_head)
            c->out_tail = NULL;
        item->next = status;
    }
    if (item->has_status)
        status = item;

    memset(c->ops, 0, sizeof c->ops);
    size_t n = 0;
    if (!c->initial_sent) {
        c->ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
        c->ops[n].data.send_initial_metadata.count = 0;
        n++;
        c->initial_sent = true;
    }
    if (item->message) {
        c->ops[n].op = GRPC_OP_SEND_MESSAGE;
        c->ops[n].data.send_message.send_message = item->message;
        n++;
    }
    if (status) {
        c->ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        c->ops[n].data.send_status_from_server.status = status->code;
        c->ops[n].data.send_status_from_server.status_details = &status->status_message;
        c->ops[n].data.send_status_from_server.trailing_metadata_count = status->has_details;
        c->ops[n].data.send_status_from_server.trailing_metadata =
            status->has_details ? &status->trailing : NULL;
        n++;
    }
    c->in_flight = item;
    call_ref(c);
    grpc_call_error rc = grpc_call_start_batch(c->grpc, c->ops, n, &c->tag_send, NULL);
    if (rc != GRPC_CALL_OK) {
        LOG_ERROR("call %s: grpc_call_start_batch (send) failed: %d", method_name(c->method),
                  (int)rc);
        c->in_flight = NULL;
        while (item) {
            outbox_item *next = item->next;
            outbox_item_free(item);
            item = next;
        }
        /* The batch never started, so its tag never comes back: drop its reference here,
         * outside the lock (it may be the last one only if the caller holds none, which the
         * callers of this function never do). */
        atomic_fetch_sub(&c->refs, 1);
    }
}

static void enqueue_locked(call *c, outbox_item *item)
{
    if (item->kind != OUTBOX_PLAIN) {
        for (outbox_item *it = c->out_head; it; it = it->next)
            if (it->kind == item->kind && it->key == item->key) {
                grpc_byte_buffer_destroy(it->message);
                it->message = item->message;
                item->message = NULL;
                outbox_item_free(item);
                return;
            }
    }
    if (c->out_tail)
        c->out_tail->next = item;
    else
        c->out_head = item;
    c->out_tail = item;
}

bool call_send(call *c, const ProtobufCMessage *msg, outbox_kind kind, int key)
{
    outbox_item *item = calloc(1, sizeof *item);
    if (!item)
        return false;
    item->kind = kind;
    item->key = key;
    item->message = wire_pack(msg);
    if (!item->message) {
        free(item);
        return false;
    }
    pthread_mutex_lock(&c->lock);
    bool ok = !c->finished;
    if (ok) {
        enqueue_locked(c, item);
        start_next_send_locked(c);
    }
    pthread_mutex_unlock(&c->lock);
    if (!ok)
        outbox_item_free(item);
    return ok;
}

void call_finish(call *c, const ProtobufCMessage *final_msg, const server_error *error)
{
    grpc_status_code code = error ? error->code : GRPC_STATUS_OK;
    server_reason reason = error ? error->reason : REASON_NONE;
    outbox_item *msg_item = NULL, *status_item = calloc(1, sizeof *status_item);
    if (final_msg) {
        msg_item = calloc(1, sizeof *msg_item);
        if (msg_item)
            msg_item->message = wire_pack(final_msg);
        if (!msg_item || !msg_item->message) {
            free(msg_item);
            msg_item = NULL;
            static const server_error oom = {.code = GRPC_STATUS_RESOURCE_EXHAUSTED,
                                             .reason = REASON_OUT_OF_MEMORY,
                                             .message = "out of memory packing the answer"};
            error = &oom;
            code = oom.code;
            reason = oom.reason;
        }
    }
    if (!status_item) {
        LOG_ERROR("call %s: out of memory for its final status", method_name(c->method));
        if (msg_item)
            outbox_item_free(msg_item);
        return;
    }
    status_item->has_status = true;
    status_item->code = code;
    status_item->status_message = grpc_slice_from_copied_string(error ? error->message : "");
    if (error) {
        uint8_t *details;
        size_t details_len;
        if (server_error_pack_details(error, &details, &details_len)) {
            status_item->trailing.key = grpc_slice_from_static_string("grpc-status-details-bin");
            status_item->trailing.value =
                grpc_slice_from_copied_buffer((const char *)details, details_len);
            status_item->has_details = true;
            free(details);
        }
    }

    pthread_mutex_lock(&c->lock);
    bool already = c->finished;
    if (!already) {
        c->finished = true;
        if (msg_item)
            enqueue_locked(c, msg_item);
        enqueue_locked(c, status_item);
        start_next_send_locked(c);
    }
    pthread_mutex_unlock(&c->lock);
    if (already) {
        LOG_ERROR("call %s: a second final status (%s) was dropped: this is a bug",
                  method_name(c->method), server_grpc_code_name(code));
        if (msg_item)
            outbox_item_free(msg_item);
        outbox_item_free(status_item);
        return;
    }

    double latency = server_now_s() - c->arrived_s;
    metrics_record_call(&c->srv->metrics, c->method, code, reason, latency);
    const char *rid = c->request_id[0] ? c->request_id : NULL;
    if (code == GRPC_STATUS_OK)
        log_request(method_is_generation(c->method) ? LOG_LEVEL_INFO : LOG_LEVEL_DEBUG, rid,
                    "%s: OK in %.1f ms", method_name(c->method), latency * 1000.0);
    else
        log_request(reason == REASON_INTERNAL || reason == REASON_DEVICE_ERROR ? LOG_LEVEL_ERROR
                                                                                : LOG_LEVEL_INFO,
                    rid, "%s: %s %s in %.1f ms: %s%s%s%s", method_name(c->method),
                    server_grpc_code_name(code), server_reason_name(reason), latency * 1000.0,
                    error->message, error->field[0] ? " (field " : "",
                    error->field[0] ? error->field : "", error->field[0] ? ")" : "");
}

void call_on_send_done(call *c, bool success)
{
    pthread_mutex_lock(&c->lock);
    outbox_item *item = c->in_flight;
    c->in_flight = NULL;
    while (item) {
        outbox_item *next = item->next;
        outbox_item_free(item);
        item = next;
    }
    if (success) {
        start_next_send_locked(c);
    } else {
        /* The client is gone: what is still queued can never be delivered. */
        while (c->out_head) {
            outbox_item *next = c->out_head->next;
            outbox_item_free(c->out_head);
            c->out_head = next;
        }
        c->out_tail = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    call_unref(c);
}

const grpc_slice *call_metadata_value(const call *c, const char *key)
{
    size_t key_len = strlen(key);
    for (size_t i = 0; i < c->request_md.count; i++) {
        const grpc_metadata *md = &c->request_md.metadata[i];
        if (GRPC_SLICE_LENGTH(md->key) == key_len &&
            memcmp(GRPC_SLICE_START_PTR(md->key), key, key_len) == 0)
            return &md->value;
    }
    return NULL;
}
