/*
 * health.c — grpc.health.v1.Health: Check and Watch, for the whole server ("") and for
 * sdxl.v1.ImageGeneration. NOT_SERVING while the model loads, SERVING after, NOT_SERVING from
 * the moment a shutdown starts; watchers get each change, and their calls end at shutdown.
 * Health needs no token (probes carry none).
 */
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "server/handlers.h"
#include "server/server.h"
#include "server/wire.h"

#define SERVICE_NAME "sdxl.v1.ImageGeneration"

struct health_watcher {
    health_watcher *next;
    call *call;
    bool known_service;
    int last_sent; /* -1: nothing yet */
};

static Grpc__Health__V1__HealthCheckResponse__ServingStatus serving_status(server *s)
{
    return server_get_state(s) == SERVER_SERVING
               ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
               : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
}

/* Reads the request's service name; false (answered) when the request is malformed. */
static bool read_service(call *c, bool *known)
{
    grpc_slice slice;
    Grpc__Health__V1__HealthCheckRequest *req = NULL;
    if (wire_payload_bytes(c->payload, &slice)) {
        req = grpc__health__v1__health_check_request__unpack(NULL, GRPC_SLICE_LENGTH(slice),
                                                             GRPC_SLICE_START_PTR(slice));
        grpc_slice_unref(slice);
    }
    if (!req) {
        server_error e;
        server_error_set(&e, REASON_INVALID_REQUEST, "send a grpc.health.v1.HealthCheckRequest",
                         "the request is not a HealthCheckRequest");
        call_finish(c, NULL, &e);
        return false;
    }
    const char *name = req->service ? req->service : "";
    *known = name[0] == '\0' || strcmp(name, SERVICE_NAME) == 0;
    grpc__health__v1__health_check_request__free_unpacked(req, NULL);
    return true;
}

static void send_status(call *c, int status, bool final)
{
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    resp.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)status;
    if (final)
        call_finish(c, &resp.base, NULL);
    else
        call_send(c, &resp.base, OUTBOX_PLAIN, 0);
}

void health_check(call *c)
{
    bool known;
    if (read_service(c, &known)) {
        if (known) {
            send_status(c, serving_status(c->srv), true);
        } else {
            server_error e;
            server_error_set(&e, REASON_UNKNOWN_SERVICE, "ask for \"\" or \"" SERVICE_NAME "\"",
                             "this server has no such service");
            call_finish(c, NULL, &e);
        }
    }
    call_unref(c);
}

void health_watch(call *c)
{
    server *s = c->srv;
    bool known;
    if (!read_service(c, &known)) {
        call_unref(c);
        return;
    }
    health_watcher *w = calloc(1, sizeof *w);
    if (!w) {
        server_error e;
        server_error_set(&e, REASON_OUT_OF_MEMORY, "retry later", "out of memory");
        call_finish(c, NULL, &e);
        call_unref(c);
        return;
    }
    w->call = c;
    w->known_service = known;
    w->last_sent = -1;
    pthread_mutex_lock(&c->lock);
    c->handler = w;
    pthread_mutex_unlock(&c->lock);
    pthread_mutex_lock(&s->calls_lock);
    w->next = s->watchers;
    s->watchers = w;
    pthread_mutex_unlock(&s->calls_lock);
    health_notify(s, false);
}

void health_watch_cancelled(call *c)
{
    server *s = c->srv;
    health_watcher *found = NULL;
    pthread_mutex_lock(&s->calls_lock);
    for (health_watcher **p = &s->watchers; *p; p = &(*p)->next)
        if ((*p)->call == c) {
            found = *p;
            *p = found->next;
            break;
        }
    pthread_mutex_unlock(&s->calls_lock);
    if (!found)
        return;
    server_error e;
    server_error_set(&e, call_cancel_reason(c), "", "the watch ended");
    call_finish(c, NULL, &e);
    free(found);
    call_unref(c);
}

void health_notify(server *s, bool final)
{
    int status = serving_status(s);
    health_watcher *ended = NULL;
    pthread_mutex_lock(&s->calls_lock);
    health_watcher **p = &s->watchers;
    while (*p) {
        health_watcher *w = *p;
        int st = w->known_service
                     ? status
                     : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN;
        if (st != w->last_sent) {
            send_status(w->call, st, false);
            w->last_sent = st;
        }
        if (final) {
            *p = w->next;
            w->next = ended;
            ended = w;
        } else {
            p = &w->next;
        }
    }
    pthread_mutex_unlock(&s->calls_lock);
    /* Outside the lock: the last reference of a call takes calls_lock to unlink it. */
    while (ended) {
        health_watcher *next = ended->next;
        call_finish(ended->call, NULL, NULL);
        call_unref(ended->call);
        free(ended);
        ended = next;
    }
}
