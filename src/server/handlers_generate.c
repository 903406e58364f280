/*
 * handlers_generate.c — Img2Img, Img2ImgBatch, Img2ImgStream and Txt2Img: from the request's
 * bytes to a queued job (on the task pool), and from the engine's images to the answer
 * (encoded on the task pool). The worker (worker.c) runs the engine in between.
 */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "sdxl/v1/image_generation.pb-c.h"
#include "server/handlers.h"
#include "server/server.h"
#include "server/worker.h"
#include "server/wire.h"

static void job_free(void *p)
{
    job *j = p;
    if (!j)
        return;
    gen_request_free(&j->req);
    for (int i = 0; j->outputs && i < j->req.batch_size; i++) {
        image_free(&j->outputs[i].pixels);
        image_buffer_free(&j->outputs[i].encoded);
        image_buffer_free(&j->outputs[i].thumbnail);
    }
    free(j->outputs);
    pthread_mutex_destroy(&j->lock);
    free(j);
}

/* Answers c with error and drops the logic reference. */
static void fail_call(call *c, const server_error *error)
{
    call_finish(c, NULL, error);
    call_unref(c);
}

static void fail_cancelled(call *c)
{
    server_error e;
    server_reason reason = call_cancel_reason(c);
    server_error_set(&e, reason, reason == REASON_DEADLINE_EXCEEDED
                                     ? "set a longer deadline (GetStatus tells the expected wait)"
                                     : "",
                     reason == REASON_DEADLINE_EXCEEDED ? "the deadline passed before the answer"
                                                        : "the client cancelled the call");
    fail_call(c, &e);
}

static void fail_stopping(call *c)
{
    server_error e;
    server_error_set(&e, REASON_SHUTTING_DOWN, "retry on another server or after the restart",
                     "the server is shutting down");
    fail_call(c, &e);
}

static float finite_or_zero(float v)
{
    return v == v ? v : 0.0f;
}

void handlers_generate_params(const job *j, sdxl_generate_params *gp, sdxl_image *input)
{
    *gp = sdxl_default_generate_params();
    gp->prompt = j->req.prompt;
    gp->negative_prompt = j->req.negative_prompt[0] ? j->req.negative_prompt : NULL;
    if (j->req.has_input) {
        input->width = j->req.input.width;
        input->height = j->req.input.height;
        input->pixels = j->req.input.pixels;
        gp->init_image = input;
        gp->strength = j->req.strength;
    }
    gp->width = j->req.width;
    gp->height = j->req.height;
    gp->num_inference_steps = j->req.steps;
    gp->guidance_scale = finite_or_zero(j->req.guidance_scale);
    gp->seed = j->req.seed;
    gp->seed_set = j->req.seed_set;
    gp->batch_size = j->req.batch_size;
}

