/*
 * scheduler_apply.h — the scheduler's formulas over latents as backend ops: diffusers'
 * scale_model_input, the Euler (ancestral) step, add_noise, and txt2img's initial noise.
 *
 * Each is the sequence of torch ops diffusers runs, one backend op per torch op, in its order
 * and with its float32 rounding (backend_add_scaled rounds both products, then the sum; the
 * divisions are true divisions), from the scalars of scheduler.h. So on the cpu backend the
 * latents are diffusers' bits, and a GPU computes the same formulas where the latents live.
 * Latents are F32 tensors on any backend (the "F32 too" ops of backend.h): diffusers' step
 * upcasts the sample to float32 as well. The tensors of one call share one shape ([B, h, w, C]
 * in the pipeline); on a planning arena only the shapes are checked.
 *
 *     scheduler_apply_add_noise(be, &s, begin, &latents, &noise0, &latents, err); // img2img
 *     for (size_t i = begin; i < s.count; i++) {
 *         scheduler_step st;  scheduler_step_at(&s, i, &st);
 *         scheduler_apply_scale_input(be, &st, &latents, &unet_in, err);  ... the UNet ...
 *         scheduler_apply_step(be, &st, &latents, &model_out, &noise_i, &latents, &tmp, err);
 *     }
 */
#ifndef SDXL_ENGINE_SCHEDULER_APPLY_H
#define SDXL_ENGINE_SCHEDULER_APPLY_H

#include <stddef.h>

#include "backend/backend.h"
#include "engine/scheduler.h"

/* out = sample / sqrt(σ² + 1). out may be sample. */
sdxl_status scheduler_apply_scale_input(backend *be, const scheduler_step *st,
                                        const tensor *sample, tensor *out, sdxl_error *err);

/* x0 = sample − σ · model_output (epsilon), or model_output · (−σ / sqrt(σ² + 1)) +
 * sample / (σ² + 1) (v_prediction): diffusers' pred_original_sample. x0 must not be sample
 * or model_output. */
sdxl_status scheduler_apply_pred_original(backend *be, const scheduler_step *st,
                                          const tensor *sample, const tensor *model_output,
                                          tensor *x0, sdxl_error *err);

/* The Euler (ancestral) update: prev = sample + ((sample − x0) / σ) · dt, then
 * prev + noise · σ_up when st->draws_noise (noise is ignored otherwise and may be NULL).
 * prev may be sample; tmp is scratch of the same shape, apart from the others, and holds
 * (sample − x0) / σ afterwards. */
sdxl_status scheduler_apply_step(backend *be, const scheduler_step *st, const tensor *sample,
                                 const tensor *model_output, const tensor *noise, tensor *prev,
                                 tensor *tmp, sdxl_error *err);

/* img2img: out = original + noise · σ_index, index being the first step run (index < count).
 * out may be original. */
sdxl_status scheduler_apply_add_noise(backend *be, const scheduler *s, size_t index,
                                      const tensor *original, const tensor *noise, tensor *out,
                                      sdxl_error *err);

/* txt2img: out = noise · init_noise_sigma. out may be noise. */
sdxl_status scheduler_apply_initial_noise(backend *be, const scheduler *s, const tensor *noise,
                                          tensor *out, sdxl_error *err);

#endif /* SDXL_ENGINE_SCHEDULER_APPLY_H */
