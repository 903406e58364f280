/*
 * pipeline_layout.c — the arena's contents per stage, and pipeline_plan (see
 * pipeline_layout.h).
 */
#include "engine/pipeline_layout.h"

int pipeline_unet_rows(const pipeline_shape *sh)
{
    return sh->cfg ? 2 * sh->batch : sh->batch;
}

/* [n, h, w, C]: latents of n images or rows. */
static void latent_shape(const sdxl_model *m, const pipeline_shape *sh, int64_t n,
                         int64_t shape[4])
{
    const pipeline_limits *lim = &m->limits;
    shape[0] = n;
    shape[1] = sh->height / lim->vae_scale;
    shape[2] = sh->width / lim->vae_scale;
    shape[3] = lim->latent_channels;
}

/* The most timesteps a request may run: the schedule of the largest count over every step
 * count a request may ask for (trailing spacing can add one). */
static int64_t max_timesteps(const scheduler_config *cfg)
{
    size_t most = 0;
    for (int steps = 1; steps <= SDXL_MAX_STEPS; steps++) {
        size_t count = scheduler_timestep_count(cfg, steps);
        most = count > most ? count : most;
    }
    return (int64_t)most;
}

input_layout pipeline_input_layout(const sdxl_model *m, const pipeline_shape *sh)
{
    const int64_t align = TENSOR_ALIGN / (int64_t)sizeof(float);
    int64_t shape[4];
    latent_shape(m, sh, sh->batch, shape);
    input_layout l;
    l.max_timesteps = max_timesteps(&m->scheduler_cfg);
    /* img2img: the VAE sample's ε and add_noise's noise; txt2img: the initial noise. Then one
     * per step where steps draw. */
    l.max_draws = (sh->img2img ? 2 : 1) +
                  (scheduler_draws_noise(&m->scheduler_cfg) ? l.max_timesteps : 0);
    l.draw_size = shape[0] * shape[1] * shape[2] * shape[3];
    l.time_ids = 0;
    l.timesteps = (int64_t)pipeline_unet_rows(sh) * PIPELINE_TIME_IDS;
    l.draws = (l.timesteps + l.max_timesteps + align - 1) / align * align;
    l.total = l.draws + l.max_draws * l.draw_size;
    return l;
}

sdxl_status pipeline_input_view(const run_tensors *t, int64_t first, int ndim,
                                const int64_t *shape, tensor *view, sdxl_error *err)
{
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++)
        numel *= shape[i];
    tensor part;
    SDXL_TRY(tensor_view_outer(&part, &t->inputs, first, numel, err));
    return tensor_reshape(view, &part, ndim, shape, err);
}

sdxl_status pipeline_run_alloc(const sdxl_model *m, arena *a, const pipeline_shape *sh,
                               run_tensors *t, sdxl_error *err)
{
    int64_t shape[4];
    latent_shape(m, sh, sh->batch, shape);
    SDXL_TRY(tensor_alloc(&t->latents, a, DTYPE_F32, 4, shape, err));
    t->decode_from = arena_get_mark(a);
    input_layout l = pipeline_input_layout(m, sh);
    return tensor_alloc(&t->inputs, a, DTYPE_F32, 1, &l.total, err);
}

sdxl_status pipeline_text_alloc(const sdxl_model *m, graph_cache *graphs, arena *a,
                                const pipeline_shape *sh, const char *prompt,
                                const char *negative, text_tensors *t, sdxl_error *err)
{
    SDXL_TRY(prompt_encoder_encode(m->text, graphs, a, prompt, negative, sh->cfg, sh->batch,
                                   &t->embeds, err));
    return tensor_alloc(&t->time_ids, a, DTYPE_F32, 2,
                        (int64_t[]){pipeline_unet_rows(sh), PIPELINE_TIME_IDS}, err);
}

