/*
 * test_golden_files.c — every committed golden file opens through sdxld's own safetensors
 * reader and has the names, dtypes and shapes that tests/golden/data/README.md promises, and
 * the relations between its tensors hold (padding of token ids, concatenation of the text
 * embeddings, the VAE's input image from its pixels, seeds that share their low 32 bits giving
 * the same normals...). The tests of the engine can then read the files without re-checking.
 * Also checks golden_compare's error measures on known inputs.
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

#include "support/golden.h"

#define ANY (-1)
#define NAME_MAX_LEN 128
#define CLIP_LENGTH 77
#define CLIP_BOS 49406
#define CLIP_EOS 49407

static const char *const model_names[] = {"tiny-a", "tiny-b"};

static void open_golden(golden *g, const char *file)
{
    sdxl_error err = {0};
    GOLDEN_ASSERT_OK(golden_open(g, file, &err), err);
}

/* Calls check on the file of this kind ("text", "unet", "vae", "pipeline") of each tiny model. */
static void check_each_model_file(const char *kind, void (*check)(const golden *g))
{
    for (size_t m = 0; m < 2; m++) {
        golden g;
        sdxl_error err = {0};
        GOLDEN_ASSERT_OK(golden_open_model(&g, kind, model_names[m], &err), err);
        check(&g);
        golden_close(&g);
    }
}

/* Tensor and metadata names are built from printf formats: "p%d.hidden1", i. */
#define FORMAT_NAME(name, fmt)                                                                   \
    char name[NAME_MAX_LEN];                                                                     \
    do {                                                                                         \
        va_list ap_;                                                                             \
        va_start(ap_, fmt);                                                                      \
        vsnprintf(name, sizeof name, fmt, ap_);                                                  \
        va_end(ap_);                                                                             \
    } while (0)

/* Helpers taking a printf-style name (declared so the compiler checks their arguments). */
static void expect_tensor(const golden *g, dtype type, int ndim, const int64_t *dims,
                          golden_shape *shape, const char *fmt, ...) SDXL_PRINTF(6, 7);
static bool has_tensor(const golden *g, const char *fmt, ...) SDXL_PRINTF(2, 3);
static const char *meta(const golden *g, const char *fmt, ...) SDXL_PRINTF(2, 3);
static float *get_floats(const golden *g, golden_shape *shape, const char *fmt, ...)
    SDXL_PRINTF(3, 4);
static int64_t *get_ints(const golden *g, golden_shape *shape, const char *fmt, ...)
    SDXL_PRINTF(3, 4);
static int64_t get_scalar_int(const golden *g, const char *fmt, ...) SDXL_PRINTF(2, 3);

static void fill_shape(const st_tensor *t, golden_shape *shape)
{
    shape->ndim = t->ndim;
    for (int i = 0; i < SAFETENSORS_MAX_DIMS; i++)
        shape->dims[i] = i < t->ndim ? t->shape[i] : 0;
    shape->numel = t->numel;
}

/* Checks that the tensor exists with dtype type and shape dims (ANY matches any size); its
 * actual shape goes to *shape when shape is not NULL. */
static void expect_tensor(const golden *g, dtype type, int ndim, const int64_t *dims,
                          golden_shape *shape, const char *fmt, ...)
{
    FORMAT_NAME(name, fmt);
    const st_tensor *t = safetensors_find(&g->st, name);
    if (!t)
        fail_msg("%s: no tensor %s", g->st.path, name);
    if (t->type != type)
        fail_msg("%s: %s is %s, README says %s", g->st.path, name, dtype_name(t->type),
                 dtype_name(type));
    if (t->ndim != ndim)
        fail_msg("%s: %s has %d dims, README says %d", g->st.path, name, t->ndim, ndim);
    for (int i = 0; i < ndim; i++) {
        if (dims[i] != ANY && t->shape[i] != dims[i])
            fail_msg("%s: %s dim %d is %lld, README says %lld", g->st.path, name, i,
                     (long long)t->shape[i], (long long)dims[i]);
    }
    if (shape)
        fill_shape(t, shape);
}

