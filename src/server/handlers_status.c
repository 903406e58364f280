/*
 * handlers_status.c — GetStatus: queue length, the running job and its step, the estimated wait
 * for a new job, measured processing times per job shape, counters, model and memory.
 * Answered on the poller: it only reads state under short locks.
 */
#include <string.h>

#include "sdxl/v1/image_generation.pb-c.h"
#include "server/handlers.h"
#include "server/server.h"
#include "server/worker.h"

Sdxl__V1__Stage handlers_wire_stage(sdxl_stage stage)
{
    switch (stage) {
    case SDXL_STAGE_TEXT:
        return SDXL__V1__STAGE__STAGE_TEXT;
    case SDXL_STAGE_VAE_ENCODE:
        return SDXL__V1__STAGE__STAGE_VAE_ENCODE;
    case SDXL_STAGE_DENOISE:
        return SDXL__V1__STAGE__STAGE_DENOISE;
    case SDXL_STAGE_VAE_DECODE:
        return SDXL__V1__STAGE__STAGE_VAE_DECODE;
    }
    return SDXL__V1__STAGE__STAGE_QUEUED;
}

void handlers_status(call *c)
{
    server *s = c->srv;
    Sdxl__V1__StatusResponse resp = SDXL__V1__STATUS_RESPONSE__INIT;
    server_state state = server_get_state(s);
    resp.ready = state == SERVER_SERVING;
    resp.queue_length = queue_length(&s->queue);
    resp.queue_capacity = s->opts.queue_size;

    pthread_mutex_lock(&s->running_lock);
    running_job r = s->running;
    pthread_mutex_unlock(&s->running_lock);
    Sdxl__V1__RunningJob running = SDXL__V1__RUNNING_JOB__INIT;
    if (r.active) {
        running.request_id = r.request_id;
        running.method = (char *)method_name(r.method);
        running.stage = handlers_wire_stage(r.stage);
        running.step = r.step;
        running.total_steps = r.total_steps;
        running.elapsed_ms = (server_now_s() - r.started_s) * 1000.0;
        running.width = r.width;
        running.height = r.height;
        running.num_inference_steps = r.steps;
        running.batch_size = r.batch;
        resp.running = &running;
    }
    double wait_ms;
    resp.estimated_wait_ms = worker_estimate_wait_ms(s, &wait_ms) ? wait_ms : -1;

    eta_entry entries[ETA_MAX_SHAPES];
    int n = eta_snapshot(&s->eta, entries, ETA_MAX_SHAPES);
    Sdxl__V1__ProcessingEstimate estimates[ETA_MAX_SHAPES];
    Sdxl__V1__ProcessingEstimate *estimate_ptrs[ETA_MAX_SHAPES];
    for (int i = 0; i < n; i++) {
        sdxl__v1__processing_estimate__init(&estimates[i]);
        estimates[i].width = entries[i].shape.width;
        estimates[i].height = entries[i].shape.height;
        estimates[i].num_inference_steps = entries[i].shape.steps;
        estimates[i].batch_size = entries[i].shape.batch;
        estimates[i].average_ms = entries[i].average_ms;
        estimates[i].samples = entries[i].samples;
        estimate_ptrs[i] = &estimates[i];
    }
    resp.n_estimates = (size_t)n;
    resp.estimates = estimate_ptrs;
    metrics_generation_totals(&s->metrics, &resp.requests_total, &resp.requests_failed,
                              &resp.images_generated);

    Sdxl__V1__ModelInfo model = SDXL__V1__MODEL_INFO__INIT;
    if (atomic_load(&s->model_ready)) {
        model.name = (char *)s->model_info.name;
        model.backend = (char *)s->model_info.backend;
        model.device = (char *)s->model_info.device;
        model.weight_bytes = s->model_info.weight_bytes;
        model.default_width = s->model_info.default_width;
        model.default_height = s->model_info.default_height;
        resp.model = &model;
    }
    resp.resident_memory_bytes = metrics_resident_bytes();
    resp.uptime_s = server_now_s() - s->started_s;
    call_finish(c, &resp.base, NULL);
    call_unref(c);
}
