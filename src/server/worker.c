/*
 * worker.c — the engine's thread (see worker.h).
 */
#include "server/worker.h"

#include <stddef.h>
#include <string.h>

#include "base/log.h"
#include "server/handlers.h"
#include "server/server.h"

#define JOB_OF(node_ptr) ((job *)((char *)(node_ptr) - offsetof(job, node)))

static bool load_progress(void *user, uint64_t done, uint64_t total)
{
    server *s = user;
    return server_get_state(s) != SERVER_STOPPING;
}

typedef struct run_ctx {
    server *s;
    job *j;
} run_ctx;

static bool on_progress(void *user, const sdxl_progress *p)
{
    run_ctx *r = user;
    pthread_mutex_lock(&r->s->running_lock);
    r->s->running.stage = p->stage;
    r->s->running.step = p->step;
    r->s->running.total_steps = p->total_steps;
    pthread_mutex_unlock(&r->s->running_lock);
    if (p->stage == SDXL_STAGE_DENOISE)
        LOG_DEBUG("step %d/%d", p->step, p->total_steps);
    handlers_generate_progress(r->j, p->stage, p->step, p->total_steps);
    return !call_is_cancelled(r->j->call) && !atomic_load(&r->s->cancel_running);
}

static void on_image(void *user, int index, const sdxl_image *img, uint64_t seed)
{
    run_ctx *r = user;
    handlers_generate_image(r->j, index, img, seed);
}

typedef struct position_ctx {
    server *s;
    double wait_ms;
    bool known;
} position_ctx;

static void add_estimate(position_ctx *p, eta_shape shape)
{
    double ms;
    if (eta_estimate(&p->s->eta, shape, &ms))
        p->wait_ms += ms;
    else
        p->known = false;
}

/* The running job's remaining time, estimated from its shape's average. */
static void running_remaining(server *s, position_ctx *p)
{
    pthread_mutex_lock(&s->running_lock);
    running_job r = s->running;
    pthread_mutex_unlock(&s->running_lock);
    if (!r.active)
        return;
    double ms;
    if (!eta_estimate(&s->eta, (eta_shape){r.width, r.height, r.steps, r.batch}, &ms)) {
        p->known = false;
        return;
    }
    double left = ms - (server_now_s() - r.started_s) * 1000.0;
    p->wait_ms += left > 0 ? left : 0;
}

static void tell_position(queue_node *node, int position, void *ctx)
{
    position_ctx *p = ctx;
    job *j = JOB_OF(node);
    handlers_generate_queued(j, position, p->known ? p->wait_ms : -1);
    add_estimate(p, j->shape);
}

static void sum_queued(queue_node *node, int position, void *ctx)
{
    add_estimate(ctx, JOB_OF(node)->shape);
}

bool worker_estimate_wait_ms(server *s, double *ms)
{
    position_ctx p = {s, 0, true};
    running_remaining(s, &p);
    queue_foreach(&s->queue, sum_queued, &p);
    *ms = p.wait_ms;
    return p.known;
}