static bool has_tensor(const golden *g, const char *fmt, ...)
{
    FORMAT_NAME(name, fmt);
    return golden_has(g, name);
}

static const char *meta(const golden *g, const char *fmt, ...)
{
    FORMAT_NAME(key, fmt);
    return golden_meta(g, key);
}

/* The tensor as floats / integers, freed by the caller. */
static float *get_floats(const golden *g, golden_shape *shape, const char *fmt, ...)
{
    FORMAT_NAME(name, fmt);
    sdxl_error err = {0};
    float *data = NULL;
    GOLDEN_ASSERT_OK(golden_get(g, name, shape, &data, &err), err);
    return data;
}

static int64_t *get_ints(const golden *g, golden_shape *shape, const char *fmt, ...)
{
    FORMAT_NAME(name, fmt);
    sdxl_error err = {0};
    int64_t *data = NULL;
    GOLDEN_ASSERT_OK(golden_get_i64(g, name, shape, &data, &err), err);
    return data;
}

static int64_t get_scalar_int(const golden *g, const char *fmt, ...)
{
    FORMAT_NAME(name, fmt);
    golden_shape s;
    int64_t *v = get_ints(g, &s, "%s", name);
    assert_int_equal(s.numel, 1);
    int64_t x = v[0];
    free(v);
    return x;
}

/* --- golden_compare itself --- */

static void test_compare_reports_max_abs_and_relative_l2(void **state)
{
    (void)state;
    const float expected[4] = {3.0f, 4.0f, 0.0f, 0.0f};
    const float close[4] = {3.0f, 4.0f, 0.0f, 0.5f}; /* |diff| 0.5, rel L2 0.5 / 5 = 0.1 */
    assert_true(golden_compare("exact", expected, expected, 4, 0.0, 0.0));
    assert_true(golden_compare("within", close, expected, 4, 0.5, 0.1));
    assert_false(golden_compare("abs over", close, expected, 4, 0.49, INFINITY));
    assert_false(golden_compare("rel over", close, expected, 4, INFINITY, 0.099));
    const float nan_one[4] = {3.0f, NAN, 0.0f, 0.0f};
    assert_false(golden_compare("nan", nan_one, expected, 4, INFINITY, INFINITY));
    assert_true(golden_compare("nan both", nan_one, nan_one, 4, 0.0, 0.0));
    const float zeros[2] = {0.0f, 0.0f}, tiny[2] = {0.0f, 1e-30f};
    assert_true(golden_compare("zero ref", zeros, zeros, 2, 0.0, 0.0));
    assert_false(golden_compare("zero ref, nonzero actual", tiny, zeros, 2, INFINITY, 1.0));
    const int64_t a[3] = {1, 2, 3}, b[3] = {1, 2, 4};
    assert_true(golden_compare_i64("ids equal", a, a, 3));
    assert_false(golden_compare_i64("ids differ", a, b, 3));
}

static void test_missing_tensor_is_not_found_with_a_message(void **state)
{
    (void)state;
    golden g;
    open_golden(&g, "rng.safetensors");
    sdxl_error err = {0};
    golden_shape s;
    float *data = NULL;
    assert_int_equal(golden_get(&g, "no.such.tensor", &s, &data, &err), SDXL_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, "no.such.tensor"));
    int64_t *ids = NULL;
    assert_int_equal(golden_get_i64(&g, "randn.0.out", &s, &ids, &err), SDXL_ERR_FORMAT);
    golden_close(&g);
    assert_int_equal(golden_open(&g, "no-such-file.safetensors", &err), SDXL_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, "make_goldens"));
}

/* --- every file --- */

static void check_common_metadata(const golden *g, const char *model)
{
    const char *format = golden_meta(g, "format");
    assert_non_null(format);
    assert_string_equal(format, "sdxld-golden-1");
    assert_non_null(golden_meta(g, "torch"));
    assert_non_null(golden_meta(g, "diffusers"));
    assert_non_null(golden_meta(g, "transformers"));
    assert_non_null(golden_meta(g, "cpu_capability"));
    if (model) {
        assert_non_null(golden_meta(g, "model"));
        assert_string_equal(golden_meta(g, "model"), model);
    }
}

