/*
 * scheduler.h — diffusers' EulerAncestralDiscreteScheduler and EulerDiscreteScheduler.
 *
 * Built from a model's scheduler/scheduler_config.json, computed as diffusers 0.31 computes them
 * so the results match bit for bit: betas, alphas_cumprod and the base sigmas in float32 as torch
 * does, timesteps and interpolated sigmas in float64 as numpy does, then float32; per-step values
 * are float32 ops in torch's order.
 *
 * This file makes the schedule and each step's scalars (scheduler_step); the formulas that
 * touch latents are backend ops driven by those scalars (scheduler_apply.h), in torch's op
 * order on every backend.
 *
 *     scheduler_config cfg;  scheduler s;
 *     scheduler_config_load("model/scheduler/scheduler_config.json", &cfg, err);
 *     scheduler_init(&s, &cfg, err);
 *     scheduler_set_timesteps(&s, steps, err);
 *     size_t begin = scheduler_img2img_begin(steps, strength);     // txt2img: 0
 *     for (size_t i = begin; i < s.count; i++) {
 *         scheduler_step st;  scheduler_step_at(&s, i, &st);
 *         ... scheduler_apply_scale_input, the UNet at st.timestep, scheduler_apply_step ...
 *     }
 */
#ifndef SDXL_ENGINE_SCHEDULER_H
#define SDXL_ENGINE_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>

#include "base/json.h"

typedef enum scheduler_kind {
    SCHEDULER_EULER_ANCESTRAL = 0, /* EulerAncestralDiscreteScheduler */
    SCHEDULER_EULER = 1,           /* EulerDiscreteScheduler (s_churn 0: no noise in step) */
} scheduler_kind;

typedef enum scheduler_beta_schedule {
    SCHEDULER_BETA_LINEAR = 0,
    SCHEDULER_BETA_SCALED_LINEAR = 1,
    SCHEDULER_BETA_SQUAREDCOS_CAP_V2 = 2,
} scheduler_beta_schedule;

typedef enum scheduler_spacing {
    SCHEDULER_SPACING_LINSPACE = 0,
    SCHEDULER_SPACING_LEADING = 1,
    SCHEDULER_SPACING_TRAILING = 2,
} scheduler_spacing;

typedef enum scheduler_prediction {
    SCHEDULER_PREDICTION_EPSILON = 0,
    SCHEDULER_PREDICTION_V = 1, /* v_prediction */
} scheduler_prediction;

/* The sigma after the last timestep (EulerDiscreteScheduler's final_sigmas_type). */
typedef enum scheduler_final_sigma {
    SCHEDULER_FINAL_SIGMA_ZERO = 0,
    SCHEDULER_FINAL_SIGMA_MIN = 1, /* "sigma_min": the smallest training sigma */
} scheduler_final_sigma;

/* Largest num_train_timesteps accepted (real models use 1000). */
#define SCHEDULER_MAX_TRAIN_TIMESTEPS 100000

typedef struct scheduler_config {
    scheduler_kind kind;
    int num_train_timesteps;
    double beta_start, beta_end;
    scheduler_beta_schedule beta_schedule;
    scheduler_prediction prediction;
    scheduler_spacing spacing;
    int steps_offset; /* added to "leading" timesteps */
    scheduler_final_sigma final_sigma;
} scheduler_config;

/* Reads a scheduler_config.json document. Keys missing or null take diffusers' defaults.
 * Fails with SDXL_ERR_UNSUPPORTED for another _class_name (naming it and the supported ones) and
 * for options sdxld does not implement (trained_betas, rescale_betas_zero_snr, karras /
 * exponential / beta sigmas, log_linear interpolation, "sample" prediction, continuous
 * v-prediction timesteps), with SDXL_ERR_FORMAT for malformed values. */
sdxl_status scheduler_config_read(const json_doc *doc, scheduler_config *cfg, sdxl_error *err);
sdxl_status scheduler_config_load(const char *path, scheduler_config *cfg, sdxl_error *err);

typedef struct scheduler {
    scheduler_config config;
    float *alphas_cumprod; /* [num_train_timesteps] */
    float *train_sigmas;   /* [num_train_timesteps] sqrt((1 − ᾱ)/ᾱ), by training timestep */
    /* set by scheduler_set_timesteps: */
    int num_inference_steps;
    /* Timesteps in the schedule. Usually num_inference_steps, but diffusers' "trailing" numpy
     * arange yields one more for some counts (e.g. 61 of 1000: the extra timestep is −1), and
     * diffusers then runs that many steps: so do we. */
    size_t count;
    float *timesteps;   /* [count] the UNet's t, decreasing */
    float *sigmas;      /* [count + 1] σ per timestep, then the final sigma */
    double *sigmas_f64; /* [count + 1] the same before the float32 cast (numpy's values) */
    float init_noise_sigma; /* txt2img: initial latents = noise · init_noise_sigma */
} scheduler;

/* Computes the training schedule (betas → alphas_cumprod → sigmas). Fails with
 * SDXL_ERR_FORMAT when the betas make a sigma non-finite (ᾱ reaching 0). */
sdxl_status scheduler_init(scheduler *s, const scheduler_config *cfg, sdxl_error *err);
void scheduler_free(scheduler *s);

/* diffusers' set_timesteps(num_inference_steps): 1 ≤ steps ≤ num_train_timesteps. */
sdxl_status scheduler_set_timesteps(scheduler *s, int num_inference_steps, sdxl_error *err);

/* The count scheduler_set_timesteps(num_inference_steps) gives (see scheduler.count), known
 * before any schedule exists: for sizing what a request's steps need. */
size_t scheduler_timestep_count(const scheduler_config *cfg, int num_inference_steps);

/* Whether every step of this kind of scheduler draws a noise of the latents' size
 * (ancestral), its last step too. */
bool scheduler_draws_noise(const scheduler_config *cfg);

/* StableDiffusionXLImg2ImgPipeline.get_timesteps: img2img starts at index
 * t_start = steps − min(int(steps · strength), steps) (strength in [0, 1]) and runs the
 * timesteps from there; t_start == steps means no step would run (the caller refuses that). */
size_t scheduler_img2img_begin(int num_inference_steps, double strength);

/* Everything step i needs besides the latents: float32 scalars computed as torch does. */
typedef struct scheduler_step {
    size_t index;
    float timestep;       /* t given to the UNet */
    float sigma;          /* σ_i */
    float input_divisor;  /* scale_model_input: sample / sqrt(σ² + 1) */
    scheduler_prediction prediction;
    float v_c_out;        /* v_prediction: −σ / sqrt(σ² + 1) */
    float v_skip_divisor; /* v_prediction: σ² + 1 */
    float dt;             /* σ_down − σ (ancestral) or σ_{i+1} − σ (Euler) */
    float sigma_up;       /* ancestral noise scale (0 on the last step); 0 for Euler */
    bool draws_noise;     /* ancestral: step consumes one randn of the latents' size */
} scheduler_step;

/* index < s->count (after scheduler_set_timesteps). */
void scheduler_step_at(const scheduler *s, size_t index, scheduler_step *out);

#endif /* SDXL_ENGINE_SCHEDULER_H */
