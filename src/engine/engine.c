/*
 * engine.c — the public engine API (include/sdxl.h) over the pipeline (pipeline.h): handles,
 * defaults, argument checks, the memory budget, seeds, one request at a time per model (the
 * model's run_lock), and freeing results.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "engine/pipeline.h"
#include "sdxl.h"

/* LRU prompt cache entries by default: a server sees a few prompts over and over (about 320 KB
 * of backend memory each for sdxl-turbo in fp16, 640 KB in fp32). */
#define DEFAULT_PROMPT_CACHE_ENTRIES 16

static sdxl_status missing(sdxl_error *err, const char *what)
{
    return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "%s is NULL", what);
}

sdxl_model_params sdxl_model_default_params(void)
{
    sdxl_model_params p;
    memset(&p, 0, sizeof p);
    p.backend = SDXL_BACKEND_AUTO;
    p.dtype = SDXL_DTYPE_AUTO;
    p.prompt_cache_entries = DEFAULT_PROMPT_CACHE_ENTRIES;
    return p;
}

/* Index of name in a NULL-terminated list, or -1. */
static int name_index(const char *name, const char *const *names)
{
    for (int i = 0; name && names[i]; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

bool sdxl_backend_parse(const char *name, sdxl_backend_kind *out)
{
    static const char *const names[] = {"auto", "cpu", "cuda", NULL};
    static const sdxl_backend_kind kinds[] = {SDXL_BACKEND_AUTO, SDXL_BACKEND_CPU,
                                              SDXL_BACKEND_CUDA};
    int i = name_index(name, names);
    if (i < 0)
        return false;
    *out = kinds[i];
    return true;
}

bool sdxl_dtype_parse(const char *name, sdxl_compute_dtype *out)
{
    static const char *const names[] = {"auto", "fp32", "fp16", "bf16", NULL};
    static const sdxl_compute_dtype types[] = {SDXL_DTYPE_AUTO, SDXL_DTYPE_FP32,
                                               SDXL_DTYPE_FP16, SDXL_DTYPE_BF16};
    int i = name_index(name, names);
    if (i < 0)
        return false;
    *out = types[i];
    return true;
}

sdxl_status sdxl_model_open(const char *dir, const sdxl_model_params *params, sdxl_model **out,
                            sdxl_error *err)
{
    error_clear(err);
    if (!out)
        return missing(err, "sdxl_model_open: out");
    *out = NULL;
    if (!dir)
        return missing(err, "sdxl_model_open: dir");
    sdxl_model_params defaults = sdxl_model_default_params();
    sdxl_model *m = malloc(sizeof *m);
    if (!m)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "no memory for a model");
    sdxl_status st = pipeline_model_load(dir, params ? params : &defaults, m, err);
    if (st == SDXL_OK && pthread_mutex_init(&m->run_lock, NULL) != 0) {
        pipeline_model_unload(m);
        st = error_set(err, SDXL_ERR_OUT_OF_MEMORY, "no memory for a model's lock");
    }
    if (st != SDXL_OK) {
        free(m);
        return st;
    }
    *out = m;
    return SDXL_OK;
}

void sdxl_model_close(sdxl_model *model)
{
    if (!model)
        return;
    pipeline_model_unload(model);
    pthread_mutex_destroy(&model->run_lock);
    free(model);
}

void sdxl_model_get_info(const sdxl_model *model, sdxl_model_info *out)
{
    *out = (sdxl_model_info){
        .name = model->name,
        .backend = backend_name(model->be),
        .device = model->device,
        .weight_bytes = model->weight_bytes,
        .default_width = model->limits.default_width,
        .default_height = model->limits.default_height,
        .vae_scale_factor = model->limits.vae_scale,
    };
}

sdxl_status sdxl_session_open(sdxl_model *model, sdxl_session **out, sdxl_error *err)
{
    error_clear(err);
    if (!out)
        return missing(err, "sdxl_session_open: out");
    *out = NULL;
    if (!model)
        return missing(err, "sdxl_session_open: model");
    sdxl_session *s = calloc(1, sizeof *s);
    if (!s)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "no memory for a session");
    s->model = model;
    sdxl_status st = scheduler_init(&s->sched, &model->scheduler_cfg, err);
    if (st != SDXL_OK) {
        free(s);
        return error_prefix(err, st, "%s/scheduler", model->dir);
    }
    *out = s;
    return SDXL_OK;
}

void sdxl_session_close(sdxl_session *session)
{
    if (!session)
        return;
    pthread_mutex_t *lock = &session->model->run_lock;
    pthread_mutex_lock(lock);
    graph_cache_clear(&session->graphs);
    backend_buffer_free(session->model->be, session->buffer);
    pthread_mutex_unlock(lock);
    scheduler_free(&session->sched);
    free(session);
}

