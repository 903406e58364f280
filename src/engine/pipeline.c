/*
 * pipeline.c — one img2img or txt2img request, stage by stage (see pipeline.h; the arena's
 * contents per stage are in pipeline_layout.h).
 *
 * Everything stays on the backend from the first stage to the last: the latents (F32, as
 * diffusers' scheduler keeps them), the VAE's sample, guidance and every scheduler step are
 * backend ops, and the VAE's tensors pass to the UNet's backend and back by backend_convert.
 * The host copies of a request are four: the picture up and the decoded pictures down, as
 * bytes (the [-1, 1] conversions are backend ops), and two uploads of the run's other inputs:
 * the time ids and the timesteps before the first stage, then every random number the run
 * draws, drawn while the VAE encoder runs (img2img) or after the text stage (txt2img); and
 * the token ids of a prompt that is not in the prompt cache (whose embeddings stay on the
 * backend: prompt_cache.h). The
 * numbers are drawn on the host because torch's CPU generator is sequential
 * (each image's mt19937 stream gives, in order, ε for the VAE sample and add_noise's noise, or
 * the initial noise, then one noise per step that draws), exactly the draws diffusers makes;
 * each [C, h, w] draw is transposed to the backend's [h, w, C] on the way. on_latents, when
 * set, reads the latents back (a debugging aid).
 *
 * Images of a batch are VAE-encoded once (they share the input picture) and decoded one at a
 * time: a batch row's bits do not depend on the batch (backend.h), and the decoder's
 * activations are the largest of the whole pipeline. On a GPU the ops run asynchronously:
 * each stage waits for its work at its end, so that the stage times are the stages'. When the
 * VAE has a backend of its own (another compute type, another GPU queue), backend_wait_for
 * orders the two queues wherever a tensor crosses. (Running the VAE encoder beside the text
 * encoders was tried on an H100 and gained nothing: see docs/BENCHMARKS.md.)
 */
#include "engine/pipeline.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/image_processor.h"
#include "engine/pipeline_layout.h"
#include "engine/rng.h"
#include "engine/scheduler_apply.h"
#include "engine/vae_graph.h"

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
    int64_t draws;          /* random draws per image: rows of inputs' draws used */
    int64_t next_draw;      /* the row of draws the next consumer takes */
    input_layout layout;
    run_tensors t;
    rng_generator *gens;    /* [batch]: image i's generator, seeded seed + i */
    float *inputs;          /* [layout.draws + draws · B·n] the upload, as layout says */
    float *draw;            /* [C, h, w] one draw before its transpose */
    float *shown;           /* [2 · B·n] on_latents: as read, then as NCHW; NULL without it */
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

/* A stage's time: until the work queued on be is done (and so whatever be waited for). */
static sdxl_status stage_time(backend *be, double t0, double *ms, sdxl_error *err)
{
    SDXL_TRY(backend_synchronize(be, err));
    *ms = now_ms() - t0;
    return SDXL_OK;
}

/* Row k of the draws: every image's k-th draw, [B, h, w, C]. */
static sdxl_status draw_row(const run *r, int64_t k, tensor *view, sdxl_error *err)
{
    return pipeline_input_view(&r->t, r->layout.draws + k * r->layout.draw_size, 4,
                               r->t.latents.shape, view, err);
}

/* Elements [first, end) of r->inputs to the backend's copy. */
static sdxl_status write_inputs(run *r, int64_t first, int64_t end, sdxl_error *err)
{
    tensor part;
    SDXL_TRY(tensor_view_outer(&part, &r->t.inputs, first, end - first, err));
    return backend_tensor_write(r->m->be, &part, DTYPE_F32, r->inputs + first,
                                (size_t)(end - first), err);
}