static void test_every_file_has_the_common_metadata(void **state)
{
    (void)state;
    static const char *const files[] = {"rng.safetensors", "scheduler.safetensors",
                                        "tokenizer.safetensors"};
    golden g;
    for (size_t f = 0; f < 3; f++) {
        open_golden(&g, files[f]);
        check_common_metadata(&g, NULL);
        golden_close(&g);
    }
    static const char *const kinds[] = {"text", "unet", "vae", "pipeline"};
    for (size_t m = 0; m < 2; m++) {
        for (size_t k = 0; k < 4; k++) {
            sdxl_error err = {0};
            GOLDEN_ASSERT_OK(golden_open_model(&g, kinds[k], model_names[m], &err), err);
            check_common_metadata(&g, model_names[m]);
            golden_close(&g);
        }
    }
}

/* --- rng --- */

#define RNG_SEEDS 7
#define RNG_SHAPES 12

static void test_rng_schema_and_low_32_bit_seeding(void **state)
{
    (void)state;
    golden g;
    open_golden(&g, "rng.safetensors");
    static const int64_t seeds[RNG_SEEDS] = {0, 1, 42, 4294967303LL, INT64_MAX, 123456789, -1};
    const int64_t one[1] = {1};
    int i = 0;
    for (int s = 0; s < RNG_SEEDS; s++) {
        for (int k = 0; k < RNG_SHAPES; k++, i++) {
            expect_tensor(&g, DTYPE_I64, 1, one, NULL, "randn.%d.seed", i);
            assert_int_equal(get_scalar_int(&g, "randn.%d.seed", i), seeds[s]);
            assert_true(has_tensor(&g, "randn.%d.out", i));
        }
    }
    assert_false(has_tensor(&g, "randn.%d.seed", i));
    /* Only the low 32 bits of a seed reach mt19937: 2^63 - 1 and -1 give the same normals. */
    for (int k = 0; k < RNG_SHAPES; k++) {
        golden_shape sa, sb;
        float *a = get_floats(&g, &sa, "randn.%d.out", 4 * RNG_SHAPES + k);
        float *b = get_floats(&g, &sb, "randn.%d.out", 6 * RNG_SHAPES + k);
        assert_int_equal(sa.numel, sb.numel);
        assert_memory_equal(a, b, sa.numel * sizeof(float));
        free(a);
        free(b);
    }
    /* The largest draw looks like a standard normal. */
    golden_shape s;
    const int64_t big_dims[4] = {1, 4, 64, 64};
    expect_tensor(&g, DTYPE_F32, 4, big_dims, NULL, "randn.1.out");
    float *big = get_floats(&g, &s, "randn.1.out");
    double sum = 0.0, sq = 0.0;
    for (size_t j = 0; j < s.numel; j++) {
        sum += big[j];
        sq += (double)big[j] * big[j];
    }
    assert_true(fabs(sum / (double)s.numel) < 0.05);
    assert_true(fabs(sq / (double)s.numel - 1.0) < 0.05);
    free(big);
    int n_seq = 0;
    for (; has_tensor(&g, "seq.%d.seed", n_seq); n_seq++) {
        for (int j = 0; j < 3; j++)
            assert_true(has_tensor(&g, "seq.%d.draw%d", n_seq, j));
        assert_false(has_tensor(&g, "seq.%d.draw3", n_seq));
    }
    assert_int_equal(n_seq, 6);
    int n_rand = 0;
    for (; has_tensor(&g, "rand.%d.seed", n_rand); n_rand++) {
        float *u = get_floats(&g, &s, "rand.%d.out", n_rand);
        for (size_t j = 0; j < s.numel; j++)
            assert_true(u[j] >= 0.0f && u[j] < 1.0f);
        free(u);
    }
    assert_int_equal(n_rand, 4);
    golden_close(&g);
}

/* --- scheduler --- */