static void prepare_task(void *arg)
{
    call *c = arg;
    server *s = c->srv;
    double t0 = server_now_s();
    server_error e;
    grpc_slice slice = grpc_empty_slice();
    bool have_bytes = wire_payload_bytes(c->payload, &slice);
    if (!have_bytes) {
        server_error_set(&e, REASON_INVALID_REQUEST, "send exactly one request message",
                         "the call carried no request message");
        fail_call(c, &e);
        return;
    }
    job *j = calloc(1, sizeof *j);
    if (!j) {
        grpc_slice_unref(slice);
        server_error_set(&e, REASON_OUT_OF_MEMORY, "retry later", "out of memory");
        fail_call(c, &e);
        return;
    }
    pthread_mutex_init(&j->lock, NULL);
    j->call = c;
    request_limits lim = {
        .max_image_bytes = s->opts.max_image_bytes,
        .max_pixels = s->opts.max_pixels,
        .max_batch = s->opts.max_batch,
        .max_steps = s->opts.max_steps,
        .default_width = s->model_info.default_width,
        .default_height = s->model_info.default_height,
    };
    bool ok = request_parse(c->method, GRPC_SLICE_START_PTR(slice), GRPC_SLICE_LENGTH(slice),
                            &lim, &j->req, &e);
    grpc_slice_unref(slice);
    /* The poller is done with the payload: free the (possibly large) bytes now. */
    grpc_byte_buffer_destroy(c->payload);
    c->payload = NULL;
    pthread_mutex_lock(&c->lock);
    c->handler = j;
    c->handler_free = job_free;
    if (ok)
        memcpy(c->request_id, j->req.request_id, sizeof c->request_id);
    pthread_mutex_unlock(&c->lock);
    if (!ok) {
        fail_call(c, &e);
        return;
    }
    log_set_thread_request_id(c->request_id);

    sdxl_generate_params gp;
    sdxl_image input;
    handlers_generate_params(j, &gp, &input);
    sdxl_error err;
    if (sdxl_validate_params(s->model, &gp, &err) != SDXL_OK) {
        server_error_from_engine(&e, &err);
        fail_call(c, &e);
        log_set_thread_request_id(NULL);
        return;
    }
    j->outputs = calloc((size_t)j->req.batch_size, sizeof *j->outputs);
    if (!j->outputs) {
        server_error_set(&e, REASON_OUT_OF_MEMORY, "retry later", "out of memory");
        fail_call(c, &e);
        log_set_thread_request_id(NULL);
        return;
    }
    atomic_init(&j->pending, 1);
    j->shape = (eta_shape){j->req.width, j->req.height, j->req.steps, j->req.batch_size};
    j->decode_ms = (server_now_s() - t0) * 1000.0;

    if (call_is_cancelled(c)) {
        fail_cancelled(c);
    } else if (server_get_state(s) == SERVER_STOPPING && s->opts.shutdown == SHUTDOWN_CANCEL) {
        fail_stopping(c);
    } else {
        /* The stream's first event goes out before the push: once queued, the job belongs to
         * the worker, whose progress events must come after it. */
        if (c->method == METHOD_IMG2IMG_STREAM) {
            double wait_ms = -1;
            if (!worker_estimate_wait_ms(s, &wait_ms))
                wait_ms = -1;
            handlers_generate_queued(j, queue_length(&s->queue) + 1, wait_ms);
        }
        j->queued_s = server_now_s();
        int position = 0;
        sdxl_status st = queue_push(&s->queue, &j->node, &position, &err);
        if (st == SDXL_ERR_LIMIT) {
            server_error_set(&e, REASON_QUEUE_FULL, "retry later (GetStatus tells the estimated "
                             "wait), or start the server with a larger --queue-size",
                             "%s (--queue-size %d)", err.message, s->opts.queue_size);
            fail_call(c, &e);
        } else if (st != SDXL_OK) {
            fail_stopping(c);
        } else {
            LOG_DEBUG("queued at position %d (%d × %d, %d steps, batch %d)", position,
                      j->shape.width, j->shape.height, j->shape.steps, j->shape.batch);
        }
    }
    log_set_thread_request_id(NULL);
}

void handlers_generate_start(call *c)
{
    server *s = c->srv;
    server_error e;
    server_state state = server_get_state(s);
    if (state == SERVER_LOADING) {
        server_error_set(&e, REASON_MODEL_NOT_READY, "wait until grpc.health.v1 reports SERVING, "
                         "then retry", "the model is still loading");
        fail_call(c, &e);
        return;
    }
    if (state == SERVER_STOPPING) {
        fail_stopping(c);
        return;
    }
    sdxl_error err;
    if (taskpool_submit(s->pool, prepare_task, c, &err) != SDXL_OK) {
        server_error_set(&e, REASON_OUT_OF_MEMORY, "retry later", "%s", err.message);
        fail_call(c, &e);
    }
}

void handlers_generate_cancelled(call *c)
{
    pthread_mutex_lock(&c->lock);
    job *j = c->handler;
    pthread_mutex_unlock(&c->lock);
    /* Only a job still waiting is answered here; a running one stops at its next step. */
    if (j && queue_remove(&c->srv->queue, &j->node))
        fail_cancelled(c);
}

