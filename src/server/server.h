/*
 * server.h — sdxld's server: the shared state of the gRPC poller, the handlers, the decode and
 * encode pool and the engine's worker, and the entry point that runs it until SIGTERM.
 *
 * Threads: the main thread is the only poller of the one completion queue and does only cheap
 * work (dispatch, health, status, reflection, error answers); the task pool decodes and
 * validates requests and encodes images; the worker owns the engine (model load, session,
 * sdxl_generate); the metrics thread answers HTTP.
 */
#ifndef SDXL_SERVER_SERVER_H
#define SDXL_SERVER_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <grpc/grpc.h>

#include "sdxl.h"
#include "server/auth.h"
#include "server/call.h"
#include "server/eta.h"
#include "server/metrics.h"
#include "server/options.h"
#include "server/queue.h"
#include "server/taskpool.h"

typedef enum server_state {
    SERVER_LOADING = 0, /* health NOT_SERVING; generation answered MODEL_NOT_READY */
    SERVER_SERVING = 1,
    SERVER_STOPPING = 2, /* health NOT_SERVING; generation answered SHUTTING_DOWN */
} server_state;

/* What GetStatus and the metrics show of the job the worker is running. */
typedef struct running_job {
    bool active;
    char request_id[REQUEST_ID_MAX];
    server_method method;
    sdxl_stage stage;
    int step, total_steps;
    double started_s;
    int width, height, steps, batch;
    double estimate_ms; /* eta when it started; 0 when unknown */
} running_job;

typedef struct health_watcher health_watcher;

typedef struct server {
    server_options opts;
    grpc_server *grpc;
    grpc_completion_queue *cq;
    bool grpc_started;
    void *registered[METHOD_COUNT];
    bool has_token;
    auth_token token;
    double started_s;

    _Atomic int state;           /* server_state */
    atomic_bool cancel_running;  /* shutdown with --on-shutdown cancel: stop the running job */
    atomic_bool load_failed;     /* the model did not load: exit non-zero */
    atomic_bool model_ready;     /* model and model_info are set */

    job_queue queue;
    eta_table eta;
    server_metrics metrics;
    taskpool *pool;

    /* Set by the worker before the state becomes SERVING; read-only after. */
    sdxl_model *model;
    sdxl_model_info model_info;
    pthread_t worker;
    bool worker_started;

    pthread_mutex_t running_lock;
    running_job running;

    pthread_mutex_t calls_lock;  /* the open calls and the health watchers */
    call *calls;
    health_watcher *watchers;
} server;

/* Monotonic seconds. */
double server_now_s(void);

server_state server_get_state(server *s);
/* Sets the state and tells every health watcher. */
void server_set_state(server *s, server_state state);

/* Runs sdxld with these options until SIGTERM/SIGINT; returns the process exit code. */
int server_run(const server_options *opts);

#endif /* SDXL_SERVER_SERVER_H */