static const char *const scheduler_variants[] = {"euler_a", "euler", "euler_a_leading",
                                                 "euler_a_linspace", "euler_a_linear"};
static const int step_counts[] = {1, 2, 3, 4, 8, 50};

static void check_schedule(const golden *g, const char *V, int n)
{
    const int64_t one[1] = {1}, dn[1] = {n}, dn1[1] = {n + 1};
    expect_tensor(g, DTYPE_F32, 1, dn, NULL, "%s.steps%d.timesteps", V, n);
    expect_tensor(g, DTYPE_F32, 1, one, NULL, "%s.steps%d.init_noise_sigma", V, n);
    expect_tensor(g, DTYPE_F32, 1, dn1, NULL, "%s.steps%d.sigmas", V, n);
    expect_tensor(g, DTYPE_F64, 1, dn1, NULL, "%s.steps%d.sigmas_f64", V, n);
    /* sigmas are the float64 sigmas rounded once to float32, ending in 0 */
    golden_shape s;
    float *sig = get_floats(g, &s, "%s.steps%d.sigmas", V, n);
    char name[NAME_MAX_LEN];
    snprintf(name, sizeof name, "%s.steps%d.sigmas_f64", V, n);
    sdxl_error err = {0};
    double *sig64 = NULL;
    GOLDEN_ASSERT_OK(golden_get_f64(g, name, &s, &sig64, &err), err);
    for (int j = 0; j <= n; j++)
        assert_true(sig[j] == (float)sig64[j]);
    assert_true(sig[n] == 0.0f);
    free(sig);
    free(sig64);
}

static void check_strength_case(const golden *g, int i)
{
    const int64_t one[1] = {1};
    expect_tensor(g, DTYPE_F64, 1, one, NULL, "strength.%d.strength", i);
    int64_t steps = get_scalar_int(g, "strength.%d.steps", i);
    int64_t run = get_scalar_int(g, "strength.%d.num_steps", i);
    int64_t begin = get_scalar_int(g, "strength.%d.begin_index", i);
    assert_int_equal(run + begin, steps);
    assert_int_equal(has_tensor(g, "strength.%d.timesteps", i), run > 0);
    assert_int_equal(has_tensor(g, "strength.%d.add_noise_out", i), run > 0);
    if (run == 0)
        return;
    /* the timesteps run are the tail of the full schedule */
    golden_shape s, full_s;
    float *ts = get_floats(g, &s, "strength.%d.timesteps", i);
    assert_int_equal(s.numel, run);
    float *full = get_floats(g, &full_s, "euler_a.steps%lld.timesteps", (long long)steps);
    assert_memory_equal(ts, full + begin, (size_t)run * sizeof(float));
    free(ts);
    free(full);
}

static void test_scheduler_schema_and_sigma_rounding(void **state)
{
    (void)state;
    golden g;
    open_golden(&g, "scheduler.safetensors");
    const int64_t one[1] = {1}, train[1] = {1000}, latent[4] = {1, 4, 8, 8};
    for (size_t v = 0; v < 5; v++) {
        const char *V = scheduler_variants[v];
        assert_non_null(meta(&g, "config.%s", V));
        expect_tensor(&g, DTYPE_F32, 1, train, NULL, "%s.alphas_cumprod", V);
        for (size_t k = 0; k < 6; k++)
            check_schedule(&g, V, step_counts[k]);
    }
    for (size_t v = 0; v < 2; v++) {
        const char *V = scheduler_variants[v];
        expect_tensor(&g, DTYPE_F32, 4, latent, NULL, "%s.step.sample", V);
        expect_tensor(&g, DTYPE_F32, 4, latent, NULL, "%s.step.model_output", V);
        expect_tensor(&g, DTYPE_I64, 1, one, NULL, "%s.step.seed", V);
        for (int k = 0; k < 4; k++) {
            expect_tensor(&g, DTYPE_F32, 4, latent, NULL, "%s.step.k%d.scaled", V, k);
            expect_tensor(&g, DTYPE_F32, 4, latent, NULL, "%s.step.k%d.pred_original", V, k);
            expect_tensor(&g, DTYPE_F32, 4, latent, NULL, "%s.step.k%d.prev_sample", V, k);
            /* only the ancestral scheduler draws noise */
            assert_int_equal(has_tensor(&g, "%s.step.k%d.noise", V, k), v == 0);
        }
        assert_false(has_tensor(&g, "%s.step.k4.scaled", V));
    }
    expect_tensor(&g, DTYPE_F32, 4, latent, NULL, "add_noise.original");
    expect_tensor(&g, DTYPE_F32, 4, latent, NULL, "add_noise.noise");
    int cases = 0;
    for (; has_tensor(&g, "strength.%d.steps", cases); cases++)
        check_strength_case(&g, cases);
    assert_int_equal(cases, 6);
    golden_close(&g);
}

