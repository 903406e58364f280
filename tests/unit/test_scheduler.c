/*
 * test_scheduler.c — the Euler schedulers against scheduler.safetensors (diffusers 0.31 on
 * sdxl-turbo's config and variants of it), the img2img strength rule, and the configs that must
 * be refused.
 *
 * Tolerances. Values that involve no square root must be equal bit for bit: alphas_cumprod,
 * timesteps, step counts and begin indices, the ancestral noise. Values after a square root
 * may differ by an ulp: torch computes float sqrt through MKL's VML, whose result depends on the
 * CPU — on Intel (MKL's FMA code path) it is the correctly rounded root that sdxld computes, but
 * on other x86 CPUs MKL takes an SSE path built on rsqrtps that is 1 ulp off for ~17% of inputs.
 * So sigmas and init_noise_sigma may be 1 ulp apart, the float64 sigmas (interpolated between
 * two such floats) 2^-22 relatively, and the latents of the step chain — a few float32 ops on those — 1e-6
 * relative (the chain's values are O(1..15), the ulp effects O(1e-7)).
 *
 * The formulas over latents (scheduler_apply.h) run as ops of the cpu backend, on the goldens'
 * values as flat [n] tensors (every op is element-wise, so the layout does not matter). Where
 * no golden exists (v_prediction, the initial noise), they must give the bits of the formula
 * computed here in float32, one rounding per torch op.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/rng.h"
#include "engine/scheduler.h"
#include "engine/scheduler_apply.h"
#include "support/backend_test.h"
#include "support/golden.h"
#include "support/paths.h"

#define SIGMA_MAX_ULPS 1
#define F64_SIGMA_REL 0x1p-22
#define CHAIN_REL_L2 1e-6
#define CHAIN_MAX_ABS 1e-5

/* Room in a test arena for `tensors` tensors of n floats. */
static size_t arena_bytes(size_t tensors, size_t n)
{
    return tensors * (n * sizeof(float) + TENSOR_ALIGN);
}

static void expect_ok(sdxl_status st, const sdxl_error *err)
{
    if (st != SDXL_OK)
        fail_msg("%s: %s", sdxl_status_name(st), err->message);
}

static const char *const variants[] = {"euler_a", "euler", "euler_a_leading", "euler_a_linspace",
                                       "euler_a_linear"};
static const int step_counts[] = {1, 2, 3, 4, 8, 50};

/* Distance in representable floats (0 when bitwise equal; −0 and +0 are 1 apart). */
static uint32_t ulp_distance(float a, float b)
{
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    int64_t oa = ia < 0 ? (int64_t)INT32_MIN - ia - 1 : ia;
    int64_t ob = ib < 0 ? (int64_t)INT32_MIN - ib - 1 : ib;
    int64_t d = oa > ob ? oa - ob : ob - oa;
    return d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

static bool within_ulps(const char *label, const float *got, const float *want, size_t n,
                        uint32_t max_ulps)
{
    uint32_t worst = 0;
    size_t differing = 0, at = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t d = ulp_distance(got[i], want[i]);
        differing += d != 0;
        if (d > worst) {
            worst = d;
            at = i;
        }
    }
    printf("%s %s: n=%zu, %zu differ, max %u ulp at [%zu] (%.9g vs %.9g), tolerance %u ulp\n",
           worst <= max_ulps ? "ok  " : "FAIL", label, n, differing, worst, at, (double)got[at],
           (double)want[at], max_ulps);
    return worst <= max_ulps;
}

static bool within_rel_f64(const char *label, const double *got, const double *want, size_t n,
                           double max_rel)
{
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double rel = fabs(got[i] - want[i]) / (fabs(want[i]) > 0 ? fabs(want[i]) : 1.0);
        worst = rel > worst || isnan(rel) ? rel : worst;
    }
    printf("%s %s: n=%zu, max rel err %.3g, tolerance %.3g\n",
           worst <= max_rel ? "ok  " : "FAIL", label, n, worst, max_rel);
    return worst <= max_rel;
}

static float *get_f32(const golden *g, const char *name, size_t expect_numel)
{
    sdxl_error err;
    golden_shape shape;
    float *data;
    GOLDEN_ASSERT_OK(golden_get(g, name, &shape, &data, &err), err);
    if (expect_numel)
        assert_int_equal(shape.numel, expect_numel);
    return data;
}

