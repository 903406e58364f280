/*
 * server.c — sdxld's gRPC server: setup, the poller loop, call dispatch, deadlines, signals
 * and the shutdown sequence (see server.h).
 *
 * Shutdown (SIGTERM/SIGINT, through a self-pipe the poller reads): health NOT_SERVING and Watch calls ended; the gRPC server stops
 * accepting calls (grpc_server_shutdown_and_notify); queued jobs are finished (drain) or
 * answered UNAVAILABLE with the running one stopped at its next step (cancel); after
 * --shutdown-grace seconds, or on a second signal, every call still open is cancelled. When
 * gRPC reports the last call done: the queue closes, the worker and the pool finish, the
 * completion queue drains, and the process exits 0 (1 if the model failed to load).
 */
#include "server/server.h"

#include <errno.h>
#include <fcntl.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "server/handlers.h"
#include "server/metrics_http.h"
#include "server/worker.h"

#define POLL_INTERVAL_MS 100
#define SWEEP_BATCH 64

double server_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

server_state server_get_state(server *s)
{
    return (server_state)atomic_load(&s->state);
}

void server_set_state(server *s, server_state state)
{
    atomic_store(&s->state, (int)state);
    LOG_INFO("health: %s", state == SERVER_SERVING ? "SERVING" : "NOT_SERVING");
    health_notify(s, false);
}

/* ---- calls --------------------------------------------------------------------------- */

static void arm(server *s, server_method m)
{
    call *c = call_new(s, m);
    if (!c) {
        LOG_ERROR("out of memory: no longer accepting %s calls", method_name(m));
        return;
    }
    grpc_call_error rc;
    if (m == METHOD_UNKNOWN)
        rc = grpc_server_request_call(s->grpc, &c->grpc, &c->details, &c->request_md, s->cq,
                                      s->cq, &c->tag_new);
    else
        rc = grpc_server_request_registered_call(
            s->grpc, s->registered[m], &c->grpc, &c->deadline, &c->request_md,
            method_has_unary_request(m) ? &c->payload : NULL, s->cq, s->cq, &c->tag_new);
    if (rc != GRPC_CALL_OK) {
        LOG_ERROR("requesting %s calls failed: %d", method_name(m), (int)rc);
        call_unref(c);
    }
}

static bool is_infinite(gpr_timespec t)
{
    return gpr_time_cmp(t, gpr_inf_future(t.clock_type)) == 0;
}

/* Checks the bearer token; false (answered UNAUTHENTICATED) when it is missing or wrong. */
static bool authorized(server *s, call *c)
{
    if (!s->has_token || c->method == METHOD_HEALTH_CHECK || c->method == METHOD_HEALTH_WATCH)
        return true;
    const grpc_slice *value = call_metadata_value(c, "authorization");
    if (value && auth_check(&s->token, (const char *)GRPC_SLICE_START_PTR(*value),
                            GRPC_SLICE_LENGTH(*value)))
        return true;
    metrics_record_auth_failure(&s->metrics);
    server_error e;
    server_error_set(&e, REASON_UNAUTHENTICATED, "send the metadata \"authorization: Bearer "
                     "<token>\" with the token from the server's --auth-token-file",
                     value ? "the bearer token is wrong" : "no bearer token was sent");
    call_finish(c, NULL, &e);
    return false;
}