/* --- tokenizer --- */

static void check_ids_are_padded_full_ids(const int64_t *ids, const int64_t *full, size_t n_full,
                                          int64_t pad)
{
    assert_true(n_full >= 2);
    assert_int_equal(full[0], CLIP_BOS);
    assert_int_equal(full[n_full - 1], CLIP_EOS);
    if (n_full <= CLIP_LENGTH) {
        assert_memory_equal(ids, full, n_full * sizeof(int64_t));
        for (size_t j = n_full; j < CLIP_LENGTH; j++)
            assert_int_equal(ids[j], pad);
    } else {
        /* truncated: BOS, the first 75 tokens, EOS */
        assert_memory_equal(ids, full, (CLIP_LENGTH - 1) * sizeof(int64_t));
        assert_int_equal(ids[CLIP_LENGTH - 1], CLIP_EOS);
    }
}

static void test_tokenizer_schema_and_padding(void **state)
{
    (void)state;
    golden g;
    open_golden(&g, "tokenizer.safetensors");
    const char *count_text = golden_meta(&g, "count");
    assert_non_null(count_text);
    int count = atoi(count_text);
    assert_true(count >= 30);
    const int64_t clip[1] = {CLIP_LENGTH}, any[1] = {ANY};
    bool saw_long = false;
    for (int i = 0; i < count; i++) {
        assert_non_null(meta(&g, "prompt.%d", i));
        for (int enc = 1; enc <= 2; enc++) {
            expect_tensor(&g, DTYPE_I64, 1, clip, NULL, "ids%d.%d", enc, i);
            expect_tensor(&g, DTYPE_I64, 1, any, NULL, "ids%d_full.%d", enc, i);
            golden_shape s, fs;
            int64_t *ids = get_ints(&g, &s, "ids%d.%d", enc, i);
            int64_t *full = get_ints(&g, &fs, "ids%d_full.%d", enc, i);
            /* tokenizer pads with <|endoftext|>, tokenizer_2 with "!" (id 0) */
            check_ids_are_padded_full_ids(ids, full, fs.numel, enc == 1 ? CLIP_EOS : 0);
            saw_long = saw_long || fs.numel > CLIP_LENGTH;
            free(ids);
            free(full);
        }
    }
    assert_true(saw_long);
    assert_false(has_tensor(&g, "ids1.%d", count));
    assert_string_equal(golden_meta(&g, "prompt.0"), "");
    golden_close(&g);
}

/* --- text encoders --- */