/* The time ids and the timesteps: the first of the run's two uploads. */
static sdxl_status upload_schedule(run *r, sdxl_error *err)
{
    const pipeline_shape *sh = &r->req->shape;
    const input_layout *l = &r->layout;
    /* The negative rows' time ids are the same (negative_original_size = original_size). */
    float ids[PIPELINE_TIME_IDS] = {(float)sh->height, (float)sh->width, 0.0f, 0.0f,
                                    (float)sh->height, (float)sh->width};
    for (int row = 0; row < r->rows; row++)
        memcpy(r->inputs + l->time_ids + (size_t)row * PIPELINE_TIME_IDS, ids, sizeof ids);
    memcpy(r->inputs + l->timesteps, r->s->sched.timesteps, r->s->sched.count * sizeof(float));
    return write_inputs(r, 0, l->draws, err);
}

/* Every draw of every image: the second upload, made while the VAE encoder runs on a GPU
 * (drawing takes the host about 0.2 ms per 512x512 latent). */
static sdxl_status upload_draws(run *r, sdxl_error *err)
{
    const input_layout *l = &r->layout;
    for (int i = 0; i < r->batch; i++)
        for (int64_t k = 0; k < r->draws; k++) {
            rng_randn_f32(&r->gens[i], r->draw, r->n);
            nchw_to_nhwc(r->draw, r->inputs + l->draws + k * l->draw_size + (size_t)i * r->n,
                         r->channels, r->hw);
        }
    return write_inputs(r, l->draws, l->draws + r->draws * l->draw_size, err);
}

/* ---- stages ------------------------------------------------------------------------------ */

static sdxl_status stage_text(run *r, sdxl_error *err)
{
    SDXL_TRY(report(r, SDXL_STAGE_TEXT, 0, err));
    double t0 = now_ms();
    const sdxl_model *m = r->m;
    SDXL_TRY(pipeline_text_alloc(m, &r->s->graphs, r->a, &r->req->shape, r->req->prompt,
                                 r->req->negative_prompt, &r->text, err));
    tensor ids;
    SDXL_TRY(pipeline_input_view(&r->t, r->layout.time_ids, 2, r->text.time_ids.shape, &ids,
                                 err));
    SDXL_TRY(backend_copy(m->be, &ids, &r->text.time_ids, err));
    return stage_time(m->be, t0, &r->out->timings.text_ms, err);
}

/* The picture at the size asked for, up as bytes, through the VAE encoder on its backend. */
static sdxl_status queue_vae_encode(run *r, encode_tensors *e, sdxl_error *err)
{
    const sdxl_model *m = r->m;
    const pipeline_shape *sh = &r->req->shape;
    const sdxl_image *in = r->req->init_image;
    image picture = {.width = in->width, .height = in->height, .pixels = in->pixels};
    image resized = {0};
    const image *sized;
    SDXL_TRY(image_processor_preprocess(&picture, sh->width, sh->height, &resized, &sized, err));
    sdxl_status st = backend_tensor_write(m->vae_be, &e->pixels, DTYPE_U8, sized->pixels,
                                          (size_t)tensor_numel(&e->pixels), err);
    image_free(&resized);
    SDXL_TRY(st);
    SDXL_TRY(backend_normalize_pixels(m->vae_be, &e->pixels, &e->image, err));
    return vae_graph_encode(&r->s->graphs, m->vae, m->vae_be, r->a, &m->tiling, &e->image,
                            &e->mean, &e->logvar, err);
}

/* img2img: image latents (mean + std · ε) × scaling factor, then add_noise at the first
 * timestep. The VAE's mean and log-variance join the latents in F32 on the UNet's backend.
 * The host draws the random numbers while the encoder runs (on a GPU). */