static int64_t get_i64(const golden *g, const char *name)
{
    sdxl_error err;
    golden_shape shape;
    int64_t *data;
    GOLDEN_ASSERT_OK(golden_get_i64(g, name, &shape, &data, &err), err);
    assert_int_equal(shape.numel, 1);
    int64_t value = data[0];
    free(data);
    return value;
}

static void init_variant(const golden *g, const char *variant, scheduler *s)
{
    char key[64];
    snprintf(key, sizeof key, "config.%s", variant);
    const char *text = golden_meta(g, key);
    assert_non_null(text);
    sdxl_error err;
    json_doc doc;
    scheduler_config cfg;
    GOLDEN_ASSERT_OK(json_doc_parse(&doc, text, strlen(text), key, &err), err);
    GOLDEN_ASSERT_OK(scheduler_config_read(&doc, &cfg, &err), err);
    json_doc_free(&doc);
    /* The tool instantiates the class itself (README's variant table); the JSON keeps turbo's
     * _class_name, which names the ancestral class. */
    if (strcmp(variant, "euler") == 0)
        cfg.kind = SCHEDULER_EULER;
    GOLDEN_ASSERT_OK(scheduler_init(s, &cfg, &err), err);
}

static void test_schedules_equal_diffusers_for_every_variant_and_step_count(void **state)
{
    sdxl_error err;
    golden g;
    GOLDEN_ASSERT_OK(golden_open(&g, "scheduler.safetensors", &err), err);
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
        scheduler s;
        init_variant(&g, variants[v], &s);
        char name[96];
        snprintf(name, sizeof name, "%s.alphas_cumprod", variants[v]);
        float *want = get_f32(&g, name, (size_t)s.config.num_train_timesteps);
        assert_true(within_ulps(name, s.alphas_cumprod, want, (size_t)s.config.num_train_timesteps,
                                0));
        free(want);
        for (size_t k = 0; k < sizeof step_counts / sizeof step_counts[0]; k++) {
            int n = step_counts[k];
            GOLDEN_ASSERT_OK(scheduler_set_timesteps(&s, n, &err), err);
            assert_int_equal(s.count, (size_t)n);

            snprintf(name, sizeof name, "%s.steps%d.timesteps", variants[v], n);
            want = get_f32(&g, name, s.count);
            assert_true(within_ulps(name, s.timesteps, want, s.count, 0));
            free(want);

            snprintf(name, sizeof name, "%s.steps%d.sigmas", variants[v], n);
            want = get_f32(&g, name, s.count + 1);
            assert_true(within_ulps(name, s.sigmas, want, s.count + 1, SIGMA_MAX_ULPS));
            free(want);

            snprintf(name, sizeof name, "%s.steps%d.sigmas_f64", variants[v], n);
            golden_shape shape;
            double *want64;
            GOLDEN_ASSERT_OK(golden_get_f64(&g, name, &shape, &want64, &err), err);
            assert_int_equal(shape.numel, s.count + 1);
            assert_true(within_rel_f64(name, s.sigmas_f64, want64, s.count + 1, F64_SIGMA_REL));
            free(want64);

            snprintf(name, sizeof name, "%s.steps%d.init_noise_sigma", variants[v], n);
            want = get_f32(&g, name, 1);
            assert_true(within_ulps(name, &s.init_noise_sigma, want, 1, SIGMA_MAX_ULPS));
            free(want);
        }
        scheduler_free(&s);
    }
    golden_close(&g);
}

/* set_timesteps(4), then four steps from one sample with the same model output, noise from one
 * generator: euler_a draws one [1,4,8,8] normal per step (the last too), euler none. */