static void on_new_call(server *s, call *c, bool success, bool accepting)
{
    if (!success) {
        /* A requested call that will never come: the server is shutting down. */
        call_unref(c);
        return;
    }
    if (accepting)
        arm(s, c->method);
    c->arrived_s = server_now_s();
    if (c->method == METHOD_UNKNOWN)
        c->deadline = c->details.deadline;
    pthread_mutex_lock(&s->calls_lock);
    c->next = s->calls;
    if (s->calls)
        s->calls->prev = c;
    s->calls = c;
    pthread_mutex_unlock(&s->calls_lock);

    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &c->close_cancelled;
    call_ref(c);
    if (grpc_call_start_batch(c->grpc, &op, 1, &c->tag_close, NULL) != GRPC_CALL_OK) {
        LOG_ERROR("%s: could not watch the call for cancellation", method_name(c->method));
        call_unref(c);
    }
    if (method_is_generation(c->method) && s->opts.default_deadline_ms > 0 &&
        is_infinite(c->deadline))
        c->server_deadline_ms =
            (int64_t)(c->arrived_s * 1000.0) + s->opts.default_deadline_ms;

    if (!authorized(s, c)) {
        call_unref(c);
        return;
    }
    switch (c->method) {
    case METHOD_IMG2IMG:
    case METHOD_IMG2IMG_BATCH:
    case METHOD_IMG2IMG_STREAM:
    case METHOD_TXT2IMG:
        handlers_generate_start(c);
        break;
    case METHOD_GET_STATUS:
        handlers_status(c);
        break;
    case METHOD_HEALTH_CHECK:
        health_check(c);
        break;
    case METHOD_HEALTH_WATCH:
        health_watch(c);
        break;
    case METHOD_REFLECTION_V1:
    case METHOD_REFLECTION_V1ALPHA:
        reflection_start(c);
        break;
    default: {
        char *path = grpc_slice_to_c_string(c->details.method);
        server_error e;
        server_error_set(&e, REASON_UNIMPLEMENTED, "call one of the methods that server "
                         "reflection lists", "no method %.200s on this server", path);
        gpr_free(path);
        call_finish(c, NULL, &e);
        call_unref(c);
        break;
    }
    }
}

static void on_call_closed(call *c)
{
    if (c->close_cancelled) {
        atomic_store(&c->cancelled, true);
        if (method_is_generation(c->method))
            handlers_generate_cancelled(c);
        else if (c->method == METHOD_HEALTH_WATCH)
            health_watch_cancelled(c);
    }
    call_unref(c);
}

/* A reference to c unless its last one is already gone (it is then being destroyed). */
static bool try_ref(call *c)
{
    int refs = atomic_load(&c->refs);
    while (refs > 0)
        if (atomic_compare_exchange_weak(&c->refs, &refs, refs + 1))
            return true;
    return false;
}

/* Applies --default-deadline to calls that set none. */
static void sweep_deadlines(server *s)
{
    int64_t now_ms = (int64_t)(server_now_s() * 1000.0);
    call *expired[SWEEP_BATCH];
    int n = 0;
    pthread_mutex_lock(&s->calls_lock);
    for (call *c = s->calls; c && n < SWEEP_BATCH; c = c->next)
        if (c->server_deadline_ms && now_ms >= c->server_deadline_ms &&
            !atomic_load(&c->expired) && try_ref(c)) {
            atomic_store(&c->expired, true);
            expired[n++] = c;
        }
    pthread_mutex_unlock(&s->calls_lock);
    for (int i = 0; i < n; i++) {
        log_request(LOG_LEVEL_INFO, expired[i]->request_id[0] ? expired[i]->request_id : NULL,
                    "the server's default deadline (%.1f s) passed",
                    (double)s->opts.default_deadline_ms / 1000.0);
        handlers_generate_cancelled(expired[i]);
        call_unref(expired[i]);
    }
}

/* ---- setup --------------------------------------------------------------------------- */

static char *render_metrics(void *user, size_t *len)
{
    server *s = user;
    pthread_mutex_lock(&s->running_lock);
    bool running = s->running.active;
    pthread_mutex_unlock(&s->running_lock);
    bool loaded = atomic_load(&s->model_ready);
    metrics_gauges g = {
        .queue_length = queue_length(&s->queue),
        .queue_capacity = s->opts.queue_size,
        .running_jobs = running,
        .ready = server_get_state(s) == SERVER_SERVING,
        .resident_bytes = metrics_resident_bytes(),
        .weight_bytes = loaded ? s->model_info.weight_bytes : 0,
        .backend = loaded ? s->model_info.backend : NULL,
        .uptime_s = server_now_s() - s->started_s,
    };
    return metrics_render(&s->metrics, &g, len);
}

static bool is_loopback(const char *address)
{
    return strncmp(address, "127.", 4) == 0 || strncmp(address, "localhost:", 10) == 0 ||
           strncmp(address, "[::1]:", 6) == 0 || strncmp(address, "unix:", 5) == 0;
}

