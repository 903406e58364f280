/*
 * call.h — one gRPC call on the server: its context, reference count, cancellation flags, and
 * the outbox that serialises everything sent on it.
 *
 * Ownership (gRPC core allows one batch per kind of op in flight on a call, started by one
 * thread at a time): every send goes through call_send / call_finish, which queue it and start
 * a batch only when none is in flight; the completion (on the poller) starts the next. So the
 * poller, the decode pool, the worker and the encoders can all answer a call without ever
 * blocking one another or the poller.
 *
 * References: one for the logic that owns the call (the handler, then the job), one per batch
 * in flight (RECV_CLOSE_ON_SERVER, a send, a stream read). The last call_unref releases the
 * grpc_call. Exactly one final status is sent per call: call_finish twice is a bug (logged,
 * ignored).
 */
#ifndef SDXL_SERVER_CALL_H
#define SDXL_SERVER_CALL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

#include "server/errors.h"
#include "server/method.h"

struct server;

#define REQUEST_ID_MAX 129 /* 128 bytes and the NUL */

typedef enum tag_kind {
    TAG_NEW_CALL,   /* a requested call arrived (or, with success=0, the server shuts down) */
    TAG_RECV_CLOSE, /* RECV_CLOSE_ON_SERVER completed: the call is over for the client */
    TAG_SEND,       /* a send batch completed */
    TAG_RECV,       /* a stream read completed */
    TAG_SHUTDOWN,   /* grpc_server_shutdown_and_notify completed */
} tag_kind;

typedef struct call_tag {
    tag_kind kind;
    struct call *call;
} call_tag;

/* Kinds of message that a newer one of the same kind and key replaces while still waiting to be
 * sent (a slow reader gets the latest progress of each stage, not a backlog). */
typedef enum outbox_kind {
    OUTBOX_PLAIN = 0,
    OUTBOX_PROGRESS,
    OUTBOX_QUEUED,
} outbox_kind;

typedef struct outbox_item outbox_item;

typedef struct call {
    struct server *srv;
    server_method method;
    grpc_call *grpc;
    gpr_timespec deadline;         /* the client's (gpr_inf_future when none) */
    grpc_metadata_array request_md;
    grpc_byte_buffer *payload;     /* the request message of unary-request methods */
    grpc_call_details details;     /* filled for calls to unregistered methods */
    double arrived_s;              /* monotonic seconds */
    int64_t server_deadline_ms;    /* --default-deadline applied (monotonic ms); 0 = none */

    atomic_int refs;
    atomic_bool cancelled;         /* the client cancelled, its deadline passed or it left */
    atomic_bool expired;           /* the server's default deadline passed */
    int close_cancelled;           /* RECV_CLOSE_ON_SERVER's result */

    call_tag tag_new, tag_close, tag_send, tag_recv;

    pthread_mutex_t lock;          /* the outbox and the in-flight send */
    outbox_item *out_head, *out_tail;
    outbox_item *in_flight;
    bool initial_sent;
    bool finished;                 /* the final status has been queued */
    grpc_op ops[3];

    grpc_byte_buffer *recv_buffer; /* stream reads */
    char request_id[REQUEST_ID_MAX];
    void *handler;                 /* what the method's handler attached (job, watcher);
                                    * guarded by lock, freed with the call by handler_free */
    void (*handler_free)(void *handler);
    struct call *prev, *next;      /* the server's list of open calls */
} call;

/* A new context for a call about to be requested (one reference: the logic's). */
call *call_new(struct server *srv, server_method method);
void call_ref(call *c);
void call_unref(call *c);

/* True once the client is gone (cancelled, deadline, disconnect) or the server's default
 * deadline passed: stop working on it. */
bool call_is_cancelled(const call *c);
/* The reason to report for a call that stopped that way. */
server_reason call_cancel_reason(const call *c);

/* Queues msg (packed now; msg may be freed on return). For a kind other than OUTBOX_PLAIN, it
 * replaces a waiting message of the same kind and key (e.g. a progress event's stage) in its
 * place. False when the call is already finished or out of memory. */
bool call_send(call *c, const ProtobufCMessage *msg, outbox_kind kind, int key);

/* Queues the final answer: final_msg (may be NULL) then the status — OK when error is NULL,
 * else error's code with its google.rpc.Status details. Records the call in the metrics and
 * logs it. */
void call_finish(call *c, const ProtobufCMessage *final_msg, const server_error *error);

/* Poller: a send batch completed. */
void call_on_send_done(call *c, bool success);

/* The value of request metadata key (first match), or NULL. */
const grpc_slice *call_metadata_value(const call *c, const char *key);

#endif /* SDXL_SERVER_CALL_H */