static void check_step_chain(const char *variant)
{
    sdxl_error err;
    golden g;
    GOLDEN_ASSERT_OK(golden_open(&g, "scheduler.safetensors", &err), err);
    scheduler s;
    init_variant(&g, variant, &s);
    GOLDEN_ASSERT_OK(scheduler_set_timesteps(&s, 4, &err), err);

    char name[96];
    snprintf(name, sizeof name, "%s.step.sample", variant);
    golden_shape shape;
    float *sample;
    GOLDEN_ASSERT_OK(golden_get(&g, name, &shape, &sample, &err), err);
    size_t n = shape.numel;
    snprintf(name, sizeof name, "%s.step.model_output", variant);
    float *model_output = get_f32(&g, name, n);
    snprintf(name, sizeof name, "%s.step.seed", variant);
    rng_generator gen;
    rng_seed(&gen, (uint64_t)get_i64(&g, name));

    backend *be = bt_backend("cpu", 2);
    arena a;
    bt_arena(&a, arena_bytes(6, n));
    int64_t dims[1] = {(int64_t)n};
    tensor x = bt_input(be, &a, 1, dims, sample), m = bt_input(be, &a, 1, dims, model_output);
    tensor noise = bt_output(be, &a, 1, dims), scaled = bt_output(be, &a, 1, dims);
    tensor pred = bt_output(be, &a, 1, dims), tmp = bt_output(be, &a, 1, dims);
    float *noise_host = malloc(n * sizeof(float));
    assert_non_null(noise_host);
    size_t k = 0;
    for (; k < s.count; k++) {
        scheduler_step st;
        scheduler_step_at(&s, k, &st);
        assert_int_equal(st.draws_noise, strcmp(variant, "euler_a") == 0);
        expect_ok(scheduler_apply_scale_input(be, &st, &x, &scaled, &err), &err);
        if (st.draws_noise) {
            rng_randn_f32(&gen, noise_host, n);
            snprintf(name, sizeof name, "%s.step.k%zu.noise", variant, k);
            float *want_noise = get_f32(&g, name, n);
            assert_true(within_ulps(name, noise_host, want_noise, n, 0));
            free(want_noise);
            expect_ok(backend_tensor_write(be, &noise, DTYPE_F32, noise_host, n, &err), &err);
        }
        expect_ok(scheduler_apply_pred_original(be, &st, &x, &m, &pred, &err), &err);
        expect_ok(scheduler_apply_step(be, &st, &x, &m, st.draws_noise ? &noise : NULL, &x, &tmp,
                                       &err),
                  &err);

        const char *fields[] = {"scaled", "pred_original", "prev_sample"};
        const tensor *got[] = {&scaled, &pred, &x};
        for (int f = 0; f < 3; f++) {
            snprintf(name, sizeof name, "%s.step.k%zu.%s", variant, k, fields[f]);
            float *want = get_f32(&g, name, n);
            float *values = bt_read(be, got[f]);
            GOLDEN_ASSERT_CLOSE(name, values, want, n, CHAIN_MAX_ABS, CHAIN_REL_L2);
            free(values);
            free(want);
        }
    }
    assert_int_equal(k, 4);
    snprintf(name, sizeof name, "%s.step.k%zu.scaled", variant, k);
    assert_false(golden_has(&g, name));

    free(noise_host);
    arena_free(&a);
    backend_destroy(be);
    free(sample);
    free(model_output);
    scheduler_free(&s);
    golden_close(&g);
}

static void test_ancestral_steps_equal_diffusers_drawing_noise_every_step(void **state)
{
    check_step_chain("euler_a");
}

static void test_euler_steps_equal_diffusers_without_noise(void **state)
{
    check_step_chain("euler");
}

