/*
 * pipeline.c — one img2img or txt2img request, stage by stage (see pipeline.h; the arena's
 * contents per stage are in pipeline_layout.h).
 *
 * Images of a batch are VAE-encoded once (they share the input picture) and decoded one at a
 * time: a batch row's bits do not depend on the batch (backend.h), and the decoder's
 * activations are the largest of the whole pipeline.
 */
#include "engine/pipeline.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/image_processor.h"
#include "engine/pipeline_layout.h"
#include "engine/rng.h"

/* ---- host-side helpers ------------------------------------------------------------------ */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* [C, h, w] (torch's per-image layout) to [h, w, C] (the backend's), and back. */
static void nchw_to_nhwc(const float *src, float *dst, size_t c, size_t hw)
{
    for (size_t ch = 0; ch < c; ch++)
        for (size_t p = 0; p < hw; p++)
            dst[p * c + ch] = src[ch * hw + p];
}

static void nhwc_to_nchw(const float *src, float *dst, size_t c, size_t hw)
{
    for (size_t p = 0; p < hw; p++)
        for (size_t ch = 0; ch < c; ch++)
            dst[ch * hw + p] = src[p * c + ch];
}

/* Everything one run works with. Host arrays are allocated before the first stage: nothing is
 * allocated inside the denoising loop. */
typedef struct run {
    sdxl_session *s;
    const sdxl_model *m;
    const pipeline_request *req;
    sdxl_result *out;
    arena *a;
    size_t channels, hw, n; /* latent channels, h·w, values per image */
    int batch, rows;
    size_t begin;           /* first timestep index */
    int total_steps;
    rng_generator *gens;    /* [batch]: image i's generator, seeded seed + i */
    float *latents;         /* [batch, C, h, w] */
    float *rows_nhwc;       /* [rows, h, w, C] the UNet's input, then its output; also the
                               staging area of one image's latents and of the time ids */
    float *a_buf, *b_buf;   /* [C, h, w] each: per-image scratch */
    float *pixels;          /* [max(H·W·3)] the preprocessed or decoded image */
    text_tensors text;
} run;

static sdxl_status report(const run *r, sdxl_stage stage, int step, sdxl_error *err)
{
    if (!r->req->progress)
        return SDXL_OK;
    sdxl_progress p = {.stage = stage, .step = step, .total_steps = r->total_steps};
    if (!r->req->progress(r->req->progress_user, &p))
        return error_set(err, SDXL_ERR_CANCELLED, "cancelled by the progress callback (%s)",
                         stage == SDXL_STAGE_DENOISE ? "denoising" : "between stages");
    return SDXL_OK;
}

static float *latents_of(const run *r, int index)
{
    return r->latents + (size_t)index * r->n;
}

/* One image's latents [C, h, w] into t [1, h, w, C] on the VAE's backend, and back. */
static sdxl_status write_nchw(const run *r, const float *src, tensor *t, sdxl_error *err)
{
    nchw_to_nhwc(src, r->rows_nhwc, r->channels, r->hw);
    return backend_tensor_write(r->m->vae_be, t, DTYPE_F32, r->rows_nhwc, r->n, err);
}

static sdxl_status read_nchw(const run *r, const tensor *t, float *dst, sdxl_error *err)
{
    SDXL_TRY(backend_tensor_read(r->m->vae_be, t, DTYPE_F32, r->rows_nhwc, r->n, err));
    nhwc_to_nchw(r->rows_nhwc, dst, r->channels, r->hw);
    return SDXL_OK;
}

/* ---- stages ------------------------------------------------------------------------------ */

static sdxl_status stage_text(run *r, sdxl_error *err)
{
    SDXL_TRY(report(r, SDXL_STAGE_TEXT, 0, err));
    double t0 = now_ms();
    const pipeline_shape *sh = &r->req->shape;
    SDXL_TRY(pipeline_text_alloc(r->m, &r->s->graphs, r->a, sh, r->req->prompt,
                                 r->req->negative_prompt, &r->text, err));
    /* The negative rows' time ids are the same (negative_original_size = original_size). */
    float ids[PIPELINE_TIME_IDS] = {(float)sh->height, (float)sh->width, 0.0f, 0.0f,
                                    (float)sh->height, (float)sh->width};
    for (int row = 0; row < r->rows; row++)
        memcpy(r->rows_nhwc + (size_t)row * PIPELINE_TIME_IDS, ids, sizeof ids);
    SDXL_TRY(backend_tensor_write(r->m->be, &r->text.time_ids, DTYPE_F32, r->rows_nhwc,
                             (size_t)r->rows * PIPELINE_TIME_IDS, err));
    r->out->timings.text_ms = now_ms() - t0;
    return SDXL_OK;
}