sdxl_status pipeline_encode_alloc(const sdxl_model *m, arena *a, const pipeline_shape *sh,
                                  encode_tensors *t, sdxl_error *err)
{
    dtype type = backend_compute_type(m->vae_be);
    int64_t latent[4];
    latent_shape(m, sh, 1, latent);
    const int64_t picture[4] = {1, sh->height, sh->width, 3};
    SDXL_TRY(tensor_alloc(&t->pixels, a, DTYPE_U8, 4, picture, err));
    SDXL_TRY(tensor_alloc(&t->image, a, type, 4, picture, err));
    SDXL_TRY(tensor_alloc(&t->mean, a, type, 4, latent, err));
    SDXL_TRY(tensor_alloc(&t->logvar, a, type, 4, latent, err));
    SDXL_TRY(tensor_alloc(&t->mean32, a, DTYPE_F32, 4, latent, err));
    return tensor_alloc(&t->logvar32, a, DTYPE_F32, 4, latent, err);
}

sdxl_status pipeline_denoise_alloc(const sdxl_model *m, arena *a, const pipeline_shape *sh,
                                   denoise_tensors *t, sdxl_error *err)
{
    int64_t rows[4], images[4];
    latent_shape(m, sh, pipeline_unet_rows(sh), rows);
    latent_shape(m, sh, sh->batch, images);
    dtype type = backend_compute_type(m->be);
    SDXL_TRY(tensor_alloc(&t->timestep, a, DTYPE_F32, 1, (int64_t[]){1}, err));
    SDXL_TRY(tensor_alloc(&t->latents, a, type, 4, rows, err));
    SDXL_TRY(tensor_alloc(&t->pred, a, type, 4, rows, err));
    SDXL_TRY(tensor_alloc(&t->scaled, a, DTYPE_F32, 4, images, err));
    return tensor_alloc(&t->pred32, a, DTYPE_F32, 4, rows, err);
}

sdxl_status pipeline_decode_alloc(const sdxl_model *m, arena *a, const pipeline_shape *sh,
                                  decode_tensors *t, sdxl_error *err)
{
    dtype type = backend_compute_type(m->vae_be);
    int64_t latent[4];
    latent_shape(m, sh, 1, latent);
    SDXL_TRY(tensor_alloc(&t->scaled, a, DTYPE_F32, 4, latent, err));
    SDXL_TRY(tensor_alloc(&t->latents, a, type, 4, latent, err));
    const int64_t picture[4] = {1, sh->height, sh->width, 3};
    SDXL_TRY(tensor_alloc(&t->image, a, type, 4, picture, err));
    return tensor_alloc(&t->pixels, a, DTYPE_U8, 4, picture, err);
}

static sdxl_status plan_stages(const sdxl_model *m, arena *a, const pipeline_shape *sh,
                               sdxl_error *err)
{
    run_tensors run;
    SDXL_TRY(pipeline_run_alloc(m, a, sh, &run, err));
    text_tensors text;
    SDXL_TRY(pipeline_text_alloc(m, NULL, a, sh, NULL, NULL, &text, err));
    arena_mark conditioning = arena_get_mark(a);
    if (sh->img2img) {
        encode_tensors e;
        SDXL_TRY(pipeline_encode_alloc(m, a, sh, &e, err));
        SDXL_TRY(vae_encode(m->vae, m->vae_be, a, &m->tiling, &e.image, &e.mean, &e.logvar, err));
        arena_reset_to(a, conditioning);
    }
    denoise_tensors d;
    SDXL_TRY(pipeline_denoise_alloc(m, a, sh, &d, err));
    SDXL_TRY(unet_forward(m->unet, m->be, a, &d.latents, &d.timestep, &text.embeds.embeds,
                     &text.embeds.pooled, &text.time_ids, &d.pred, err));
    arena_reset_to(a, run.decode_from);
    decode_tensors z;
    SDXL_TRY(pipeline_decode_alloc(m, a, sh, &z, err));
    return vae_decode(m->vae, m->vae_be, a, &m->tiling, &z.latents, &z.image, err);
}

sdxl_status pipeline_plan(const sdxl_model *m, const pipeline_shape *shape, size_t *bytes,
                          sdxl_error *err)
{
    arena plan;
    arena_init_planning(&plan);
    sdxl_status st = plan_stages(m, &plan, shape, err);
    *bytes = arena_peak(&plan);
    arena_free(&plan);
    return st;
}