/* StableDiffusionXLImg2ImgPipeline.get_timesteps and add_noise at the first timestep run. */
static void test_img2img_strength_rule_and_add_noise_equal_diffusers(void **state)
{
    sdxl_error err;
    golden g;
    GOLDEN_ASSERT_OK(golden_open(&g, "scheduler.safetensors", &err), err);
    golden_shape shape;
    float *original, *noise;
    GOLDEN_ASSERT_OK(golden_get(&g, "add_noise.original", &shape, &original, &err), err);
    size_t n = shape.numel;
    noise = get_f32(&g, "add_noise.noise", n);
    backend *be = bt_backend("cpu", 2);
    arena a;
    bt_arena(&a, arena_bytes(3, n));
    int64_t dims[1] = {(int64_t)n};
    tensor original_t = bt_input(be, &a, 1, dims, original);
    tensor noise_t = bt_input(be, &a, 1, dims, noise), out_t = bt_output(be, &a, 1, dims);
    int cases = 0;
    for (;; cases++) {
        char name[96];
        snprintf(name, sizeof name, "strength.%d.steps", cases);
        if (!golden_has(&g, name))
            break;
        int steps = (int)get_i64(&g, name);
        snprintf(name, sizeof name, "strength.%d.strength", cases);
        double *strength;
        GOLDEN_ASSERT_OK(golden_get_f64(&g, name, &shape, &strength, &err), err);
        size_t begin = scheduler_img2img_begin(steps, strength[0]);
        free(strength);
        snprintf(name, sizeof name, "strength.%d.begin_index", cases);
        assert_int_equal(begin, get_i64(&g, name));

        scheduler s;
        init_variant(&g, "euler_a", &s);
        GOLDEN_ASSERT_OK(scheduler_set_timesteps(&s, steps, &err), err);
        snprintf(name, sizeof name, "strength.%d.num_steps", cases);
        assert_int_equal(s.count - begin, get_i64(&g, name));
        snprintf(name, sizeof name, "strength.%d.timesteps", cases);
        if (begin == s.count) {
            assert_false(golden_has(&g, name));
        } else {
            float *want = get_f32(&g, name, s.count - begin);
            assert_true(within_ulps(name, s.timesteps + begin, want, s.count - begin, 0));
            free(want);
            snprintf(name, sizeof name, "strength.%d.add_noise_out", cases);
            want = get_f32(&g, name, n);
            expect_ok(scheduler_apply_add_noise(be, &s, begin, &original_t, &noise_t, &out_t,
                                                &err),
                      &err);
            float *out = bt_read(be, &out_t);
            GOLDEN_ASSERT_CLOSE(name, out, want, n, CHAIN_MAX_ABS, CHAIN_REL_L2);
            free(out);
            free(want);
        }
        scheduler_free(&s);
    }
    assert_true(cases > 0);
    arena_free(&a);
    backend_destroy(be);
    free(original);
    free(noise);
    golden_close(&g);
}

static sdxl_status read_config_text(const char *text, scheduler_config *cfg, sdxl_error *err)
{
    json_doc doc;
    sdxl_status st = json_doc_parse(&doc, text, strlen(text), "scheduler_config.json", err);
    if (st)
        return st;
    st = scheduler_config_read(&doc, cfg, err);
    json_doc_free(&doc);
    return st;
}

/* A scheduler from a config text, with its timesteps set. */
static void init_from_text(const char *text, int steps, scheduler *s)
{
    sdxl_error err;
    scheduler_config cfg;
    GOLDEN_ASSERT_OK(read_config_text(text, &cfg, &err), err);
    GOLDEN_ASSERT_OK(scheduler_init(s, &cfg, &err), err);
    GOLDEN_ASSERT_OK(scheduler_set_timesteps(s, steps, &err), err);
}

/* v_prediction has no golden chain: each step must give the bits of diffusers' formula,
 * pred_original = model_output · (−σ / sqrt(σ² + 1)) + sample / (σ² + 1), then the Euler
 * (ancestral) update, in float32 with one rounding per torch op. */
static void test_v_prediction_steps_equal_the_formula_bit_for_bit(void **state)
{
    static const char *const configs[] = {
        "{\"_class_name\": \"EulerAncestralDiscreteScheduler\", \"prediction_type\": "
        "\"v_prediction\", \"timestep_spacing\": \"trailing\"}",
        "{\"_class_name\": \"EulerDiscreteScheduler\", \"prediction_type\": \"v_prediction\"}",
    };
    const size_t n = 1000;
    uint64_t rng = 77;
    float *x = bt_random(&rng, n, 4.0f), *m = bt_random(&rng, n, 2.0f);
    float *noise = bt_random(&rng, n, 1.0f);
    float *x0 = malloc(n * sizeof(float)), *want = malloc(n * sizeof(float));
    assert_true(x0 && want);
    backend *be = bt_backend("cpu", 2);
    arena a;
    bt_arena(&a, arena_bytes(6, n));
    int64_t dims[1] = {(int64_t)n};
    tensor xt = bt_input(be, &a, 1, dims, x), mt = bt_input(be, &a, 1, dims, m);
    tensor nt = bt_input(be, &a, 1, dims, noise), pred = bt_output(be, &a, 1, dims);
    tensor tmp = bt_output(be, &a, 1, dims), prev = bt_output(be, &a, 1, dims);
    sdxl_error err;
    for (size_t c = 0; c < sizeof configs / sizeof configs[0]; c++) {
        scheduler s;
        init_from_text(configs[c], 3, &s);
        for (size_t k = 0; k < s.count; k++) {
            scheduler_step st;
            scheduler_step_at(&s, k, &st);
            assert_int_equal(st.prediction, SCHEDULER_PREDICTION_V);
            for (size_t i = 0; i < n; i++) {
                x0[i] = m[i] * st.v_c_out + x[i] / st.v_skip_divisor;
                float derivative = (x[i] - x0[i]) / st.sigma;
                want[i] = x[i] + derivative * st.dt;
                if (st.draws_noise)
                    want[i] = want[i] + noise[i] * st.sigma_up;
            }
            expect_ok(scheduler_apply_pred_original(be, &st, &xt, &mt, &pred, &err), &err);
            expect_ok(scheduler_apply_step(be, &st, &xt, &mt, &nt, &prev, &tmp, &err), &err);
            float *got_x0 = bt_read(be, &pred), *got = bt_read(be, &prev);
            char label[64];
            snprintf(label, sizeof label, "v_prediction config %zu step %zu x0", c, k);
            assert_true(within_ulps(label, got_x0, x0, n, 0));
            snprintf(label, sizeof label, "v_prediction config %zu step %zu prev", c, k);
            assert_true(within_ulps(label, got, want, n, 0));
            free(got_x0);
            free(got);
        }
        scheduler_free(&s);
    }
    arena_free(&a);
    backend_destroy(be);
    free(x);
    free(m);
    free(noise);
    free(x0);
    free(want);
}