/* img2img: image latents (mean + std · ε) × scaling factor, then add_noise at the first
 * timestep. Each image draws ε then its noise from its own generator. */
static sdxl_status stage_encode(run *r, sdxl_error *err)
{
    SDXL_TRY(report(r, SDXL_STAGE_VAE_ENCODE, 0, err));
    double t0 = now_ms();
    const sdxl_model *m = r->m;
    const pipeline_shape *sh = &r->req->shape;
    arena_mark mark = arena_get_mark(r->a);
    encode_tensors e;
    SDXL_TRY(pipeline_encode_alloc(m, r->a, sh, &e, err));
    const sdxl_image *in = r->req->init_image;
    image picture = {.width = in->width, .height = in->height, .pixels = in->pixels};
    SDXL_TRY(image_processor_preprocess(&picture, sh->width, sh->height, r->pixels, err));
    SDXL_TRY(backend_tensor_write(m->vae_be, &e.image, DTYPE_F32, r->pixels,
                             (size_t)sh->width * sh->height * 3, err));
    SDXL_TRY(vae_encode(m->vae, m->vae_be, r->a, &m->tiling, &e.image, &e.mean, &e.logvar, err));
    float scaling = m->limits.scaling_factor;
    for (int i = 0; i < r->batch; i++) {
        float *x = latents_of(r, i);
        rng_randn_f32(&r->gens[i], r->a_buf, r->n);
        SDXL_TRY(write_nchw(r, r->a_buf, &e.noise, err));
        SDXL_TRY(vae_sample(m->vae_be, &e.mean, &e.logvar, &e.noise, &e.sample, err));
        SDXL_TRY(read_nchw(r, &e.sample, x, err));
        for (size_t j = 0; j < r->n; j++)
            x[j] = scaling * x[j];
        rng_randn_f32(&r->gens[i], r->a_buf, r->n);
        scheduler_add_noise(&r->s->sched, r->begin, x, r->a_buf, x, r->n);
    }
    arena_reset_to(r->a, mark);
    r->out->timings.vae_encode_ms = now_ms() - t0;
    return SDXL_OK;
}

/* txt2img: randn · init_noise_sigma. */
static void initial_noise(run *r)
{
    for (int i = 0; i < r->batch; i++) {
        float *x = latents_of(r, i);
        rng_randn_f32(&r->gens[i], x, r->n);
        scheduler_scale_initial_noise(&r->s->sched, x, x, r->n);
    }
}

