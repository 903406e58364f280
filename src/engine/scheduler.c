/*
 * scheduler.c — the Euler schedulers of diffusers 0.31, reproduced in their arithmetic.
 *
 * Which precision each value has in diffusers decides how it is computed here:
 * - betas: torch.linspace in float32 (torch's CPU kernel: a fused start + step·i from the start
 *   for the first half, end − step·(steps−1−i) from the end for the second); squaredcos_cap_v2
 *   in Python doubles, then float32;
 * - alphas_cumprod: torch.cumprod of float32 1 − β, accumulated in double (torch's CPU
 *   accumulate type for float) and rounded per element;
 * - training sigmas sqrt((1 − ᾱ)/ᾱ): float32 tensor ops;
 * - timesteps: numpy float64 (linspace, arange, round), then float32;
 * - sigmas per timestep: np.interp in float64 over the float32 training sigmas, then float32;
 * - per-step scalars: float32, one rounding per torch op, in its order (so are the latent
 *   updates made of them, scheduler_apply.c).
 * The build's -ffp-contract=off keeps every other operation separately rounded.
 *
 * Square roots are correctly rounded (sqrtf). torch takes float sqrt from MKL's VML, which is
 * correctly rounded on Intel CPUs (its FMA code path) but, on CPUs where MKL picks its SSE path
 * (AMD's, for one), 1 ulp off for ~17% of inputs, depending on the CPU's rsqrtps table. sdxld
 * matches the former and is the same on every machine; test_scheduler.c allows that ulp.
 */
#include "engine/scheduler.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/config_check.h"

#define PI_F64 3.14159265358979323846

static const char *const class_names[] = {"EulerAncestralDiscreteScheduler",
                                          "EulerDiscreteScheduler", NULL};
static const char *const beta_schedule_names[] = {"linear", "scaled_linear", "squaredcos_cap_v2",
                                                  NULL};
static const char *const spacing_names[] = {"linspace", "leading", "trailing", NULL};
static const char *const prediction_names[] = {"epsilon", "v_prediction", NULL};
static const char *const interpolation_names[] = {"linear", NULL};
static const char *const timestep_type_names[] = {"discrete", "continuous", NULL};
static const char *const final_sigma_names[] = {"zero", "sigma_min", NULL};

static sdxl_status read_class(const json_doc *doc, scheduler_kind *kind, sdxl_error *err)
{
    const char *name;
    sdxl_status st = json_get_string(doc, json_doc_root(doc), "_class_name", &name, err);
    if (st)
        return st;
    for (int i = 0; class_names[i]; i++) {
        if (strcmp(name, class_names[i]) == 0) {
            *kind = (scheduler_kind)i;
            return SDXL_OK;
        }
    }
    return error_set(err, SDXL_ERR_UNSUPPORTED,
                     "%s: scheduler class \"%s\" is not supported (sdxld supports %s and %s); "
                     "set \"_class_name\" to one of them",
                     doc->name, name, class_names[0], class_names[1]);
}

static sdxl_status read_beta(const json_doc *doc, const char *key, double fallback, double *out,
                             sdxl_error *err)
{
    sdxl_status st = json_get_double_opt(doc, json_doc_root(doc), key, fallback, out, err);
    if (st)
        return st;
    if (!isfinite(*out) || *out < 0.0 || *out >= 1.0)
        return error_set(err, SDXL_ERR_FORMAT, "%s: key \"%s\": %g is not a beta in [0, 1)",
                         doc->name, key, *out);
    return SDXL_OK;
}

/* Options only EulerDiscreteScheduler has. EulerAncestralDiscreteScheduler has none of them,
 * and diffusers ignores them in its config (sdxl-turbo's config sets interpolation_type), so
 * they are read for that class only. */
static sdxl_status read_euler_options(const json_doc *doc, scheduler_config *cfg,
                                      sdxl_error *err)
{
    int index;
    sdxl_status st;
    if ((st = config_get_choice(doc, "interpolation_type", "linear", interpolation_names, &index,
                                err)) ||
        (st = config_require_bool(doc, "use_karras_sigmas", false, err)) ||
        (st = config_require_bool(doc, "use_exponential_sigmas", false, err)) ||
        (st = config_require_bool(doc, "use_beta_sigmas", false, err)))
        return st;
    if ((st = config_get_choice(doc, "timestep_type", "discrete", timestep_type_names, &index,
                                err)))
        return st;
    if (index == 1 && cfg->prediction == SCHEDULER_PREDICTION_V)
        return error_set(err, SDXL_ERR_UNSUPPORTED,
                         "%s: key \"timestep_type\": \"continuous\" with v_prediction is not "
                         "supported (sdxld supports \"discrete\")",
                         doc->name);
    if ((st = config_get_choice(doc, "final_sigmas_type", "zero", final_sigma_names, &index,
                                err)))
        return st;
    cfg->final_sigma = (scheduler_final_sigma)index;
    return SDXL_OK;
}