sdxl_generate_params sdxl_default_generate_params(void)
{
    return pipeline_default_params();
}

/* Refuses, before anything runs, a request whose activations would exceed the budget. */
static sdxl_status check_budget(const sdxl_model *m, const pipeline_shape *sh, size_t bytes,
                                sdxl_error *err)
{
    uint64_t budget = m->memory_budget;
    if (budget == 0 || bytes <= budget)
        return SDXL_OK;
    return error_set(err, SDXL_ERR_OUT_OF_MEMORY,
                     "%s %dx%d, batch %d%s needs %.1f MiB of activation memory, over the "
                     "budget of %.1f MiB; ask for a smaller size or batch (or raise the budget)",
                     sh->img2img ? "img2img" : "txt2img", sh->width, sh->height, sh->batch,
                     sh->cfg ? " with guidance" : "", (double)bytes / (1 << 20),
                     (double)budget / (1 << 20));
}

/* Checks params and plans the run: the request and its activation bytes. */
static sdxl_status prepare(const sdxl_model *m, const sdxl_generate_params *params,
                           pipeline_request *req, size_t *bytes, sdxl_error *err)
{
    sdxl_status st = pipeline_request_make(&m->limits, params, req, err);
    if (st == SDXL_OK)
        st = pipeline_plan(m, &req->shape, bytes, err);
    if (st == SDXL_OK)
        st = check_budget(m, &req->shape, *bytes, err);
    return st;
}

sdxl_status sdxl_validate_params(const sdxl_model *model, const sdxl_generate_params *params,
                                 sdxl_error *err)
{
    error_clear(err);
    if (!model || !params)
        return missing(err, model ? "sdxl_validate_params: params" : "sdxl_validate_params: model");
    pipeline_request req;
    size_t bytes;
    return prepare(model, params, &req, &bytes, err);
}

/* A seed for a request that did not set one: from the OS, else the clock. */
static uint64_t random_seed(void)
{
    uint64_t seed;
    if (getrandom(&seed, sizeof seed, 0) == (ssize_t)sizeof seed)
        return seed;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec;
}

sdxl_status sdxl_generate(sdxl_session *session, const sdxl_generate_params *params,
                          sdxl_result *out, sdxl_error *err)
{
    error_clear(err);
    if (!out)
        return missing(err, "sdxl_generate: out");
    memset(out, 0, sizeof *out);
    if (!session || !params)
        return missing(err, session ? "sdxl_generate: params" : "sdxl_generate: session");
    pipeline_request req;
    size_t bytes;
    sdxl_status st = prepare(session->model, params, &req, &bytes, err);
    if (st != SDXL_OK)
        return st;
    if (!req.seed_set) {
        req.seed = random_seed();
        req.seed_set = true;
    }
    pthread_mutex_lock(&session->model->run_lock);
    st = pipeline_run(session, &req, bytes, out, err);
    pthread_mutex_unlock(&session->model->run_lock);
    if (st != SDXL_OK)
        sdxl_result_free(out);
    return st;
}

void sdxl_result_free(sdxl_result *result)
{
    if (!result)
        return;
    for (int i = 0; result->images && i < result->n_images; i++)
        free(result->images[i].pixels);
    free(result->images);
    free(result->seeds);
    memset(result, 0, sizeof *result);
}

/* Guidance doubles the UNet's rows and this call does not know whether a request will use it,
 * so the estimate is for a run with guidance: an upper bound for either. */
sdxl_status sdxl_estimate_memory(const sdxl_model *model, int width, int height, int batch_size,
                                 bool img2img, uint64_t *bytes, sdxl_error *err)
{
    error_clear(err);
    if (!model || !bytes)
        return missing(err, model ? "sdxl_estimate_memory: bytes" : "sdxl_estimate_memory: model");
    const pipeline_limits *lim = &model->limits;
    const int sides[2] = {width, height};
    const char *names[2] = {"width", "height"};
    for (int i = 0; i < 2; i++)
        if (sides[i] < lim->vae_scale || sides[i] > SDXL_MAX_SIDE || sides[i] % lim->vae_scale)
            return error_field(err,
                               error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                                         "%s %d: must be a multiple of %d from %d to %d",
                                         names[i], sides[i], lim->vae_scale, lim->vae_scale,
                                         SDXL_MAX_SIDE),
                               names[i]);
    if (batch_size < 1 || batch_size > SDXL_MAX_BATCH)
        return error_field(err,
                           error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                                     "batch_size %d: must be from 1 to %d", batch_size,
                                     SDXL_MAX_BATCH),
                           "batch_size");
    pipeline_shape sh = {.width = width, .height = height, .batch = batch_size,
                         .img2img = img2img, .cfg = true};
    size_t planned;
    sdxl_status st = pipeline_plan(model, &sh, &planned, err);
    *bytes = planned;
    return st;
}