static void check_text_prompt(const golden *g, int i)
{
    const int64_t ids_dims[2] = {1, CLIP_LENGTH}, h_dims[3] = {1, CLIP_LENGTH, ANY},
                  p_dims[2] = {1, ANY};
    golden_shape h1s, h2s, es, ps, pes;
    assert_non_null(meta(g, "prompt.%d", i));
    expect_tensor(g, DTYPE_I64, 2, ids_dims, NULL, "p%d.ids1", i);
    expect_tensor(g, DTYPE_I64, 2, ids_dims, NULL, "p%d.ids2", i);
    expect_tensor(g, DTYPE_F32, 3, h_dims, &h1s, "p%d.hidden1", i);
    expect_tensor(g, DTYPE_F32, 3, h_dims, &h2s, "p%d.hidden2", i);
    expect_tensor(g, DTYPE_F32, 3, h2s.dims, NULL, "p%d.last2", i);
    expect_tensor(g, DTYPE_F32, 2, p_dims, &ps, "p%d.pooled2", i);
    expect_tensor(g, DTYPE_F32, 3, h_dims, &es, "p%d.prompt_embeds", i);
    expect_tensor(g, DTYPE_F32, 2, ps.dims, &pes, "p%d.pooled_embeds", i);
    int64_t d1 = h1s.dims[2], d2 = h2s.dims[2];
    assert_int_equal(es.dims[2], d1 + d2);
    /* encode_prompt concatenates the two penultimate hidden states, token by token */
    float *h1 = get_floats(g, &h1s, "p%d.hidden1", i);
    float *h2 = get_floats(g, &h2s, "p%d.hidden2", i);
    float *e = get_floats(g, &es, "p%d.prompt_embeds", i);
    for (int t = 0; t < CLIP_LENGTH; t++) {
        assert_memory_equal(e + t * (d1 + d2), h1 + t * d1, (size_t)d1 * sizeof(float));
        assert_memory_equal(e + t * (d1 + d2) + d1, h2 + t * d2, (size_t)d2 * sizeof(float));
    }
    free(h1);
    free(h2);
    free(e);
    /* and takes the pooled output of text_encoder_2 as it is */
    float *p2 = get_floats(g, &ps, "p%d.pooled2", i);
    float *pe = get_floats(g, &pes, "p%d.pooled_embeds", i);
    assert_memory_equal(p2, pe, ps.numel * sizeof(float));
    free(p2);
    free(pe);
}

static void check_text_file(const golden *g)
{
    int prompts = 0;
    for (; has_tensor(g, "p%d.ids1", prompts); prompts++)
        check_text_prompt(g, prompts);
    assert_int_equal(prompts, 6);
    assert_string_equal(golden_meta(g, "prompt.0"), "");
    static const char *const cfg[] = {"zero", "neg"};
    static const char *const fields[] = {"prompt_embeds", "negative_prompt_embeds",
                                         "pooled_embeds", "negative_pooled_embeds"};
    const int64_t h_dims[3] = {1, CLIP_LENGTH, ANY}, p_dims[2] = {1, ANY};
    for (int c = 0; c < 2; c++) {
        assert_non_null(meta(g, "cfg_%s.prompt", cfg[c]));
        for (int f = 0; f < 4; f++) {
            bool tokens = f < 2;
            golden_shape s;
            expect_tensor(g, DTYPE_F32, tokens ? 3 : 2, tokens ? h_dims : p_dims, NULL,
                          "cfg_%s.%s", cfg[c], fields[f]);
            float *x = get_floats(g, &s, "cfg_%s.%s", cfg[c], fields[f]);
            bool all_zero = true;
            for (size_t j = 0; j < s.numel; j++)
                all_zero = all_zero && x[j] == 0.0f;
            /* force_zeros_for_empty_prompt: no negative prompt means zero embeddings */
            assert_int_equal(all_zero, c == 0 && (f == 1 || f == 3));
            free(x);
        }
    }
    assert_null(golden_meta(g, "cfg_zero.negative_prompt"));
    assert_non_null(golden_meta(g, "cfg_neg.negative_prompt"));
}

static void test_text_files_schema_and_concatenation(void **state)
{
    (void)state;
    check_each_model_file("text", check_text_file);
}

/* --- unet --- */

static void check_unet_file(const golden *g)
{
    static const struct {
        const char *name;
        int64_t batch, h, w;
    } cases[] = {{"b1_8x8", 1, 8, 8}, {"b2_8x12", 2, 8, 12}, {"b2_8x8", 2, 8, 8}};
    for (size_t c = 0; c < 3; c++) {
        const char *n = cases[c].name;
        int64_t b = cases[c].batch;
        const int64_t lat[4] = {b, ANY, cases[c].h, cases[c].w}, one[1] = {1},
                      emb[3] = {b, CLIP_LENGTH, ANY}, pooled[2] = {b, ANY}, ids[2] = {b, 6};
        golden_shape in, out;
        expect_tensor(g, DTYPE_F32, 4, lat, &in, "%s.latents", n);
        expect_tensor(g, DTYPE_F32, 1, one, NULL, "%s.timestep", n);
        expect_tensor(g, DTYPE_F32, 3, emb, NULL, "%s.prompt_embeds", n);
        expect_tensor(g, DTYPE_F32, 2, pooled, NULL, "%s.text_embeds", n);
        expect_tensor(g, DTYPE_F32, 2, ids, NULL, "%s.time_ids", n);
        expect_tensor(g, DTYPE_F32, 4, in.dims, &out, "%s.out", n);
    }
}