/* One timestep: the UNet on every row, guidance, and each image's scheduler step. */
static sdxl_status denoise_step(run *r, denoise_tensors *d, size_t index, sdxl_error *err)
{
    const sdxl_model *m = r->m;
    scheduler_step st;
    scheduler_step_at(&r->s->sched, index, &st);
    /* diffusers scales torch.cat([latents] * 2): the negative rows b and the positive rows
     * batch + b hold the same input. */
    for (int row = 0; row < r->rows; row++) {
        scheduler_scale_input(&st, latents_of(r, row % r->batch), r->a_buf, r->n);
        nchw_to_nhwc(r->a_buf, r->rows_nhwc + (size_t)row * r->n, r->channels, r->hw);
    }
    SDXL_TRY(backend_tensor_write(m->be, &d->latents, DTYPE_F32, r->rows_nhwc,
                             (size_t)r->rows * r->n, err));
    SDXL_TRY(backend_tensor_write(m->be, &d->timestep, DTYPE_F32, &st.timestep, 1, err));
    SDXL_TRY(unet_graph_forward(&r->s->graphs, m->unet, m->be, r->a, &d->latents, &d->timestep,
                                &r->text.embeds.embeds, &r->text.embeds.pooled,
                                &r->text.time_ids, &d->pred, err));
    SDXL_TRY(backend_tensor_read(m->be, &d->pred, DTYPE_F32, r->rows_nhwc, (size_t)r->rows * r->n,
                            err));
    bool cfg = r->req->shape.cfg;
    float g = r->req->guidance_scale;
    for (int b = 0; b < r->batch; b++) {
        float *eps = r->a_buf, *noise = r->b_buf;
        int text_row = cfg ? r->batch + b : b;
        nhwc_to_nchw(r->rows_nhwc + (size_t)text_row * r->n, eps, r->channels, r->hw);
        if (cfg) {
            float *uncond = noise; /* free until this image's draw below */
            nhwc_to_nchw(r->rows_nhwc + (size_t)b * r->n, uncond, r->channels, r->hw);
            /* noise_pred_uncond + guidance_scale * (noise_pred_text - noise_pred_uncond) */
            for (size_t j = 0; j < r->n; j++)
                eps[j] = uncond[j] + g * (eps[j] - uncond[j]);
        }
        if (st.draws_noise)
            rng_randn_f32(&r->gens[b], noise, r->n);
        scheduler_step_apply(&st, latents_of(r, b), eps, noise, latents_of(r, b), NULL, r->n);
    }
    return SDXL_OK;
}

static void show_latents(const run *r, int step)
{
    if (r->req->on_latents)
        r->req->on_latents(r->req->on_latents_user, step, r->latents, (size_t)r->batch * r->n);
}

static sdxl_status stage_denoise(run *r, sdxl_error *err)
{
    double t0 = now_ms();
    denoise_tensors d;
    SDXL_TRY(pipeline_denoise_alloc(r->m, r->a, &r->req->shape, &d, err));
    show_latents(r, 0);
    for (size_t i = r->begin; i < r->s->sched.count; i++) {
        SDXL_TRY(denoise_step(r, &d, i, err));
        int done = ++r->out->timings.unet_steps;
        show_latents(r, done);
        SDXL_TRY(report(r, SDXL_STAGE_DENOISE, done, err));
    }
    r->out->timings.unet_ms = now_ms() - t0;
    return SDXL_OK;
}

/* Each image alone: latents ÷ scaling factor → decoder → uint8, handed to on_image at once. */
static sdxl_status stage_decode(run *r, sdxl_error *err)
{
    SDXL_TRY(report(r, SDXL_STAGE_VAE_DECODE, 0, err));
    double t0 = now_ms();
    const sdxl_model *m = r->m;
    const pipeline_shape *sh = &r->req->shape;
    arena_reset_to(r->a, 0); /* the text conditioning is no longer needed */
    decode_tensors z;
    SDXL_TRY(pipeline_decode_alloc(m, r->a, sh, &z, err));
    float scaling = m->limits.scaling_factor;
    for (int i = 0; i < r->batch; i++) {
        const float *x = latents_of(r, i);
        for (size_t j = 0; j < r->n; j++)
            r->a_buf[j] = x[j] / scaling;
        SDXL_TRY(write_nchw(r, r->a_buf, &z.latents, err));
        SDXL_TRY(vae_decode(m->vae, m->vae_be, r->a, &m->tiling, &z.latents, &z.image, err));
        size_t values = (size_t)sh->width * sh->height * 3;
        SDXL_TRY(backend_tensor_read(m->vae_be, &z.image, DTYPE_F32, r->pixels, values, err));
        image decoded;
        SDXL_TRY(image_processor_postprocess(r->pixels, sh->width, sh->height, &decoded, err));
        r->out->images[i] = (sdxl_image){
            .width = decoded.width, .height = decoded.height, .pixels = decoded.pixels};
        if (r->req->on_image)
            r->req->on_image(r->req->on_image_user, i, &r->out->images[i], r->out->seeds[i]);
    }
    r->out->timings.vae_decode_ms = now_ms() - t0;
    return SDXL_OK;
}

/* ---- the run ----------------------------------------------------------------------------- */