/* txt2img's latents are randn · init_noise_sigma exactly as torch multiplies: the sign of a
 * zero included (a product of −0 stays −0). */
static void test_initial_noise_is_the_product_bit_for_bit(void **state)
{
    scheduler s;
    init_from_text("{\"_class_name\": \"EulerAncestralDiscreteScheduler\", "
                   "\"timestep_spacing\": \"leading\"}",
                   4, &s);
    const float noise[8] = {1.5f, -0.0f, 0.0f, -2.25f, 3.0e-38f, -1.0e-30f, 0.7f, -4.0f};
    float want[8];
    for (int i = 0; i < 8; i++)
        want[i] = noise[i] * s.init_noise_sigma;
    backend *be = bt_backend("cpu", 1);
    arena a;
    bt_arena(&a, arena_bytes(2, 8));
    int64_t dims[1] = {8};
    tensor nt = bt_input(be, &a, 1, dims, noise), out = bt_output(be, &a, 1, dims);
    sdxl_error err;
    expect_ok(scheduler_apply_initial_noise(be, &s, &nt, &out, &err), &err);
    float *got = bt_read(be, &out);
    assert_memory_equal(got, want, sizeof want);
    assert_true(signbit(got[1]));
    free(got);
    arena_free(&a);
    backend_destroy(be);
    scheduler_free(&s);
}

static void test_sdxl_turbo_config_reads_as_trailing_scaled_linear_ancestral(void **state)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/models/configs/sdxl-turbo/scheduler/scheduler_config.json",
             test_source_dir());
    sdxl_error err;
    scheduler_config cfg;
    GOLDEN_ASSERT_OK(scheduler_config_load(path, &cfg, &err), err);
    assert_int_equal(cfg.kind, SCHEDULER_EULER_ANCESTRAL);
    assert_int_equal(cfg.num_train_timesteps, 1000);
    assert_int_equal(cfg.beta_schedule, SCHEDULER_BETA_SCALED_LINEAR);
    assert_int_equal(cfg.spacing, SCHEDULER_SPACING_TRAILING);
    assert_int_equal(cfg.prediction, SCHEDULER_PREDICTION_EPSILON);
    assert_int_equal(cfg.steps_offset, 1);
    assert_true(cfg.beta_start == 0.00085 && cfg.beta_end == 0.012);
}

static void expect_refused(const char *text, sdxl_status code, const char *needle1,
                           const char *needle2)
{
    sdxl_error err = {0};
    scheduler_config cfg;
    sdxl_status st = read_config_text(text, &cfg, &err);
    printf("%s\n  -> %s: %s\n", text, sdxl_status_name(st), err.message);
    assert_int_equal(st, code);
    assert_non_null(strstr(err.message, needle1));
    if (needle2)
        assert_non_null(strstr(err.message, needle2));
}

static void test_unknown_class_is_refused_naming_it_and_the_supported_ones(void **state)
{
    expect_refused("{\"_class_name\": \"DPMSolverMultistepScheduler\"}", SDXL_ERR_UNSUPPORTED,
                   "DPMSolverMultistepScheduler", "EulerAncestralDiscreteScheduler");
    expect_refused("{\"_class_name\": \"LCMScheduler\"}", SDXL_ERR_UNSUPPORTED,
                   "EulerDiscreteScheduler", "LCMScheduler");
}

