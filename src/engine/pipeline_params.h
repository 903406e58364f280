/*
 * pipeline_params.h — the parameters of sdxl_generate: defaults, the checks of
 * sdxl_validate_params, and the request they resolve to (every default filled in).
 *
 * Each check names the offending field in err->field and says the accepted range. Defaults
 * are the PRD's: 2 steps, strength 0.8, guidance 0 (no guidance), batch 1. A size of 0 means
 * the input image's size rounded down to the VAE's granularity (img2img), or the model's
 * default (txt2img).
 */
#ifndef SDXL_ENGINE_PIPELINE_PARAMS_H
#define SDXL_ENGINE_PIPELINE_PARAMS_H

#include <stdbool.h>
#include <stdint.h>

#include "base/status.h"

/* What a model's configs imply for requests. */
typedef struct pipeline_limits {
    int vae_scale;       /* image pixels per latent pixel (8 for SDXL) */
    int default_width;   /* the UNet's sample_size × vae_scale (512 for sdxl-turbo) */
    int default_height;
    int latent_channels; /* 4 */
    float scaling_factor; /* VAE latents × this go to the UNet */
} pipeline_limits;

/* What decides the activation memory of a run. */
typedef struct pipeline_shape {
    int width, height; /* output pixels, multiples of vae_scale */
    int batch;         /* images */
    bool img2img;      /* runs the VAE encoder */
    bool cfg;          /* classifier-free guidance: the UNet runs 2 × batch rows */
} pipeline_shape;

/* A checked sdxl_generate_params with its defaults resolved. Strings and the image are the
 * caller's (borrowed for the call). */
typedef struct pipeline_request {
    pipeline_shape shape;
    const char *prompt;
    const char *negative_prompt; /* NULL: none */
    const sdxl_image *init_image; /* NULL: txt2img */
    int steps;                   /* num_inference_steps */
    double strength;             /* img2img: as the caller wrote it (pipeline_strength_value) */
    float guidance_scale;
    uint64_t seed;               /* meaningful when seed_set */
    bool seed_set;
    sdxl_progress_fn progress;
    void *progress_user;
    sdxl_image_fn on_image;
    void *on_image_user;
    /* Sees the latents [batch, C, h, w] (torch's layout) entering the first denoising step
     * (step 0) and after step k (k = 1..), as diffusers' prepare_latents and
     * callback_on_step_end do: for tests and debugging. Not set by pipeline_request_make. */
    void (*on_latents)(void *user, int step, const float *latents, size_t count);
    void *on_latents_user;
} pipeline_request;

sdxl_generate_params pipeline_default_params(void);

/* Checks p against the model's limits (sdxl_validate_params) and resolves it into out. */
sdxl_status pipeline_request_make(const pipeline_limits *lim, const sdxl_generate_params *p,
                                  pipeline_request *out, sdxl_error *err);

/* The strength a caller means by a float: the shortest decimal that reads back as that float,
 * as a double. diffusers computes int(steps × strength) on a Python float, so 0.7 with 10 steps
 * runs 7 steps; the float nearest 0.7 (0.69999998…) times 10 would give 6. */
double pipeline_strength_value(float strength);

#endif /* SDXL_ENGINE_PIPELINE_PARAMS_H */