/* ---- answers ------------------------------------------------------------------------- */

static Sdxl__V1__ImageFormat wire_format(image_format f)
{
    return f == IMAGE_FORMAT_JPEG   ? SDXL__V1__IMAGE_FORMAT__IMAGE_FORMAT_JPEG
           : f == IMAGE_FORMAT_WEBP ? SDXL__V1__IMAGE_FORMAT__IMAGE_FORMAT_WEBP
                                    : SDXL__V1__IMAGE_FORMAT__IMAGE_FORMAT_PNG;
}

static void fill_image(const job *j, int index, Sdxl__V1__GeneratedImage *out)
{
    const job_output *o = &j->outputs[index];
    sdxl__v1__generated_image__init(out);
    out->index = index;
    out->seed = o->seed;
    out->data.data = o->encoded.data;
    out->data.len = o->encoded.size;
    out->format = wire_format(j->req.format);
    out->mime_type = (char *)image_format_mime_type(j->req.format);
    out->width = j->req.width;
    out->height = j->req.height;
    out->thumbnail.data = o->thumbnail.data;
    out->thumbnail.len = o->thumbnail.size;
}

/* The metadata, pointing into j (valid while j lives). */
typedef struct metadata_parts {
    Sdxl__V1__GenerationMetadata metadata;
    Sdxl__V1__AppliedParameters parameters;
    Sdxl__V1__Timings timings;
    uint64_t seeds[SDXL_MAX_BATCH];
} metadata_parts;

static void fill_metadata(job *j, metadata_parts *m)
{
    sdxl__v1__generation_metadata__init(&m->metadata);
    sdxl__v1__applied_parameters__init(&m->parameters);
    sdxl__v1__timings__init(&m->timings);
    gen_request *r = &j->req;
    for (int i = 0; i < r->batch_size && i < SDXL_MAX_BATCH; i++)
        m->seeds[i] = j->outputs[i].seed;
    Sdxl__V1__AppliedParameters *p = &m->parameters;
    p->prompt = r->prompt;
    p->negative_prompt = r->negative_prompt;
    p->num_inference_steps = r->steps;
    p->strength = r->strength;
    p->guidance_scale = r->guidance_scale;
    p->seed = m->seeds[0];
    p->width = r->width;
    p->height = r->height;
    p->batch_size = r->batch_size;
    p->output_format = wire_format(r->format);
    p->quality = r->quality;
    p->thumbnail = r->thumbnail;
    p->unet_steps = j->timings.unet_steps;
    p->input_width = r->has_input ? r->input.width : 0;
    p->input_height = r->has_input ? r->input.height : 0;
    Sdxl__V1__Timings *t = &m->timings;
    t->decode_ms = j->decode_ms;
    t->queue_wait_ms = (j->started_s - j->queued_s) * 1000.0;
    t->text_ms = j->timings.text_ms;
    t->vae_encode_ms = j->timings.vae_encode_ms;
    t->unet_ms = j->timings.unet_ms;
    t->vae_decode_ms = j->timings.vae_decode_ms;
    t->inference_ms = j->timings.total_ms;
    t->encode_ms = j->encode_ms;
    t->total_ms = (server_now_s() - j->call->arrived_s) * 1000.0;
    m->metadata.request_id = r->request_id;
    m->metadata.n_seeds = (size_t)r->batch_size;
    m->metadata.seeds = m->seeds;
    m->metadata.parameters = p;
    m->metadata.timings = t;
    m->metadata.queue_sequence = j->node.seq;
    m->metadata.run_sequence = j->run_seq;
}