/* Makes the session's arena at least bytes large (a new, larger block when it is not). */
static sdxl_status session_reserve(sdxl_session *s, size_t bytes, sdxl_error *err)
{
    if (s->buffer && bytes <= s->capacity)
        return SDXL_OK;
    backend *be = s->model->be;
    graph_cache_clear(&s->graphs, be); /* they replay the old block's addresses */
    backend_buffer_free(be, s->buffer);
    s->buffer = NULL;
    s->capacity = 0;
    SDXL_TRY(backend_buffer_alloc(be, bytes, &s->buffer, err));
    s->capacity = bytes;
    arena_init_borrowed(&s->arena, s->buffer, bytes);
    return SDXL_OK;
}

static sdxl_status run_alloc(run *r, sdxl_error *err)
{
    const pipeline_shape *sh = &r->req->shape;
    size_t pixels = (size_t)sh->width * sh->height * 3;
    size_t rows_floats = (size_t)r->rows * r->n;
    if (rows_floats < (size_t)r->rows * PIPELINE_TIME_IDS)
        rows_floats = (size_t)r->rows * PIPELINE_TIME_IDS;
    r->gens = malloc((size_t)r->batch * sizeof *r->gens);
    r->latents = malloc((size_t)r->batch * r->n * sizeof(float));
    r->rows_nhwc = malloc(rows_floats * sizeof(float));
    r->a_buf = malloc(r->n * sizeof(float));
    r->b_buf = malloc(r->n * sizeof(float));
    r->pixels = malloc(pixels * sizeof(float));
    r->out->images = calloc((size_t)r->batch, sizeof *r->out->images);
    r->out->seeds = malloc((size_t)r->batch * sizeof *r->out->seeds);
    if (!r->gens || !r->latents || !r->rows_nhwc || !r->a_buf || !r->b_buf || !r->pixels ||
        !r->out->images || !r->out->seeds)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY,
                         "no host memory for a %dx%d batch of %d", sh->width, sh->height,
                         r->batch);
    r->out->n_images = r->batch;
    return SDXL_OK;
}

static void run_free(run *r)
{
    free(r->gens);
    free(r->latents);
    free(r->rows_nhwc);
    free(r->a_buf);
    free(r->b_buf);
    free(r->pixels);
}

static sdxl_status run_stages(run *r, size_t bytes, sdxl_error *err)
{
    const pipeline_request *req = r->req;
    SDXL_TRY(run_alloc(r, err));
    SDXL_TRY(session_reserve(r->s, bytes, err));
    SDXL_TRY(scheduler_set_timesteps(&r->s->sched, req->steps, err));
    r->begin = req->shape.img2img ? scheduler_img2img_begin(req->steps, req->strength) : 0;
    if (r->begin >= r->s->sched.count)
        return error_set(err, SDXL_ERR_INTERNAL, "img2img with %d steps at strength %g runs no "
                         "step (validation should have refused it)", req->steps, req->strength);
    r->total_steps = (int)(r->s->sched.count - r->begin);
    for (int i = 0; i < r->batch; i++) {
        r->out->seeds[i] = req->seed + (uint64_t)i;
        rng_seed(&r->gens[i], r->out->seeds[i]);
    }
    arena_reset_to(r->a, 0);
    SDXL_TRY(stage_text(r, err));
    if (req->shape.img2img)
        SDXL_TRY(stage_encode(r, err));
    else
        initial_noise(r);
    SDXL_TRY(stage_denoise(r, err));
    return stage_decode(r, err);
}

sdxl_status pipeline_run(sdxl_session *s, const pipeline_request *req, size_t bytes,
                         sdxl_result *out, sdxl_error *err)
{
    double t0 = now_ms();
    memset(out, 0, sizeof *out);
    const pipeline_shape *sh = &req->shape;
    const pipeline_limits *lim = &s->model->limits;
    run r = {
        .s = s,
        .m = s->model,
        .req = req,
        .out = out,
        .a = &s->arena,
        .channels = (size_t)lim->latent_channels,
        .hw = (size_t)(sh->height / lim->vae_scale) * (size_t)(sh->width / lim->vae_scale),
        .batch = sh->batch,
        .rows = pipeline_unet_rows(sh),
    };
    r.n = r.channels * r.hw;
    sdxl_status st = run_stages(&r, bytes, err);
    run_free(&r);
    out->timings.total_ms = now_ms() - t0;
    return st;
}