sdxl_status scheduler_config_read(const json_doc *doc, scheduler_config *cfg, sdxl_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    int index;
    sdxl_status st;
    if ((st = read_class(doc, &cfg->kind, err)) ||
        (st = config_get_int_opt(doc, "num_train_timesteps", 1000, 2,
                                 SCHEDULER_MAX_TRAIN_TIMESTEPS, &cfg->num_train_timesteps, err)) ||
        (st = read_beta(doc, "beta_start", 0.0001, &cfg->beta_start, err)) ||
        (st = read_beta(doc, "beta_end", 0.02, &cfg->beta_end, err)) ||
        (st = config_require_null(doc, "trained_betas", err)) ||
        (st = config_require_bool(doc, "rescale_betas_zero_snr", false, err)) ||
        (st = config_get_int_opt(doc, "steps_offset", 0, 0, SCHEDULER_MAX_TRAIN_TIMESTEPS,
                                 &cfg->steps_offset, err)))
        return st;
    if ((st = config_get_choice(doc, "beta_schedule", "linear", beta_schedule_names, &index,
                                err)))
        return st;
    cfg->beta_schedule = (scheduler_beta_schedule)index;
    if ((st = config_get_choice(doc, "prediction_type", "epsilon", prediction_names, &index,
                                err)))
        return st;
    cfg->prediction = (scheduler_prediction)index;
    if ((st = config_get_choice(doc, "timestep_spacing", "linspace", spacing_names, &index,
                                err)))
        return st;
    cfg->spacing = (scheduler_spacing)index;
    cfg->final_sigma = SCHEDULER_FINAL_SIGMA_ZERO;
    if (cfg->kind == SCHEDULER_EULER)
        return read_euler_options(doc, cfg, err);
    return SDXL_OK;
}

sdxl_status scheduler_config_load(const char *path, scheduler_config *cfg, sdxl_error *err)
{
    json_doc doc;
    sdxl_status st = json_doc_load(&doc, path, 0, err);
    if (st)
        return st;
    st = scheduler_config_read(&doc, cfg, err);
    json_doc_free(&doc);
    return st;
}

/* torch.linspace(start, end, steps, dtype=torch.float32) as its CPU kernel computes it. */
static void linspace_f32(double start_d, double end_d, int steps, float *out)
{
    float start = (float)start_d, end = (float)end_d;
    float step = (end - start) / (float)(steps - 1);
    int halfway = steps / 2;
    for (int i = 0; i < steps; i++)
        out[i] = i < halfway ? fmaf(step, (float)i, start)
                             : fmaf(-step, (float)(steps - 1 - i), end);
}

/* diffusers' betas_for_alpha_bar (cosine), in Python doubles. pow(c, 2.0) is Python's c ** 2. */
static double alpha_bar_cosine(double t)
{
    return pow(cos((t + 0.008) / 1.008 * PI_F64 / 2), 2.0);
}

static void betas_squaredcos_cap_v2(int n, float *out)
{
    for (int i = 0; i < n; i++) {
        double t1 = (double)i / n, t2 = (double)(i + 1) / n;
        double beta = 1 - alpha_bar_cosine(t2) / alpha_bar_cosine(t1);
        out[i] = (float)(0.999 < beta ? 0.999 : beta);
    }
}

sdxl_status scheduler_init(scheduler *s, const scheduler_config *cfg, sdxl_error *err)
{
    memset(s, 0, sizeof *s);
    s->config = *cfg;
    int n = cfg->num_train_timesteps;
    s->alphas_cumprod = malloc((size_t)n * sizeof(float));
    s->train_sigmas = malloc((size_t)n * sizeof(float));
    if (!s->alphas_cumprod || !s->train_sigmas) {
        scheduler_free(s);
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "scheduler: no memory for %d timesteps", n);
    }

    float *betas = s->train_sigmas; /* scratch until the sigmas overwrite it */
    switch (cfg->beta_schedule) {
    case SCHEDULER_BETA_LINEAR:
        linspace_f32(cfg->beta_start, cfg->beta_end, n, betas);
        break;
    case SCHEDULER_BETA_SCALED_LINEAR:
        /* beta_start ** 0.5 is Python's pow; the square is torch's x * x */
        linspace_f32(pow(cfg->beta_start, 0.5), pow(cfg->beta_end, 0.5), n, betas);
        for (int i = 0; i < n; i++)
            betas[i] = betas[i] * betas[i];
        break;
    case SCHEDULER_BETA_SQUAREDCOS_CAP_V2:
        betas_squaredcos_cap_v2(n, betas);
        break;
    }

    double cumprod = 1.0;
    for (int i = 0; i < n; i++) {
        cumprod *= (double)(1.0f - betas[i]);
        s->alphas_cumprod[i] = (float)cumprod;
    }
    for (int i = 0; i < n; i++) {
        float ac = s->alphas_cumprod[i];
        s->train_sigmas[i] = sqrtf((1.0f - ac) / ac);
        if (!(ac > 0.0f) || !isfinite(s->train_sigmas[i])) {
            scheduler_free(s);
            return error_set(err, SDXL_ERR_FORMAT,
                             "scheduler: the beta schedule (beta_start %g, beta_end %g) leaves "
                             "alphas_cumprod %g at timestep %d, so its sigma is not finite; use "
                             "betas below 1 whose product stays above 0",
                             cfg->beta_start, cfg->beta_end, (double)ac, i);
        }
    }
    return SDXL_OK;
}