static void test_unsupported_options_and_bad_values_are_refused(void **state)
{
    expect_refused("{\"_class_name\": \"EulerDiscreteScheduler\", \"use_karras_sigmas\": true}",
                   SDXL_ERR_UNSUPPORTED, "use_karras_sigmas", NULL);
    expect_refused("{\"_class_name\": \"EulerDiscreteScheduler\", "
                   "\"interpolation_type\": \"log_linear\"}",
                   SDXL_ERR_UNSUPPORTED, "log_linear", NULL);
    expect_refused("{\"_class_name\": \"EulerDiscreteScheduler\", "
                   "\"prediction_type\": \"v_prediction\", \"timestep_type\": \"continuous\"}",
                   SDXL_ERR_UNSUPPORTED, "continuous", NULL);
    expect_refused("{\"_class_name\": \"EulerAncestralDiscreteScheduler\", "
                   "\"prediction_type\": \"sample\"}",
                   SDXL_ERR_UNSUPPORTED, "prediction_type", "sample");
    expect_refused("{\"_class_name\": \"EulerAncestralDiscreteScheduler\", "
                   "\"beta_schedule\": \"sigmoid\"}",
                   SDXL_ERR_UNSUPPORTED, "sigmoid", "scaled_linear");
    expect_refused("{\"_class_name\": \"EulerAncestralDiscreteScheduler\", "
                   "\"timestep_spacing\": \"uniform\"}",
                   SDXL_ERR_UNSUPPORTED, "timestep_spacing", "trailing");
    expect_refused("{\"_class_name\": \"EulerAncestralDiscreteScheduler\", "
                   "\"trained_betas\": [0.1, 0.2]}",
                   SDXL_ERR_UNSUPPORTED, "trained_betas", NULL);
    expect_refused("{\"_class_name\": \"EulerAncestralDiscreteScheduler\", "
                   "\"rescale_betas_zero_snr\": true}",
                   SDXL_ERR_UNSUPPORTED, "rescale_betas_zero_snr", NULL);
    expect_refused("{\"_class_name\": \"EulerAncestralDiscreteScheduler\", "
                   "\"num_train_timesteps\": 1}",
                   SDXL_ERR_FORMAT, "num_train_timesteps", NULL);
    expect_refused("{\"_class_name\": \"EulerAncestralDiscreteScheduler\", \"beta_start\": -0.1}",
                   SDXL_ERR_FORMAT, "beta_start", NULL);
    expect_refused("{\"_class_name\": \"EulerAncestralDiscreteScheduler\", \"beta_end\": \"x\"}",
                   SDXL_ERR_FORMAT, "beta_end", NULL);
}

/* EulerAncestralDiscreteScheduler has no use_karras_sigmas: diffusers ignores the key there. */
static void test_ancestral_ignores_options_it_does_not_have(void **state)
{
    sdxl_error err;
    scheduler_config cfg;
    GOLDEN_ASSERT_OK(read_config_text("{\"_class_name\": \"EulerAncestralDiscreteScheduler\", "
                                      "\"use_karras_sigmas\": true, "
                                      "\"interpolation_type\": \"log_linear\"}",
                                      &cfg, &err),
                     err);
    assert_int_equal(cfg.kind, SCHEDULER_EULER_ANCESTRAL);
}

/* Betas that drive alphas_cumprod to 0 give infinite sigmas: refused when building. */
static void test_schedule_with_infinite_sigma_is_refused(void **state)
{
    sdxl_error err = {0};
    scheduler_config cfg;
    GOLDEN_ASSERT_OK(read_config_text("{\"_class_name\": \"EulerAncestralDiscreteScheduler\", "
                                      "\"beta_start\": 0.5, \"beta_end\": 0.999}",
                                      &cfg, &err),
                     err);
    scheduler s;
    assert_int_equal(scheduler_init(&s, &cfg, &err), SDXL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "alphas_cumprod"));
}