/* Sends the answer (or the error) and drops the job's reference on its call. */
static void job_answer(job *j)
{
    call *c = j->call;
    log_set_thread_request_id(c->request_id);
    if (j->failed) {
        fail_call(c, &j->error);
        log_set_thread_request_id(NULL);
        return;
    }
    metadata_parts m;
    fill_metadata(j, &m);
    int n = j->req.batch_size;
    Sdxl__V1__GeneratedImage images[SDXL_MAX_BATCH];
    Sdxl__V1__GeneratedImage *image_ptrs[SDXL_MAX_BATCH];
    for (int i = 0; i < n; i++) {
        fill_image(j, i, &images[i]);
        image_ptrs[i] = &images[i];
    }
    if (c->method == METHOD_IMG2IMG) {
        Sdxl__V1__ImageResponse resp = SDXL__V1__IMAGE_RESPONSE__INIT;
        resp.image = &images[0];
        resp.metadata = &m.metadata;
        call_finish(c, &resp.base, NULL);
    } else if (c->method == METHOD_IMG2IMG_STREAM) {
        Sdxl__V1__GenerationEvent ev = SDXL__V1__GENERATION_EVENT__INIT;
        ev.event_case = SDXL__V1__GENERATION_EVENT__EVENT_DONE;
        ev.done = &m.metadata;
        call_finish(c, &ev.base, NULL);
    } else {
        Sdxl__V1__BatchResponse resp = SDXL__V1__BATCH_RESPONSE__INIT;
        resp.n_images = (size_t)n;
        resp.images = image_ptrs;
        resp.metadata = &m.metadata;
        call_finish(c, &resp.base, NULL);
    }
    metrics_record_images(&c->srv->metrics, n);
    for (int i = 0; i < n; i++) {
        image_buffer_free(&j->outputs[i].encoded);
        image_buffer_free(&j->outputs[i].thumbnail);
    }
    log_set_thread_request_id(NULL);
    call_unref(c);
}

static void answer_task(void *arg)
{
    job_answer(arg);
}

static void job_fail(job *j, const server_error *error)
{
    pthread_mutex_lock(&j->lock);
    if (!j->failed) {
        j->failed = true;
        j->error = *error;
    }
    pthread_mutex_unlock(&j->lock);
}

/* Drops one piece of pending work; the last one answers. */
static void job_release(job *j)
{
    if (atomic_fetch_sub(&j->pending, 1) == 1)
        job_answer(j);
}

typedef struct encode_arg {
    job *j;
    int index;
} encode_arg;

static void encode_task(void *p)
{
    encode_arg *a = p;
    job *j = a->j;
    int index = a->index;
    free(a);
    call *c = j->call;
    log_set_thread_request_id(c->request_id);
    double t0 = server_now_s();
    job_output *o = &j->outputs[index];
    image_encode_params ep = image_encode_default_params();
    ep.format = j->req.format;
    ep.quality = j->req.quality;
    sdxl_error err;
    sdxl_status st = image_encode(&o->pixels, &ep, &o->encoded, &err);
    if (st == SDXL_OK && j->req.thumbnail)
        st = image_encode_thumbnail(&o->pixels, j->req.quality, &o->thumbnail, &err);
    image_free(&o->pixels);
    pthread_mutex_lock(&j->lock);
    j->encode_ms += (server_now_s() - t0) * 1000.0;
    pthread_mutex_unlock(&j->lock);
    if (st != SDXL_OK) {
        server_error e;
        server_error_set(&e, st == SDXL_ERR_OUT_OF_MEMORY ? REASON_OUT_OF_MEMORY : REASON_INTERNAL,
                         "retry; if it persists, report it with the server's log",
                         "encoding image %d: %s", index, err.message);
        job_fail(j, &e);
    } else if (c->method == METHOD_IMG2IMG_STREAM && !call_is_cancelled(c)) {
        Sdxl__V1__GeneratedImage img;
        fill_image(j, index, &img);
        Sdxl__V1__GenerationEvent ev = SDXL__V1__GENERATION_EVENT__INIT;
        ev.event_case = SDXL__V1__GENERATION_EVENT__EVENT_IMAGE;
        ev.image = &img;
        call_send(c, &ev.base, OUTBOX_PLAIN, 0);
        /* Sent: the final event carries only the metadata. */
        image_buffer_free(&o->encoded);
        image_buffer_free(&o->thumbnail);
    }
    log_set_thread_request_id(NULL);
    job_release(j);
}