static void test_unet_files_schema(void **state)
{
    (void)state;
    check_each_model_file("unet", check_unet_file);
}

/* --- vae --- */

/* Checks encoder case H x W; returns the VAE scale factor it implies. */
static int64_t check_vae_encoder_case(const golden *g, int64_t H, int64_t W)
{
    const int64_t px[3] = {H, W, 3}, img[4] = {1, 3, H, W}, lat[4] = {1, ANY, ANY, ANY};
    golden_shape ms, ps, is, ls;
    expect_tensor(g, DTYPE_U8, 3, px, NULL, "enc_%lldx%lld.pixels", (long long)H, (long long)W);
    expect_tensor(g, DTYPE_F32, 4, img, NULL, "enc_%lldx%lld.image", (long long)H, (long long)W);
    expect_tensor(g, DTYPE_F32, 4, lat, &ms, "enc_%lldx%lld.mean", (long long)H, (long long)W);
    expect_tensor(g, DTYPE_F32, 4, ms.dims, NULL, "enc_%lldx%lld.logvar", (long long)H,
                  (long long)W);
    int64_t f = H / ms.dims[2];
    assert_int_equal(ms.dims[2] * f, H);
    assert_int_equal(ms.dims[3] * f, W);
    /* the VAE input is the pipeline's 2 * (p / 255) - 1 in float32, NCHW */
    float *p = get_floats(g, &ps, "enc_%lldx%lld.pixels", (long long)H, (long long)W);
    float *x = get_floats(g, &is, "enc_%lldx%lld.image", (long long)H, (long long)W);
    for (int64_t ch = 0; ch < 3; ch++) {
        for (int64_t i = 0; i < H * W; i++)
            assert_true(x[ch * H * W + i] == 2.0f * (p[i * 3 + ch] / 255.0f) - 1.0f);
    }
    free(p);
    free(x);
    /* diffusers clamps the log variance */
    float *lv = get_floats(g, &ls, "enc_%lldx%lld.logvar", (long long)H, (long long)W);
    for (size_t j = 0; j < ls.numel; j++)
        assert_true(lv[j] >= -30.0f && lv[j] <= 20.0f);
    free(lv);
    return f;
}

static void check_vae_file(const golden *g)
{
    int64_t f = check_vae_encoder_case(g, 64, 64);
    assert_int_equal(check_vae_encoder_case(g, 64, 96), f);
    static const int64_t lsz[2][2] = {{8, 8}, {8, 12}};
    for (int c = 0; c < 2; c++) {
        int64_t h = lsz[c][0], w = lsz[c][1];
        const int64_t lat[4] = {1, ANY, h, w}, out[4] = {1, 3, h * f, w * f};
        expect_tensor(g, DTYPE_F32, 4, lat, NULL, "dec_%lldx%lld.latents", (long long)h,
                      (long long)w);
        expect_tensor(g, DTYPE_F32, 4, out, NULL, "dec_%lldx%lld.out", (long long)h,
                      (long long)w);
    }
}

static void test_vae_files_schema_and_input_scaling(void **state)
{
    (void)state;
    check_each_model_file("vae", check_vae_file);
}

/* --- pipeline --- */