static sdxl_status stage_encode(run *r, sdxl_error *err)
{
    SDXL_TRY(report(r, SDXL_STAGE_VAE_ENCODE, 0, err));
    double t0 = now_ms();
    const sdxl_model *m = r->m;
    arena_mark mark = arena_get_mark(r->a);
    encode_tensors e;
    SDXL_TRY(pipeline_encode_alloc(m, r->a, &r->req->shape, &e, err));
    SDXL_TRY(queue_vae_encode(r, &e, err));
    SDXL_TRY(upload_draws(r, err));
    SDXL_TRY(backend_wait_for(m->be, m->vae_be, err));
    SDXL_TRY(backend_convert(m->be, &e.mean, &e.mean32, err));
    SDXL_TRY(backend_convert(m->be, &e.logvar, &e.logvar32, err));
    tensor eps, noise, *x = &r->t.latents;
    SDXL_TRY(draw_row(r, r->next_draw++, &eps, err));
    SDXL_TRY(draw_row(r, r->next_draw++, &noise, err));
    for (int i = 0; i < r->batch; i++) {
        tensor eps_i, x_i;
        SDXL_TRY(tensor_view_outer(&eps_i, &eps, i, 1, err));
        SDXL_TRY(tensor_view_outer(&x_i, x, i, 1, err));
        SDXL_TRY(vae_sample(m->be, &e.mean32, &e.logvar32, &eps_i, &x_i, err));
    }
    SDXL_TRY(backend_scale(m->be, x, m->limits.scaling_factor, -0.0f, x, err));
    SDXL_TRY(scheduler_apply_add_noise(m->be, &r->s->sched, r->begin, x, &noise, x, err));
    SDXL_TRY(stage_time(m->be, t0, &r->out->timings.vae_encode_ms, err));
    arena_reset_to(r->a, mark);
    return SDXL_OK;
}

/* txt2img: randn · init_noise_sigma. */
static sdxl_status initial_noise(run *r, sdxl_error *err)
{
    tensor noise;
    SDXL_TRY(draw_row(r, r->next_draw++, &noise, err));
    return scheduler_apply_initial_noise(r->m->be, &r->s->sched, &noise, &r->t.latents, err);
}

/* One timestep: the UNet on every row, guidance, and the scheduler step of every image. */
static sdxl_status denoise_step(run *r, denoise_tensors *d, size_t index, sdxl_error *err)
{
    const sdxl_model *m = r->m;
    backend *be = m->be;
    tensor *x = &r->t.latents;
    scheduler_step st;
    scheduler_step_at(&r->s->sched, index, &st);
    /* diffusers scales torch.cat([latents] * 2): the negative rows b and the positive rows
     * batch + b hold the same input. */
    SDXL_TRY(scheduler_apply_scale_input(be, &st, x, &d->scaled, err));
    for (int first = 0; first < r->rows; first += r->batch) {
        tensor rows;
        SDXL_TRY(tensor_view_outer(&rows, &d->latents, first, r->batch, err));
        SDXL_TRY(backend_convert(be, &d->scaled, &rows, err));
    }
    tensor t;
    SDXL_TRY(pipeline_input_view(&r->t, r->layout.timesteps + (int64_t)index, 1, d->timestep.shape,
                                 &t, err));
    SDXL_TRY(backend_copy(be, &t, &d->timestep, err));
    SDXL_TRY(unet_graph_forward(&r->s->graphs, m->unet, be, r->a, &d->latents, &d->timestep,
                                &r->text.embeds.embeds, &r->text.embeds.pooled,
                                &r->text.time_ids, &d->pred, err));
    SDXL_TRY(backend_convert(be, &d->pred, &d->pred32, err));
    tensor eps;
    SDXL_TRY(tensor_view_outer(&eps, &d->pred32, r->rows - r->batch, r->batch, err));
    if (r->req->shape.cfg) {
        /* noise_pred_uncond + guidance_scale * (noise_pred_text - noise_pred_uncond) */
        tensor uncond;
        SDXL_TRY(tensor_view_outer(&uncond, &d->pred32, 0, r->batch, err));
        SDXL_TRY(backend_add_scaled(be, 1.0f, &eps, -1.0f, &uncond, &eps, err));
        SDXL_TRY(backend_add_scaled(be, 1.0f, &uncond, r->req->guidance_scale, &eps, &eps, err));
    }
    tensor noise;
    if (st.draws_noise)
        SDXL_TRY(draw_row(r, r->next_draw++, &noise, err));
    return scheduler_apply_step(be, &st, x, &eps, st.draws_noise ? &noise : NULL, x, &d->scaled,
                                err);
}

