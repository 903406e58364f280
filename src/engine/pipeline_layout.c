/*
 * pipeline_layout.c — the arena's contents per stage, and pipeline_plan (see
 * pipeline_layout.h).
 */
#include "engine/pipeline_layout.h"

int pipeline_unet_rows(const pipeline_shape *sh)
{
    return sh->cfg ? 2 * sh->batch : sh->batch;
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
    const pipeline_limits *lim = &m->limits;
    int64_t h = sh->height / lim->vae_scale, w = sh->width / lim->vae_scale;
    int64_t latent[4] = {1, h, w, lim->latent_channels};
    SDXL_TRY(tensor_alloc(&t->image, a, type, 4, (int64_t[]){1, sh->height, sh->width, 3}, err));
    SDXL_TRY(tensor_alloc(&t->mean, a, type, 4, latent, err));
    SDXL_TRY(tensor_alloc(&t->logvar, a, type, 4, latent, err));
    SDXL_TRY(tensor_alloc(&t->noise, a, type, 4, latent, err));
    return tensor_alloc(&t->sample, a, type, 4, latent, err);
}

sdxl_status pipeline_denoise_alloc(const sdxl_model *m, arena *a, const pipeline_shape *sh,
                                   denoise_tensors *t, sdxl_error *err)
{
    const pipeline_limits *lim = &m->limits;
    int64_t shape[4] = {pipeline_unet_rows(sh), sh->height / lim->vae_scale,
                        sh->width / lim->vae_scale, lim->latent_channels};
    dtype type = backend_compute_type(m->be);
    SDXL_TRY(tensor_alloc(&t->timestep, a, DTYPE_F32, 1, (int64_t[]){1}, err));
    SDXL_TRY(tensor_alloc(&t->latents, a, type, 4, shape, err));
    return tensor_alloc(&t->pred, a, type, 4, shape, err);
}

sdxl_status pipeline_decode_alloc(const sdxl_model *m, arena *a, const pipeline_shape *sh,
                                  decode_tensors *t, sdxl_error *err)
{
    const pipeline_limits *lim = &m->limits;
    dtype type = backend_compute_type(m->vae_be);
    SDXL_TRY(tensor_alloc(&t->latents, a, type, 4,
                     (int64_t[]){1, sh->height / lim->vae_scale, sh->width / lim->vae_scale,
                                 lim->latent_channels},
                     err));
    return tensor_alloc(&t->image, a, type, 4, (int64_t[]){1, sh->height, sh->width, 3}, err);
}

static sdxl_status plan_stages(const sdxl_model *m, arena *a, const pipeline_shape *sh,
                               sdxl_error *err)
{
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
    arena_reset_to(a, 0);
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