/* Refuses to take over a socket another process listens on; removes a stale one. */
static sdxl_status check_socket_path(const char *path, sdxl_error *err)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return SDXL_OK;
    if (!S_ISSOCK(sb.st_mode))
        return error_set(err, SDXL_ERR_IO, "--socket %s: exists and is not a socket", path);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if (len >= sizeof addr.sun_path)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "--socket %s: longer than %zu bytes",
                         path, sizeof addr.sun_path - 1);
    memcpy(addr.sun_path, path, len + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool live = fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
    if (fd >= 0)
        close(fd);
    if (live)
        return error_set(err, SDXL_ERR_IO, "--socket %s: another server is listening there",
                         path);
    unlink(path);
    return SDXL_OK;
}

static sdxl_status add_ports(server *s, sdxl_error *err)
{
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    sdxl_status st = SDXL_OK;
    if (s->opts.listen[0]) {
        int port = grpc_server_add_http2_port(s->grpc, s->opts.listen, creds);
        if (port == 0)
            st = error_set(err, SDXL_ERR_IO, "--listen %s: could not bind (is the port in use? "
                           "pick another with --listen)", s->opts.listen);
        else if (!is_loopback(s->opts.listen))
            LOG_WARNING("listening on %s, which is not a loopback address: anyone who can "
                        "reach it can use the server%s", s->opts.listen,
                        s->has_token ? "" : " (consider --auth-token-file)");
        if (port)
            LOG_INFO("gRPC listening on %s (port %d)", s->opts.listen, port);
    }
    if (st == SDXL_OK && s->opts.socket_path[0]) {
        st = check_socket_path(s->opts.socket_path, err);
        if (st == SDXL_OK) {
            char address[OPTIONS_PATH_MAX + 8];
            snprintf(address, sizeof address, "unix:%s", s->opts.socket_path);
            /* Created private, then opened up to --socket-mode: never briefly world-usable. */
            mode_t old = umask(0177);
            int port = grpc_server_add_http2_port(s->grpc, address, creds);
            umask(old);
            if (port == 0)
                st = error_set(err, SDXL_ERR_IO, "--socket %s: could not bind",
                               s->opts.socket_path);
        }
    }
    grpc_server_credentials_release(creds);
    return st;
}

static sdxl_status setup(server *s, const server_options *opts, sdxl_error *err)
{
    s->opts = *opts;
    s->started_s = server_now_s();
    atomic_init(&s->state, SERVER_LOADING);
    pthread_mutex_init(&s->running_lock, NULL);
    pthread_mutex_init(&s->calls_lock, NULL);
    eta_init(&s->eta);
    metrics_init(&s->metrics);
    sdxl_status st = queue_init(&s->queue, opts->queue_size, err);
    if (st)
        return st;
    if (opts->auth_token_file[0]) {
        if ((st = auth_token_load(opts->auth_token_file, &s->token, err)))
            return st;
        s->has_token = true;
    }
    if ((st = reflection_init(err)))
        return st;
    if ((st = taskpool_create(opts->io_threads, &s->pool, err)))
        return st;

    grpc_arg args[3];
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = (int)opts->max_message_bytes;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
    args[1].value.integer = (int)opts->max_message_bytes;
    /* Without this a second server could bind the same port and split the traffic. */
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = GRPC_ARG_ALLOW_REUSEPORT;
    args[2].value.integer = 0;
    grpc_channel_args channel_args = {3, args};
    s->grpc = grpc_server_create(&channel_args, NULL);
    s->cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(s->grpc, s->cq, NULL);
    for (int m = 0; m < METHOD_COUNT; m++) {
        if (m == METHOD_UNKNOWN)
            continue;
        s->registered[m] = grpc_server_register_method(
            s->grpc, method_path((server_method)m), NULL,
            method_has_unary_request((server_method)m) ? GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER
                                                       : GRPC_SRM_PAYLOAD_NONE,
            0);
    }
    if ((st = add_ports(s, err)))
        return st;
    grpc_server_start(s->grpc);
    s->grpc_started = true;
    if (opts->socket_path[0]) {
        if (chmod(opts->socket_path, opts->socket_mode) != 0)
            return error_set(err, SDXL_ERR_IO, "--socket %s: chmod: %s", opts->socket_path,
                             strerror(errno));
        LOG_INFO("gRPC listening on unix:%s (mode %04o)", opts->socket_path, opts->socket_mode);
    }
    for (int m = 0; m < METHOD_COUNT; m++)
        arm(s, (server_method)m);
    return SDXL_OK;
}