/* on_latents sees torch's [B, C, h, w]: the only read of the latents, and only for it. */
static sdxl_status show_latents(const run *r, int step, sdxl_error *err)
{
    if (!r->req->on_latents)
        return SDXL_OK;
    size_t count = (size_t)r->batch * r->n;
    SDXL_TRY(backend_tensor_read(r->m->be, &r->t.latents, DTYPE_F32, r->shown, count, err));
    for (int i = 0; i < r->batch; i++)
        nhwc_to_nchw(r->shown + (size_t)i * r->n, r->shown + count + (size_t)i * r->n,
                     r->channels, r->hw);
    r->req->on_latents(r->req->on_latents_user, step, r->shown + count, count);
    return SDXL_OK;
}

static sdxl_status stage_denoise(run *r, sdxl_error *err)
{
    double t0 = now_ms();
    denoise_tensors d;
    SDXL_TRY(pipeline_denoise_alloc(r->m, r->a, &r->req->shape, &d, err));
    SDXL_TRY(show_latents(r, 0, err));
    for (size_t i = r->begin; i < r->s->sched.count; i++) {
        SDXL_TRY(denoise_step(r, &d, i, err));
        int done = ++r->out->timings.unet_steps;
        SDXL_TRY(show_latents(r, done, err));
        SDXL_TRY(report(r, SDXL_STAGE_DENOISE, done, err));
    }
    return stage_time(r->m->be, t0, &r->out->timings.unet_ms, err);
}

/* Each image alone: latents ÷ scaling factor → the VAE's type → decoder → uint8, handed to
 * on_image at once. */