void scheduler_free(scheduler *s)
{
    free(s->alphas_cumprod);
    free(s->train_sigmas);
    free(s->timesteps);
    free(s->sigmas);
    free(s->sigmas_f64);
    memset(s, 0, sizeof *s);
}

/* numpy's arange(start, stop, step) length for float step: ceil((stop − start) / step). */
static size_t arange_length(double start, double stop, double step)
{
    double len = ceil((stop - start) / step);
    return len > 0 ? (size_t)len : 0;
}

/* The timesteps of each spacing, as numpy computes them (float64, then float32). */
static void timesteps_compute(const scheduler_config *cfg, int steps, size_t count, float *out)
{
    int train = cfg->num_train_timesteps;
    switch (cfg->spacing) {
    case SCHEDULER_SPACING_LINSPACE: {
        /* np.linspace(0, T − 1, steps)[::-1]: i·step, the last exactly T − 1 (one step: 0) */
        double step = steps > 1 ? (double)(train - 1) / (steps - 1) : 0.0;
        for (int i = 0; i < steps; i++) {
            double v = i == steps - 1 && steps > 1 ? (double)(train - 1) : (double)i * step;
            out[steps - 1 - i] = (float)v;
        }
        break;
    }
    case SCHEDULER_SPACING_LEADING: {
        /* (arange(steps) · (T // steps))[::-1] + steps_offset, integers */
        int ratio = train / steps;
        for (int i = 0; i < steps; i++)
            out[steps - 1 - i] = (float)((long long)i * ratio) + (float)cfg->steps_offset;
        break;
    }
    case SCHEDULER_SPACING_TRAILING: {
        /* np.arange(T, 0, −T/steps).round() − 1: numpy fills start + i·delta with
         * delta = (start + step) − start, and rounds half to even */
        double step = -((double)train / steps);
        double start = (double)train;
        double delta = (start + step) - start;
        for (size_t i = 0; i < count; i++) {
            double v = i == 0 ? start : i == 1 ? start + step : start + (double)i * delta;
            out[i] = (float)nearbyint(v) - 1.0f;
        }
        break;
    }
    }
}

/* np.interp(x, arange(n), fp) for one x, in float64 (fp holds float32 values). */
static double interp_index(double x, const float *fp, int n)
{
    if (x < 0.0)
        return fp[0];
    if (x >= (double)(n - 1))
        return fp[n - 1];
    int j = (int)floor(x);
    if ((double)j == x)
        return fp[j];
    /* numpy divides the slope by xp[j + 1] − xp[j], which is 1 here */
    double slope = (double)fp[j + 1] - (double)fp[j];
    return slope * (x - (double)j) + (double)fp[j];
}

/* The scalars of step index over a schedule's timesteps and sigmas ([index + 1] exists). */
static void step_compute(const scheduler_config *cfg, const float *timesteps, const float *sigmas,
                         size_t index, scheduler_step *out)
{
    float sigma = sigmas[index];
    float sigma_next = sigmas[index + 1];
    memset(out, 0, sizeof *out);
    out->index = index;
    out->timestep = timesteps[index];
    out->sigma = sigma;
    out->input_divisor = sqrtf(sigma * sigma + 1.0f);
    out->prediction = cfg->prediction;
    out->v_skip_divisor = sigma * sigma + 1.0f;
    out->v_c_out = -sigma / sqrtf(out->v_skip_divisor);
    if (scheduler_draws_noise(cfg)) {
        /* σ_up = sqrt(σ_to² (σ_from² − σ_to²) / σ_from²), σ_down = sqrt(σ_to² − σ_up²) */
        float to2 = sigma_next * sigma_next, from2 = sigma * sigma;
        float sigma_up = sqrtf(to2 * (from2 - to2) / from2);
        float sigma_down = sqrtf(to2 - sigma_up * sigma_up);
        out->dt = sigma_down - sigma;
        out->sigma_up = sigma_up;
        out->draws_noise = true;
    } else {
        /* s_churn = 0: gamma = 0, sigma_hat = σ · (0 + 1) = σ */
        out->dt = sigma_next - sigma;
    }
}