/* ---- the loop ------------------------------------------------------------------------ */

static void answer_shutting_down(queue_node *node, void *ctx)
{
    job *j = (job *)((char *)node - offsetof(job, node));
    server_error e;
    server_error_set(&e, REASON_SHUTTING_DOWN, "retry on another server or after the restart",
                     "the server is shutting down (--on-shutdown cancel)");
    handlers_generate_done(j, &e);
}

typedef struct loop_state {
    bool shutting_down;
    bool cancelled_all;
    bool shutdown_done;
    bool cq_shut;
    double grace_deadline_s;
    call_tag shutdown_tag;
} loop_state;

static void begin_shutdown(server *s, loop_state *ls)
{
    LOG_INFO("shutting down: no new calls; %s the queued jobs (%d waiting)",
             s->opts.shutdown == SHUTDOWN_DRAIN ? "finishing" : "cancelling",
             queue_length(&s->queue));
    ls->shutting_down = true;
    server_set_state(s, SERVER_STOPPING);
    health_notify(s, true);
    grpc_server_shutdown_and_notify(s->grpc, s->cq, &ls->shutdown_tag);
    if (s->opts.shutdown == SHUTDOWN_CANCEL) {
        atomic_store(&s->cancel_running, true);
        queue_remove_all(&s->queue, answer_shutting_down, NULL);
    }
    ls->grace_deadline_s = server_now_s() + s->opts.shutdown_grace_s;
}

static void cancel_everything(server *s, loop_state *ls)
{
    LOG_WARNING("cancelling every open call");
    ls->cancelled_all = true;
    atomic_store(&s->cancel_running, true);
    grpc_server_cancel_all_calls(s->grpc);
}

/* The write end of the self-pipe: a signal handler may run on any thread (libraries such as
 * OpenBLAS start threads before main, so blocking signals cannot route them to one thread);
 * it only writes the signal number, and the poller reads it. */
static int signal_pipe_write = -1;

static void on_signal(int signo)
{
    int saved = errno;
    unsigned char b = (unsigned char)signo;
    ssize_t n = write(signal_pipe_write, &b, 1);
    (void)n;
    errno = saved;
}

/* True when a SIGTERM or SIGINT arrived. */
static bool signal_arrived(int fd)
{
    unsigned char b;
    bool any = false;
    while (read(fd, &b, 1) == 1) {
        LOG_INFO("signal %s", b == SIGTERM ? "SIGTERM" : "SIGINT");
        any = true;
    }
    return any;
}

static void handle_event(server *s, loop_state *ls, grpc_event ev)
{
    call_tag *tag = ev.tag;
    switch (tag->kind) {
    case TAG_NEW_CALL:
        on_new_call(s, tag->call, ev.success, !ls->shutting_down);
        break;
    case TAG_RECV_CLOSE:
        on_call_closed(tag->call);
        break;
    case TAG_SEND:
        call_on_send_done(tag->call, ev.success);
        break;
    case TAG_RECV:
        reflection_on_recv(tag->call, ev.success);
        break;
    case TAG_SHUTDOWN:
        ls->shutdown_done = true;
        break;
    }
}

static void finish_shutdown(server *s, loop_state *ls)
{
    LOG_INFO("every call is done: stopping the worker");
    atomic_store(&s->cancel_running, true);
    queue_close(&s->queue);
    worker_join(s);
    /* Tasks still queued may answer calls: their batches complete on the queue we drain. */
    taskpool_destroy(s->pool);
    s->pool = NULL;
    grpc_server_destroy(s->grpc);
    s->grpc = NULL;
    grpc_completion_queue_shutdown(s->cq);
    ls->cq_shut = true;
}