static sdxl_status stage_decode(run *r, sdxl_error *err)
{
    SDXL_TRY(report(r, SDXL_STAGE_VAE_DECODE, 0, err));
    double t0 = now_ms();
    const sdxl_model *m = r->m;
    const pipeline_shape *sh = &r->req->shape;
    arena_reset_to(r->a, r->t.decode_from); /* only the latents are still needed */
    decode_tensors z;
    SDXL_TRY(pipeline_decode_alloc(m, r->a, sh, &z, err));
    for (int i = 0; i < r->batch; i++) {
        tensor x_i;
        SDXL_TRY(tensor_view_outer(&x_i, &r->t.latents, i, 1, err));
        SDXL_TRY(backend_div_scalar(m->be, &x_i, m->limits.scaling_factor, &z.scaled, err));
        SDXL_TRY(backend_wait_for(m->vae_be, m->be, err));
        SDXL_TRY(backend_convert(m->vae_be, &z.scaled, &z.latents, err));
        SDXL_TRY(vae_graph_decode(&r->s->graphs, m->vae, m->vae_be, r->a, &m->tiling, &z.latents,
                                  &z.image, err));
        SDXL_TRY(backend_denormalize_pixels(m->vae_be, &z.image, &z.pixels, err));
        image decoded;
        SDXL_TRY(image_alloc(&decoded, sh->width, sh->height, err));
        sdxl_status st = backend_tensor_read(m->vae_be, &z.pixels, DTYPE_U8, decoded.pixels,
                                             (size_t)tensor_numel(&z.pixels), err);
        if (st != SDXL_OK) {
            image_free(&decoded);
            return st;
        }
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
    graph_cache_clear(&s->graphs); /* they replay the old block's addresses */
    backend_buffer_free(be, s->buffer);
    s->buffer = NULL;
    s->capacity = 0;
    SDXL_TRY(backend_buffer_alloc(be, bytes, &s->buffer, err));
    s->capacity = bytes;
    arena_init_borrowed(&s->arena, s->buffer, bytes);
    return SDXL_OK;
}

/* The schedule, and how many random draws each image makes over it. */
static sdxl_status run_schedule(run *r, sdxl_error *err)
{
    const pipeline_request *req = r->req;
    scheduler *sched = &r->s->sched;
    SDXL_TRY(scheduler_set_timesteps(sched, req->steps, err));
    r->begin = req->shape.img2img ? scheduler_img2img_begin(req->steps, req->strength) : 0;
    if (r->begin >= sched->count)
        return error_set(err, SDXL_ERR_INTERNAL, "img2img with %d steps at strength %g runs no "
                         "step (validation should have refused it)", req->steps, req->strength);
    r->total_steps = (int)(sched->count - r->begin);
    r->draws = req->shape.img2img ? 2 : 1;
    for (size_t i = r->begin; i < sched->count; i++) {
        scheduler_step st;
        scheduler_step_at(sched, i, &st);
        r->draws += st.draws_noise;
    }
    if (r->draws > r->layout.max_draws || (int64_t)sched->count > r->layout.max_timesteps)
        return error_set(err, SDXL_ERR_INTERNAL,
                         "%d steps make %lld draws over %zu timesteps, over the planned %lld and "
                         "%lld",
                         req->steps, (long long)r->draws, sched->count,
                         (long long)r->layout.max_draws, (long long)r->layout.max_timesteps);
    return SDXL_OK;
}

static sdxl_status run_alloc(run *r, sdxl_error *err)
{
    const pipeline_shape *sh = &r->req->shape;
    size_t inputs = (size_t)(r->layout.draws + r->draws * r->layout.draw_size);
    r->gens = malloc((size_t)r->batch * sizeof *r->gens);
    r->inputs = malloc(inputs * sizeof(float));
    r->draw = malloc(r->n * sizeof(float));
    r->shown = r->req->on_latents ? malloc(2 * (size_t)r->batch * r->n * sizeof(float)) : NULL;
    r->out->images = calloc((size_t)r->batch, sizeof *r->out->images);
    r->out->seeds = malloc((size_t)r->batch * sizeof *r->out->seeds);
    if (!r->gens || !r->inputs || !r->draw || (r->req->on_latents && !r->shown) ||
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
    free(r->inputs);
    free(r->draw);
    free(r->shown);
}

static sdxl_status run_stages(run *r, size_t bytes, sdxl_error *err)
{
    const pipeline_request *req = r->req;
    SDXL_TRY(run_schedule(r, err));
    SDXL_TRY(run_alloc(r, err));
    SDXL_TRY(session_reserve(r->s, bytes, err));
    for (int i = 0; i < r->batch; i++) {
        r->out->seeds[i] = req->seed + (uint64_t)i;
        rng_seed(&r->gens[i], r->out->seeds[i]);
    }
    arena_reset_to(r->a, 0);
    SDXL_TRY(pipeline_run_alloc(r->m, r->a, &req->shape, &r->t, err));
    SDXL_TRY(upload_schedule(r, err));
    SDXL_TRY(stage_text(r, err));
    if (req->shape.img2img) {
        SDXL_TRY(stage_encode(r, err));
    } else {
        SDXL_TRY(upload_draws(r, err));
        SDXL_TRY(initial_noise(r, err));
    }
    SDXL_TRY(stage_denoise(r, err));
    return stage_decode(r, err);
}

/* Waits for whatever a failed stage left queued on either backend, so that the next request
 * may reuse the arena at once; st is the run's status, kept when it is an error. */
static sdxl_status settle(const sdxl_model *m, sdxl_status st, sdxl_error *err)
{
    sdxl_error ignored;
    sdxl_error *e = st ? &ignored : err;
    sdxl_status waited = backend_synchronize(m->be, e);
    if (!waited && m->vae_be != m->be)
        waited = backend_synchronize(m->vae_be, e);
    return st ? st : waited;
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
        .layout = pipeline_input_layout(s->model, sh),
    };
    r.n = r.channels * r.hw;
    sdxl_status st = settle(s->model, run_stages(&r, bytes, err), err);
    run_free(&r);
    out->timings.total_ms = now_ms() - t0;
    return st;
}
