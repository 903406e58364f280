/*
 * scheduler_apply.c — the scheduler's formulas as backend ops (see scheduler_apply.h).
 *
 * torch's a − s·b is backend_add_scaled(1, a, −s, b): (−s)·b is −(s·b) exactly and 1·a is a,
 * so the sum is a − s·b rounded as torch rounds it; a + b·s likewise with +s (products
 * commute exactly). A product alone, s·x, is backend_scale(x, s, −0): adding −0 changes no
 * value, not even a product of −0.
 */
#include "engine/scheduler_apply.h"

#include <assert.h>

sdxl_status scheduler_apply_scale_input(backend *be, const scheduler_step *st,
                                        const tensor *sample, tensor *out, sdxl_error *err)
{
    return backend_div_scalar(be, sample, st->input_divisor, out, err);
}

sdxl_status scheduler_apply_pred_original(backend *be, const scheduler_step *st,
                                          const tensor *sample, const tensor *model_output,
                                          tensor *x0, sdxl_error *err)
{
    if (st->prediction == SCHEDULER_PREDICTION_EPSILON)
        return backend_add_scaled(be, 1.0f, sample, -st->sigma, model_output, x0, err);
    /* model_output · c_out + sample / (σ² + 1): the quotient first, into x0 */
    SDXL_TRY(backend_div_scalar(be, sample, st->v_skip_divisor, x0, err));
    return backend_add_scaled(be, st->v_c_out, model_output, 1.0f, x0, x0, err);
}

sdxl_status scheduler_apply_step(backend *be, const scheduler_step *st, const tensor *sample,
                                 const tensor *model_output, const tensor *noise, tensor *prev,
                                 tensor *tmp, sdxl_error *err)
{
    assert(!st->draws_noise || noise);
    SDXL_TRY(scheduler_apply_pred_original(be, st, sample, model_output, tmp, err));
    /* derivative = (sample − x0) / σ */
    SDXL_TRY(backend_add_scaled(be, 1.0f, sample, -1.0f, tmp, tmp, err));
    SDXL_TRY(backend_div_scalar(be, tmp, st->sigma, tmp, err));
    /* prev = sample + derivative · dt */
    SDXL_TRY(backend_add_scaled(be, 1.0f, sample, st->dt, tmp, prev, err));
    if (!st->draws_noise)
        return SDXL_OK;
    return backend_add_scaled(be, 1.0f, prev, st->sigma_up, noise, prev, err);
}

sdxl_status scheduler_apply_add_noise(backend *be, const scheduler *s, size_t index,
                                      const tensor *original, const tensor *noise, tensor *out,
                                      sdxl_error *err)
{
    assert(index < s->count);
    return backend_add_scaled(be, 1.0f, original, s->sigmas[index], noise, out, err);
}

sdxl_status scheduler_apply_initial_noise(backend *be, const scheduler *s, const tensor *noise,
                                          tensor *out, sdxl_error *err)
{
    return backend_scale(be, noise, s->init_noise_sigma, -0.0f, out, err);
}