void handlers_generate_image(job *j, int index, const sdxl_image *img, uint64_t seed)
{
    server_error e;
    if (index < 0 || index >= j->req.batch_size || j->outputs[index].made) {
        server_error_set(&e, REASON_INTERNAL, "report it with the server's log",
                         "the engine returned image %d of a batch of %d twice or out of range",
                         index, j->req.batch_size);
        job_fail(j, &e);
        return;
    }
    job_output *o = &j->outputs[index];
    o->made = true;
    o->seed = seed;
    sdxl_error err;
    size_t bytes = (size_t)img->width * (size_t)img->height * 3;
    if (image_alloc(&o->pixels, img->width, img->height, &err) != SDXL_OK) {
        server_error_set(&e, REASON_OUT_OF_MEMORY, "retry later", "%s", err.message);
        job_fail(j, &e);
        return;
    }
    memcpy(o->pixels.pixels, img->pixels, bytes);
    encode_arg *a = malloc(sizeof *a);
    if (a) {
        a->j = j;
        a->index = index;
    }
    atomic_fetch_add(&j->pending, 1);
    if (!a || taskpool_submit(j->call->srv->pool, encode_task, a, &err) != SDXL_OK) {
        free(a);
        atomic_fetch_sub(&j->pending, 1);
        image_free(&o->pixels);
        server_error_set(&e, REASON_OUT_OF_MEMORY, "retry later", "out of memory queueing the "
                         "encoding of image %d", index);
        job_fail(j, &e);
    }
}

void handlers_generate_done(job *j, const server_error *error)
{
    if (error)
        job_fail(j, error);
    if (!error) {
        for (int i = 0; i < j->req.batch_size; i++)
            if (!j->outputs[i].made) {
                server_error e;
                server_error_set(&e, REASON_INTERNAL, "report it with the server's log",
                                 "the engine finished without image %d of %d", i,
                                 j->req.batch_size);
                job_fail(j, &e);
                break;
            }
    }
    if (atomic_fetch_sub(&j->pending, 1) != 1)
        return;
    /* The last encode already finished: answer from the pool, not the engine's thread. */
    sdxl_error err;
    if (taskpool_submit(j->call->srv->pool, answer_task, j, &err) != SDXL_OK)
        job_answer(j);
}

void handlers_generate_queued(job *j, int position, double wait_ms)
{
    if (j->call->method != METHOD_IMG2IMG_STREAM)
        return;
    Sdxl__V1__QueuedEvent q = SDXL__V1__QUEUED_EVENT__INIT;
    q.request_id = j->req.request_id;
    q.position = position;
    q.estimated_wait_ms = wait_ms;
    Sdxl__V1__GenerationEvent ev = SDXL__V1__GENERATION_EVENT__INIT;
    ev.event_case = SDXL__V1__GENERATION_EVENT__EVENT_QUEUED;
    ev.queued = &q;
    call_send(j->call, &ev.base, OUTBOX_QUEUED, 0);
}

void handlers_generate_progress(job *j, sdxl_stage stage, int step, int total_steps)
{
    if (j->call->method != METHOD_IMG2IMG_STREAM)
        return;
    Sdxl__V1__ProgressEvent p = SDXL__V1__PROGRESS_EVENT__INIT;
    p.stage = handlers_wire_stage(stage);
    p.step = step;
    p.total_steps = total_steps;
    Sdxl__V1__GenerationEvent ev = SDXL__V1__GENERATION_EVENT__INIT;
    ev.event_case = SDXL__V1__GENERATION_EVENT__EVENT_PROGRESS;
    ev.progress = &p;
    /* Keyed by stage: a slow reader still gets every stage's last step. */
    call_send(j->call, &ev.base, OUTBOX_PROGRESS, (int)stage);
}