static int run_loop(server *s, int signal_fd)
{
    loop_state ls = {.shutdown_tag = {TAG_SHUTDOWN, NULL}};
    int exit_code = 0;
    double next_sweep = 0;
    for (;;) {
        gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                             gpr_time_from_millis(POLL_INTERVAL_MS, GPR_TIMESPAN));
        grpc_event ev = grpc_completion_queue_next(s->cq, deadline, NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type == GRPC_OP_COMPLETE)
            handle_event(s, &ls, ev);
        if (ls.cq_shut)
            continue;
        if (signal_arrived(signal_fd)) {
            if (!ls.shutting_down)
                begin_shutdown(s, &ls);
            else if (!ls.cancelled_all)
                cancel_everything(s, &ls);
        }
        if (atomic_load(&s->load_failed) && !ls.shutting_down) {
            exit_code = 1;
            begin_shutdown(s, &ls);
        }
        double now = server_now_s();
        if (ls.shutting_down && !ls.cancelled_all && now >= ls.grace_deadline_s)
            cancel_everything(s, &ls);
        if (now >= next_sweep) {
            sweep_deadlines(s);
            next_sweep = now + POLL_INTERVAL_MS / 1000.0;
        }
        if (ls.shutdown_done)
            finish_shutdown(s, &ls);
    }
    return exit_code;
}

int server_run(const server_options *opts)
{
    /* Big request and answer buffers (tens of MB) would each get a fresh mmap and be returned
     * at once: keep them in the heap. */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);

    int signal_pipe[2];
    if (pipe2(signal_pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
        LOG_ERROR("pipe: %s", strerror(errno));
        return 1;
    }
    signal_pipe_write = signal_pipe[1];
    int signal_fd = signal_pipe[0];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    grpc_init();
    server *s = calloc(1, sizeof *s);
    sdxl_error err;
    metrics_http *metrics = NULL;
    int exit_code = 1;
    if (!s) {
        LOG_ERROR("out of memory");
    } else if (setup(s, opts, &err) != SDXL_OK) {
        LOG_ERROR("%s", err.message);
    } else if (opts->metrics_listen[0] &&
               metrics_http_start(opts->metrics_listen, render_metrics, s, &metrics, &err)) {
        LOG_ERROR("%s", err.message);
    } else if (worker_start(s, &err) != SDXL_OK) {
        LOG_ERROR("%s", err.message);
    } else {
        if (metrics)
            LOG_INFO("metrics on http://%s/metrics", opts->metrics_listen);
        exit_code = run_loop(s, signal_fd);
    }
    if (s) {
        /* Paths where the loop never ran: stop what setup started. */
        if (s->grpc) {
            if (s->grpc_started) {
                grpc_server_shutdown_and_notify(s->grpc, s->cq, NULL);
                grpc_server_cancel_all_calls(s->grpc);
            }
            queue_close(&s->queue);
            worker_join(s);
            grpc_server_destroy(s->grpc);
            grpc_completion_queue_shutdown(s->cq);
            for (;;) {
                grpc_event ev = grpc_completion_queue_next(
                    s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
                if (ev.type == GRPC_QUEUE_SHUTDOWN)
                    break;
                if (ev.type == GRPC_OP_COMPLETE && ev.tag &&
                    ((call_tag *)ev.tag)->kind == TAG_NEW_CALL)
                    call_unref(((call_tag *)ev.tag)->call);
            }
        }
        if (s->cq)
            grpc_completion_queue_destroy(s->cq);
        metrics_http_stop(metrics);
        taskpool_destroy(s->pool);
        if (s->model)
            sdxl_model_close(s->model);
        if (opts->socket_path[0])
            unlink(opts->socket_path);
        reflection_free();
        queue_destroy(&s->queue);
        metrics_destroy(&s->metrics);
        eta_destroy(&s->eta);
        pthread_mutex_destroy(&s->running_lock);
        pthread_mutex_destroy(&s->calls_lock);
        free(s);
    }
    grpc_shutdown_blocking();
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    close(signal_pipe[0]);
    close(signal_pipe[1]);
    LOG_INFO("stopped (exit code %d)", exit_code);
    return exit_code;
}