static void check_pipeline_case(const golden *g, const char *c, bool img2img, int64_t batch)
{
    const int64_t one[1] = {1}, two[1] = {2}, b1[1] = {batch}, any1[1] = {ANY};
    const char *kind = meta(g, "%s.kind", c);
    assert_non_null(kind);
    assert_string_equal(kind, img2img ? "img2img" : "txt2img");
    assert_non_null(meta(g, "%s.prompt", c));
    expect_tensor(g, DTYPE_I64, 1, one, NULL, "%s.steps", c);
    expect_tensor(g, DTYPE_F64, 1, one, NULL, "%s.guidance_scale", c);
    expect_tensor(g, DTYPE_I64, 1, b1, NULL, "%s.seeds", c);
    expect_tensor(g, DTYPE_I64, 1, two, NULL, "%s.size", c);
    golden_shape ts, ss, ls;
    expect_tensor(g, DTYPE_F32, 1, any1, &ts, "%s.timesteps", c);
    int64_t *size = get_ints(g, &ss, "%s.size", c);
    int64_t H = size[0], W = size[1];
    free(size);
    const int64_t lat[4] = {batch, ANY, ANY, ANY}, px[4] = {batch, H, W, 3},
                  in_px[3] = {H, W, 3};
    expect_tensor(g, DTYPE_F32, 4, lat, &ls, "%s.latents_init", c);
    int64_t n = (int64_t)ts.numel;
    for (int64_t k = 0; k < n; k++)
        expect_tensor(g, DTYPE_F32, 4, ls.dims, NULL, "%s.latents.step%lld", c, (long long)k);
    assert_false(has_tensor(g, "%s.latents.step%lld", c, (long long)n));
    expect_tensor(g, DTYPE_U8, 4, px, NULL, "%s.pixels", c);
    int64_t steps = get_scalar_int(g, "%s.steps", c);
    assert_true(n >= 1 && n <= steps);
    assert_int_equal(has_tensor(g, "%s.strength", c), img2img);
    assert_int_equal(has_tensor(g, "%s.input_pixels", c), img2img);
    assert_int_equal(has_tensor(g, "%s.image_latents", c), img2img);
    assert_int_equal(has_tensor(g, "%s.noise", c), img2img);
    if (img2img) {
        expect_tensor(g, DTYPE_F64, 1, one, NULL, "%s.strength", c);
        expect_tensor(g, DTYPE_U8, 3, in_px, NULL, "%s.input_pixels", c);
        expect_tensor(g, DTYPE_F32, 4, ls.dims, NULL, "%s.image_latents", c);
        expect_tensor(g, DTYPE_F32, 4, ls.dims, NULL, "%s.noise", c);
    } else {
        assert_int_equal(n, steps); /* txt2img runs every step */
    }
}

static void check_pipeline_file(const golden *g)
{
    static const struct {
        const char *name;
        bool img2img;
        int64_t batch;
    } cases[] = {{"i2i_a", true, 1},     {"i2i_b", true, 1},  {"i2i_c", true, 1},
                 {"i2i_d", true, 1},     {"i2i_e", true, 1},  {"i2i_cfg", true, 1},
                 {"i2i_batch", true, 3}, {"t2i_a", false, 1}, {"t2i_b", false, 1},
                 {"t2i_c", false, 1}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        check_pipeline_case(g, cases[c].name, cases[c].img2img, cases[c].batch);
    assert_non_null(golden_meta(g, "i2i_cfg.negative_prompt"));
}

static void test_pipeline_files_schema(void **state)
{
    (void)state;
    check_each_model_file("pipeline", check_pipeline_file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compare_reports_max_abs_and_relative_l2),
        cmocka_unit_test(test_missing_tensor_is_not_found_with_a_message),
        cmocka_unit_test(test_every_file_has_the_common_metadata),
        cmocka_unit_test(test_rng_schema_and_low_32_bit_seeding),
        cmocka_unit_test(test_scheduler_schema_and_sigma_rounding),
        cmocka_unit_test(test_tokenizer_schema_and_padding),
        cmocka_unit_test(test_text_files_schema_and_concatenation),
        cmocka_unit_test(test_unet_files_schema),
        cmocka_unit_test(test_vae_files_schema_and_input_scaling),
        cmocka_unit_test(test_pipeline_files_schema),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
