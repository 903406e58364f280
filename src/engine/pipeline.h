/*
 * pipeline.h — the SDXL pipelines behind include/sdxl.h: what a loaded model and a session
 * hold, and the run of one request (img2img or txt2img, any batch, with or without
 * classifier-free guidance), equal to diffusers 0.31's StableDiffusionXLImg2ImgPipeline and
 * StableDiffusionXLPipeline:
 *
 *   text      prompt_encoder: embeds [R, 77, D], pooled [R, P]; R = B, or 2B with guidance
 *             (B negative rows first); time ids (H, W, 0, 0, H, W) for every row
 *   img2img   image → [-1, 1] → VAE encoder (once: every row has the same picture) → per image
 *             i, from its generator (seed + i): ε → (mean + exp(logvar / 2) · ε) · scaling
 *             factor, then the noise → add_noise at the first timestep of get_timesteps
 *   txt2img   per image: randn · init_noise_sigma
 *   denoise   per timestep: scale_model_input → UNet on R rows → guidance
 *             (uncond + g · (text − uncond)) → Euler (ancestral) step, drawing its noise from
 *             each image's generator (even on the last step)
 *   decode    per image: latents / scaling factor → VAE decoder → uint8 pixels
 *
 * Latents live on the UNet's backend from the first stage to the last, in F32 (as diffusers'
 * scheduler keeps them) and NHWC; the scheduler's formulas, the VAE's sample and guidance are
 * backend ops. The VAE may run on a second backend of another compute type with a queue of
 * its own (sdxl_model.vae_be); tensors pass between the two by backend_wait_for and
 * backend_convert. A request's host copies are the picture in, the pictures out, the uploads
 * of the time ids, timesteps and random numbers, and the token ids of a prompt that is not in
 * the prompt cache (pipeline.c says why). UNet and text-encoder calls go through the session's
 * recorded graphs (graph_cache.h). Activation memory comes from one arena per session, sized
 * by pipeline_plan for the request before anything runs.
 */
#ifndef SDXL_ENGINE_PIPELINE_H
#define SDXL_ENGINE_PIPELINE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "base/arena.h"
#include "engine/pipeline_params.h"
#include "engine/prompt_encoder.h"
#include "engine/scheduler.h"
#include "engine/unet.h"
#include "engine/unet_graph.h"
#include "engine/vae.h"
#include "sdxl.h"

#define PIPELINE_NAME_MAX 256

/* A loaded model: immutable once open, shared by its sessions. */
struct sdxl_model {
    char dir[1024];
    char name[PIPELINE_NAME_MAX];   /* the directory's base name */
    char device[PIPELINE_NAME_MAX]; /* what the backend runs on, in words */
    uint64_t memory_budget;         /* activation bytes refused above; 0: no limit */
    backend *be;                    /* the text encoders and the UNet */
    backend *vae_be;                /* the VAE: be, or a backend of be's kind computing in
                                     * another type (bf16 beside an fp16 UNet on a GPU) */
    prompt_encoder *text;
    unet *unet;
    vae *vae;
    vae_tiling tiling;              /* off unless the model params ask for it */
    scheduler_config scheduler_cfg;
    pipeline_limits limits;         /* sizes and defaults the configs imply */
    uint64_t weight_bytes;          /* weights as the backend holds them */
    /* Held by a request from its first op to its last, and while a session frees its memory:
     * the backends' queues, scratch buffers and plan caches serve every session, and a CUDA
     * graph being recorded would take in another thread's work on the same queue. */
    pthread_mutex_t run_lock;
};

/* One worker's state: the activation arena (grown when a request needs more) and the
 * scheduler it sets up per request. */
struct sdxl_session {
    sdxl_model *model;
    void *buffer;    /* backend memory under the arena */
    size_t capacity; /* its size in bytes */
    arena arena;
    scheduler sched;
    bool sched_ready; /* sched holds tables (scheduler_free needed) */
    graph_cache graphs; /* recorded UNet and text-encoder calls over this arena */
};

/* Loads every component of a diffusers SDXL directory onto a new backend (model_open). */
sdxl_status pipeline_model_load(const char *dir, const sdxl_model_params *params, sdxl_model *m,
                                sdxl_error *err);
/* Frees what pipeline_model_load made (a partly loaded model too; the struct stays). */
void pipeline_model_unload(sdxl_model *m);

/* Activation bytes a run of this shape needs: the stages of pipeline_layout.h on a planning
 * arena (every shape checked, nothing computed). */
sdxl_status pipeline_plan(const sdxl_model *m, const pipeline_shape *shape, size_t *bytes,
                          sdxl_error *err);

/* Runs a validated request (pipeline_request_make) whose plan needs bytes (pipeline_plan) on
 * the session, with the request's seed: fills out (the caller's to free with sdxl_result_free,
 * also on failure) and calls the request's callbacks. */
sdxl_status pipeline_run(sdxl_session *s, const pipeline_request *req, size_t bytes,
                         sdxl_result *out, sdxl_error *err);

#endif /* SDXL_ENGINE_PIPELINE_H */