static void test_step_counts_outside_one_to_train_timesteps_are_refused(void **state)
{
    sdxl_error err;
    scheduler_config cfg;
    GOLDEN_ASSERT_OK(read_config_text("{\"_class_name\": \"EulerAncestralDiscreteScheduler\"}",
                                      &cfg, &err),
                     err);
    scheduler s;
    GOLDEN_ASSERT_OK(scheduler_init(&s, &cfg, &err), err);
    assert_int_equal(scheduler_set_timesteps(&s, 0, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_int_equal(scheduler_set_timesteps(&s, 1001, &err), SDXL_ERR_INVALID_ARGUMENT);
    GOLDEN_ASSERT_OK(scheduler_set_timesteps(&s, 1000, &err), err);
    assert_int_equal(s.count, 1000);
    scheduler_free(&s);
}

/* diffusers' "trailing" timesteps come from np.arange(1000, 0, -1000/61), which numpy makes 62
 * long; the 62nd timestep, round(≈0) − 1 = −1, interpolates to the smallest training sigma, and
 * diffusers runs all 62. */
static void test_trailing_quirk_adds_a_timestep_for_61_of_1000(void **state)
{
    sdxl_error err;
    scheduler_config cfg;
    GOLDEN_ASSERT_OK(read_config_text("{\"_class_name\": \"EulerAncestralDiscreteScheduler\", "
                                      "\"timestep_spacing\": \"trailing\"}",
                                      &cfg, &err),
                     err);
    scheduler s;
    GOLDEN_ASSERT_OK(scheduler_init(&s, &cfg, &err), err);
    GOLDEN_ASSERT_OK(scheduler_set_timesteps(&s, 61, &err), err);
    assert_int_equal(s.count, 62);
    assert_true(s.timesteps[0] == 999.0f && s.timesteps[61] == -1.0f);
    assert_true(s.sigmas[61] == s.train_sigmas[0] && s.sigmas[62] == 0.0f);
    GOLDEN_ASSERT_OK(scheduler_set_timesteps(&s, 60, &err), err);
    assert_int_equal(s.count, 60);
    scheduler_free(&s);
}

/* squaredcos_cap_v2 with trailing spacing: the first sigma is ~20291, and with 3 steps σ_up
 * rounds above the next sigma in float32, so diffusers' σ_down (and every latent) is NaN; with
 * 2 or 4 steps diffusers is finite. */
static void test_schedule_whose_step_is_nan_in_diffusers_is_refused(void **state)
{
    sdxl_error err = {0};
    scheduler_config cfg;
    GOLDEN_ASSERT_OK(read_config_text("{\"_class_name\": \"EulerAncestralDiscreteScheduler\", "
                                      "\"beta_schedule\": \"squaredcos_cap_v2\", "
                                      "\"timestep_spacing\": \"trailing\"}",
                                      &cfg, &err),
                     err);
    scheduler s;
    GOLDEN_ASSERT_OK(scheduler_init(&s, &cfg, &err), err);
    GOLDEN_ASSERT_OK(scheduler_set_timesteps(&s, 2, &err), err);
    assert_int_equal(scheduler_set_timesteps(&s, 3, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "3 steps"));
    assert_int_equal(s.count, 2); /* the previous schedule is kept */
    GOLDEN_ASSERT_OK(scheduler_set_timesteps(&s, 4, &err), err);
    scheduler_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedules_equal_diffusers_for_every_variant_and_step_count),
        cmocka_unit_test(test_ancestral_steps_equal_diffusers_drawing_noise_every_step),
        cmocka_unit_test(test_euler_steps_equal_diffusers_without_noise),
        cmocka_unit_test(test_img2img_strength_rule_and_add_noise_equal_diffusers),
        cmocka_unit_test(test_v_prediction_steps_equal_the_formula_bit_for_bit),
        cmocka_unit_test(test_initial_noise_is_the_product_bit_for_bit),
        cmocka_unit_test(test_sdxl_turbo_config_reads_as_trailing_scaled_linear_ancestral),
        cmocka_unit_test(test_unknown_class_is_refused_naming_it_and_the_supported_ones),
        cmocka_unit_test(test_unsupported_options_and_bad_values_are_refused),
        cmocka_unit_test(test_ancestral_ignores_options_it_does_not_have),
        cmocka_unit_test(test_schedule_with_infinite_sigma_is_refused),
        cmocka_unit_test(test_step_counts_outside_one_to_train_timesteps_are_refused),
        cmocka_unit_test(test_trailing_quirk_adds_a_timestep_for_61_of_1000),
        cmocka_unit_test(test_schedule_whose_step_is_nan_in_diffusers_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