/* runs: jobs started so far (j->run_seq is the next). */
static void run_job(server *s, sdxl_session *session, job *j, uint64_t *runs)
{
    call *c = j->call;
    log_set_thread_request_id(c->request_id);
    server_error e;
    if (call_is_cancelled(c)) {
        server_reason reason = call_cancel_reason(c);
        server_error_set(&e, reason, "", "%s before the job started",
                         reason == REASON_DEADLINE_EXCEEDED ? "the deadline passed"
                                                            : "the client cancelled");
        handlers_generate_done(j, &e);
        return;
    }
    if (atomic_load(&s->cancel_running)) {
        server_error_set(&e, REASON_SHUTTING_DOWN, "retry on another server or after the restart",
                         "the server is shutting down");
        handlers_generate_done(j, &e);
        return;
    }
    j->run_seq = ++*runs;
    j->started_s = server_now_s();
    metrics_observe_queue_wait(&s->metrics, j->started_s - j->queued_s);
    pthread_mutex_lock(&s->running_lock);
    s->running = (running_job){
        .active = true, .method = c->method, .stage = SDXL_STAGE_TEXT, .started_s = j->started_s,
        .width = j->shape.width, .height = j->shape.height, .steps = j->shape.steps,
        .batch = j->shape.batch};
    memcpy(s->running.request_id, c->request_id, sizeof s->running.request_id);
    pthread_mutex_unlock(&s->running_lock);
    position_ctx positions = {s, 0, true};
    running_remaining(s, &positions);
    queue_foreach(&s->queue, tell_position, &positions);

    LOG_INFO("running: %d × %d, %d steps, strength %g, batch %d", j->req.width, j->req.height,
             j->req.steps, (double)j->req.strength, j->req.batch_size);
    run_ctx ctx = {s, j};
    sdxl_generate_params gp;
    sdxl_image input;
    handlers_generate_params(j, &gp, &input);
    gp.progress = on_progress;
    gp.progress_user = &ctx;
    gp.on_image = on_image;
    gp.on_image_user = &ctx;
    sdxl_result result;
    memset(&result, 0, sizeof result);
    sdxl_error err;
    sdxl_status st = sdxl_generate(session, &gp, &result, &err);

    pthread_mutex_lock(&s->running_lock);
    s->running.active = false;
    pthread_mutex_unlock(&s->running_lock);
    if (st == SDXL_OK) {
        j->timings = result.timings;
        eta_record(&s->eta, j->shape, result.timings.total_ms);
        metrics_observe_inference(&s->metrics, result.timings.total_ms / 1000.0);
        sdxl_result_free(&result);
        handlers_generate_done(j, NULL);
    } else if (st == SDXL_ERR_CANCELLED && call_is_cancelled(c)) {
        server_reason reason = call_cancel_reason(c);
        server_error_set(&e, reason, "", "%s: stopped at the next step",
                         reason == REASON_DEADLINE_EXCEEDED ? "the deadline passed"
                                                            : "the client cancelled");
        handlers_generate_done(j, &e);
    } else if (st == SDXL_ERR_CANCELLED && atomic_load(&s->cancel_running)) {
        server_error_set(&e, REASON_SHUTTING_DOWN, "retry on another server or after the restart",
                         "the server is shutting down: stopped at the next step");
        handlers_generate_done(j, &e);
    } else {
        server_error_from_engine(&e, &err);
        handlers_generate_done(j, &e);
    }
    log_set_thread_request_id(NULL);
}

static void *worker_main(void *arg)
{
    server *s = arg;
    double t0 = server_now_s();
    LOG_INFO("loading the model from %s", s->opts.model_dir);
    sdxl_model_params mp = sdxl_model_default_params();
    mp.backend = s->opts.backend;
    mp.dtype = s->opts.dtype;
    mp.vae_dtype = s->opts.vae_dtype;
    mp.threads = s->opts.threads;
    mp.memory_budget_bytes = s->opts.memory_budget_bytes;
    mp.load_progress = load_progress;
    mp.load_progress_user = s;
    sdxl_model *model = NULL;
    sdxl_session *session = NULL;
    sdxl_error err;
    if (sdxl_model_open(s->opts.model_dir, &mp, &model, &err) != SDXL_OK) {
        if (server_get_state(s) == SERVER_STOPPING) {
            LOG_INFO("model loading stopped: the server is shutting down");
            return NULL;
        }
        LOG_ERROR("the model did not load: %s", err.message);
        atomic_store(&s->load_failed, true);
        return NULL;
    }
    if (sdxl_session_open(model, &session, &err) != SDXL_OK) {
        LOG_ERROR("no engine session: %s", err.message);
        sdxl_model_close(model);
        atomic_store(&s->load_failed, true);
        return NULL;
    }
    sdxl_model_get_info(model, &s->model_info);
    s->model = model;
    atomic_store(&s->model_ready, true);
    LOG_INFO("model %s loaded in %.1f s: backend %s, device %s, %.1f MiB of weights",
             s->model_info.name, server_now_s() - t0, s->model_info.backend,
             s->model_info.device, (double)s->model_info.weight_bytes / (1 << 20));
    if (server_get_state(s) == SERVER_LOADING)
        server_set_state(s, SERVER_SERVING);

    queue_node *node;
    uint64_t runs = 0;
    while ((node = queue_pop(&s->queue)) != NULL)
        run_job(s, session, JOB_OF(node), &runs);
    sdxl_session_close(session);
    return NULL;
}

sdxl_status worker_start(server *s, sdxl_error *err)
{
    if (pthread_create(&s->worker, NULL, worker_main, s))
        return error_set(err, SDXL_ERR_INTERNAL, "could not start the engine's thread");
    s->worker_started = true;
    return SDXL_OK;
}

void worker_join(server *s)
{
    if (s->worker_started)
        pthread_join(s->worker, NULL);
    s->worker_started = false;
}