static bool step_is_finite(const scheduler_step *st)
{
    return isfinite(st->input_divisor) && isfinite(st->v_c_out) && isfinite(st->dt) &&
           isfinite(st->sigma_up);
}

size_t scheduler_timestep_count(const scheduler_config *cfg, int num_inference_steps)
{
    if (cfg->spacing != SCHEDULER_SPACING_TRAILING)
        return (size_t)num_inference_steps;
    double train = (double)cfg->num_train_timesteps;
    return arange_length(train, 0.0, -(train / num_inference_steps));
}

bool scheduler_draws_noise(const scheduler_config *cfg)
{
    return cfg->kind == SCHEDULER_EULER_ANCESTRAL;
}

sdxl_status scheduler_set_timesteps(scheduler *s, int num_inference_steps, sdxl_error *err)
{
    const scheduler_config *cfg = &s->config;
    int train = cfg->num_train_timesteps;
    if (num_inference_steps < 1 || num_inference_steps > train)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "scheduler: %d inference steps is out of range [1, %d] (the model's "
                         "num_train_timesteps)",
                         num_inference_steps, train);
    size_t count = scheduler_timestep_count(cfg, num_inference_steps);

    float *timesteps = malloc(count * sizeof(float));
    float *sigmas = malloc((count + 1) * sizeof(float));
    double *sigmas_f64 = malloc((count + 1) * sizeof(double));
    if (!timesteps || !sigmas || !sigmas_f64) {
        free(timesteps);
        free(sigmas);
        free(sigmas_f64);
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "scheduler: no memory for %zu timesteps",
                         count);
    }
    timesteps_compute(cfg, num_inference_steps, count, timesteps);
    /* Steps are indexed by position. diffusers finds a step's index by its timestep's value, which
     * only agrees when no value repeats: true for every steps ≤ num_train_timesteps. */
    for (size_t i = 1; i < count; i++)
        assert(timesteps[i] < timesteps[i - 1]);

    for (size_t i = 0; i < count; i++) {
        sigmas_f64[i] = interp_index((double)timesteps[i], s->train_sigmas, train);
        sigmas[i] = (float)sigmas_f64[i];
    }
    sigmas[count] = cfg->final_sigma == SCHEDULER_FINAL_SIGMA_MIN ? s->train_sigmas[0] : 0.0f;
    sigmas_f64[count] = (double)sigmas[count];

    /* A schedule whose float32 arithmetic breaks down (e.g. a huge first sigma, where σ_up rounds
     * above the next sigma and σ_down is the root of a negative number) would give NaN latents,
     * as it does in diffusers: refuse it instead. */
    for (size_t i = 0; i < count; i++) {
        scheduler_step st;
        step_compute(cfg, timesteps, sigmas, i, &st);
        if (!step_is_finite(&st)) {
            sdxl_status st_err = error_set(
                err, SDXL_ERR_INVALID_ARGUMENT,
                "scheduler: with %d steps, step %zu (sigma %g to %g) is not finite in float32 "
                "(diffusers would produce NaN); use another number of steps or another beta "
                "schedule",
                num_inference_steps, i, (double)sigmas[i], (double)sigmas[i + 1]);
            free(timesteps);
            free(sigmas);
            free(sigmas_f64);
            return st_err;
        }
    }

    float max_sigma = sigmas[0];
    for (size_t i = 1; i <= count; i++)
        max_sigma = sigmas[i] > max_sigma ? sigmas[i] : max_sigma;
    s->init_noise_sigma = cfg->spacing == SCHEDULER_SPACING_LEADING
                              ? sqrtf(max_sigma * max_sigma + 1.0f)
                              : max_sigma;

    free(s->timesteps);
    free(s->sigmas);
    free(s->sigmas_f64);
    s->timesteps = timesteps;
    s->sigmas = sigmas;
    s->sigmas_f64 = sigmas_f64;
    s->count = count;
    s->num_inference_steps = num_inference_steps;
    return SDXL_OK;
}

size_t scheduler_img2img_begin(int num_inference_steps, double strength)
{
    assert(num_inference_steps >= 0 && strength >= 0.0 && strength <= 1.0);
    /* Python: int(steps * strength) truncates the double product */
    long long init_timestep = (long long)((double)num_inference_steps * strength);
    if (init_timestep > num_inference_steps)
        init_timestep = num_inference_steps;
    return (size_t)(num_inference_steps - init_timestep);
}

void scheduler_step_at(const scheduler *s, size_t index, scheduler_step *out)
{
    assert(index < s->count);
    step_compute(&s->config, s->timesteps, s->sigmas, index, out);
}
