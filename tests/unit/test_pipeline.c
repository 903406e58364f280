// needs: model_tiny-a model_tiny-b
/*
 * test_pipeline.c — the whole pipeline against diffusers: every case of
 * pipeline_tiny-{a,b}.safetensors (StableDiffusionXLImg2ImgPipeline / StableDiffusionXLPipeline
 * on mkmodel's seed-1 tiny models, float32 CPU), checking the latents entering the first step
 * and after every step, the timesteps run, the seeds and the final pixels; and a batch equal,
 * bit for bit, to the single images of its seeds (img2img, txt2img, with guidance).
 *
 * Tolerances (tests/golden/data/README.md): latents relative L2 ≤ 1e-4, pixels within 2 of
 * 255. The random draws are bit-exact (test_rng), so a latent error comes from the models'
 * sums in another order (~1e-6); a wrong draw order, seed or timestep moves latents by O(1).
 * All cases run in one session, one after another, so the arena is re-planned and grown
 * between shapes as a server's would be.
 *
 * On a machine with a GPU the golden cases run on the cuda backend too: in fp32 under the same
 * tolerances, and in the default types (fp16 UNet and text encoders, bf16 VAE) under
 * tolerances for 11- and 8-bit mantissas; and a request repeated on one session, whose second
 * run replays the UNet graph the first recorded, gives the same bits. Without a GPU those tests
 * are skipped, saying why. On either backend, sessions of several threads sharing one model
 * give each request the bits it gets alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/pipeline.h"
#include "support/golden.h"
#include "support/paths.h"

#define MAX_STEPS_LOGGED (SDXL_MAX_STEPS + 2)

/* Where and in what types the pipeline runs, and how close it must come to the goldens. */
typedef struct run_config {
    const char *label;
    sdxl_backend_kind backend;
    sdxl_compute_dtype dtype, vae_dtype;
    double latents_rel_l2, pixels_max_abs;
} run_config;

static const run_config CPU = {"cpu", SDXL_BACKEND_CPU, SDXL_DTYPE_FP32, SDXL_DTYPE_FP32, 1e-4, 2.0};
static const run_config CUDA_FP32 = {"cuda fp32", SDXL_BACKEND_CUDA, SDXL_DTYPE_FP32,
                                     SDXL_DTYPE_FP32, 1e-4, 2.0};
/* fp16 rounds every activation to 11 bits (4.9e-4 relative) and bf16 the VAE's to 8 bits
 * (3.9e-3): over a UNet and a VAE that is a few 1e-3 in the latents and a few levels of 255
 * in the pixels. A wrong op is O(1) in both. */
static const run_config CUDA_DEFAULT = {"cuda fp16, VAE bf16", SDXL_BACKEND_CUDA, SDXL_DTYPE_AUTO,
                                        SDXL_DTYPE_AUTO, 2e-2, 12.0};

static const char *const CASES[] = {"i2i_a", "i2i_b", "i2i_c",   "i2i_d", "i2i_e",
                                    "i2i_cfg", "i2i_batch", "t2i_a", "t2i_b", "t2i_c"};

/* The latents the pipeline showed: log[0] entering step 1, log[k] after step k. */
typedef struct latents_log {
    float *step[MAX_STEPS_LOGGED];
    size_t count; /* values per entry */
    int entries;
} latents_log;

static void keep_latents(void *user, int step, const float *latents, size_t count)
{
    latents_log *log = user;
    assert_true(step == log->entries && step < MAX_STEPS_LOGGED);
    log->step[step] = malloc(count * sizeof(float));
    assert_non_null(log->step[step]);
    memcpy(log->step[step], latents, count * sizeof(float));
    log->count = count;
    log->entries++;
}

static void log_free(latents_log *log)
{
    for (int i = 0; i < log->entries; i++)
        free(log->step[i]);
    memset(log, 0, sizeof *log);
}

static void check_ok(sdxl_status st, const sdxl_error *err)
{
    if (st != SDXL_OK)
        fail_msg("%s: %s", sdxl_status_name(st), err->message);
}

/* sdxl_generate with the latents observed (the same path: request, plan, run). */
static void run_logged(sdxl_session *s, const sdxl_generate_params *gp, latents_log *log,
                       sdxl_result *res)
{
    sdxl_error err;
    pipeline_request req;
    check_ok(pipeline_request_make(&s->model->limits, gp, &req, &err), &err);
    req.on_latents = keep_latents;
    req.on_latents_user = log;
    size_t bytes;
    check_ok(pipeline_plan(s->model, &req.shape, &bytes, &err), &err);
    check_ok(pipeline_run(s, &req, bytes, res, &err), &err);
}

static sdxl_model *open_model(const char *name, const run_config *rc)
{
    char dir[1024];
    test_model_dir(name, dir, sizeof dir);
    sdxl_model_params mp = sdxl_model_default_params();
    mp.threads = 2;
    mp.backend = rc->backend;
    mp.dtype = rc->dtype;
    mp.vae_dtype = rc->vae_dtype;
    sdxl_model *m;
    sdxl_error err;
    sdxl_status st = sdxl_model_open(dir, &mp, &m, &err);
    if (st == SDXL_ERR_UNSUPPORTED && rc->backend == SDXL_BACKEND_CUDA) {
        print_message("skipped, no cuda backend here: %s\n", err.message);
        skip();
    }
    check_ok(st, &err);
    return m;
}

static float *get_f32(const golden *g, const char *c, const char *field, golden_shape *s)
{
    char name[128];
    snprintf(name, sizeof name, "%s.%s", c, field);
    float *v;
    sdxl_error err;
    GOLDEN_ASSERT_OK(golden_get(g, name, s, &v, &err), err);
    return v;
}

static double get_scalar(const golden *g, const char *c, const char *field)
{
    char name[128];
    snprintf(name, sizeof name, "%s.%s", c, field);
    golden_shape s;
    double *v;
    sdxl_error err;
    GOLDEN_ASSERT_OK(golden_get_f64(g, name, &s, &v, &err), err);
    double x = v[0];
    free(v);
    return x;
}

static void run_case(const golden *g, sdxl_session *s, const char *c, const run_config *rc)
{
    char key[128], label[160];
    sdxl_error err;
    golden_shape shape;
    snprintf(key, sizeof key, "%s.kind", c);
    const char *kind = golden_meta(g, key);
    assert_non_null(kind);
    snprintf(key, sizeof key, "%s.prompt", c);
    sdxl_generate_params gp = sdxl_default_generate_params();
    gp.prompt = golden_meta(g, key);
    snprintf(key, sizeof key, "%s.negative_prompt", c);
    gp.negative_prompt = golden_meta(g, key);
    gp.num_inference_steps = (int)get_scalar(g, c, "steps");
    gp.guidance_scale = (float)get_scalar(g, c, "guidance_scale");

    int64_t *seeds, *size;
    snprintf(key, sizeof key, "%s.seeds", c);
    GOLDEN_ASSERT_OK(golden_get_i64(g, key, &shape, &seeds, &err), err);
    int batch = (int)shape.numel;
    snprintf(key, sizeof key, "%s.size", c);
    GOLDEN_ASSERT_OK(golden_get_i64(g, key, &shape, &size, &err), err);
    int height = (int)size[0], width = (int)size[1];
    gp.seed = (uint64_t)seeds[0];
    gp.seed_set = true;
    gp.batch_size = batch;

    sdxl_image input = {0};
    float *input_f = NULL;
    if (strcmp(kind, "img2img") == 0) {
        gp.strength = (float)get_scalar(g, c, "strength");
        input_f = get_f32(g, c, "input_pixels", &shape);
        input = (sdxl_image){.width = width, .height = height,
                             .pixels = malloc(shape.numel)};
        assert_non_null(input.pixels);
        for (size_t i = 0; i < shape.numel; i++)
            input.pixels[i] = (uint8_t)input_f[i];
        gp.init_image = &input;
    } else {
        gp.width = width;
        gp.height = height;
    }

    latents_log log = {0};
    sdxl_result res;
    run_logged(s, &gp, &log, &res);

    float *timesteps = get_f32(g, c, "timesteps", &shape);
    int n_steps = (int)shape.numel;
    assert_int_equal(res.timings.unet_steps, n_steps);
    assert_int_equal(log.entries, n_steps + 1);
    size_t begin = s->sched.count - (size_t)n_steps;
    for (int k = 0; k < n_steps; k++)
        assert_true(s->sched.timesteps[begin + (size_t)k] == timesteps[k]);

    assert_int_equal(res.n_images, batch);
    for (int i = 0; i < batch; i++)
        assert_true(res.seeds[i] == (uint64_t)seeds[i]);

    float *want = get_f32(g, c, "latents_init", &shape);
    assert_int_equal(shape.numel, log.count);
    snprintf(label, sizeof label, "%s latents_init", c);
    GOLDEN_ASSERT_CLOSE(label, log.step[0], want, shape.numel, INFINITY, rc->latents_rel_l2);
    free(want);
    for (int k = 0; k < n_steps; k++) {
        char field[32];
        snprintf(field, sizeof field, "latents.step%d", k);
        want = get_f32(g, c, field, &shape);
        snprintf(label, sizeof label, "%s %s", c, field);
        GOLDEN_ASSERT_CLOSE(label, log.step[k + 1], want, shape.numel, INFINITY,
                            rc->latents_rel_l2);
        free(want);
    }

    want = get_f32(g, c, "pixels", &shape);
    size_t per_image = (size_t)width * height * 3;
    assert_int_equal(shape.numel, per_image * batch);
    float *got = malloc(shape.numel * sizeof *got);
    assert_non_null(got);
    for (int i = 0; i < batch; i++) {
        assert_int_equal(res.images[i].width, width);
        assert_int_equal(res.images[i].height, height);
        for (size_t j = 0; j < per_image; j++)
            got[(size_t)i * per_image + j] = res.images[i].pixels[j];
    }
    snprintf(label, sizeof label, "%s pixels", c);
    GOLDEN_ASSERT_CLOSE(label, got, want, shape.numel, rc->pixels_max_abs, INFINITY);

    free(got);
    free(want);
    free(timesteps);
    sdxl_result_free(&res);
    log_free(&log);
    free(input.pixels);
    free(input_f);
    free(seeds);
    free(size);
}

static void run_golden_file(const char *model_name, const char *file, const run_config *rc)
{
    sdxl_model *m = open_model(model_name, rc);
    printf("== %s on %s\n", model_name, rc->label);
    golden g;
    sdxl_error err;
    GOLDEN_ASSERT_OK(golden_open(&g, file, &err), err);
    sdxl_session *s;
    check_ok(sdxl_session_open(m, &s, &err), &err);
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++)
        run_case(&g, s, CASES[i], rc);
    sdxl_session_close(s);
    sdxl_model_close(m);
    golden_close(&g);
}

static void test_golden_tiny_a(void **state)
{
    (void)state;
    run_golden_file("tiny-a", "pipeline_tiny-a.safetensors", &CPU);
}

static void test_golden_tiny_b(void **state)
{
    (void)state;
    run_golden_file("tiny-b", "pipeline_tiny-b.safetensors", &CPU);
}

static void test_golden_cuda_fp32(void **state)
{
    (void)state;
    run_golden_file("tiny-a", "pipeline_tiny-a.safetensors", &CUDA_FP32);
    run_golden_file("tiny-b", "pipeline_tiny-b.safetensors", &CUDA_FP32);
}

static void test_golden_cuda_default_types(void **state)
{
    (void)state;
    run_golden_file("tiny-a", "pipeline_tiny-a.safetensors", &CUDA_DEFAULT);
    run_golden_file("tiny-b", "pipeline_tiny-b.safetensors", &CUDA_DEFAULT);
}

/* ---- a batch equals its single images ------------------------------------------------------ */

/* A 64×40 picture (not square, so a transposed layout would show). */
static sdxl_image make_picture(void)
{
    sdxl_image im = {.width = 64, .height = 40, .pixels = malloc(64 * 40 * 3)};
    assert_non_null(im.pixels);
    for (int y = 0; y < im.height; y++)
        for (int x = 0; x < im.width; x++) {
            uint8_t *p = im.pixels + ((size_t)y * im.width + x) * 3;
            p[0] = (uint8_t)(x * 4);
            p[1] = (uint8_t)(y * 6);
            p[2] = (uint8_t)((x * y) % 251);
        }
    return im;
}

static void check_batch_equals_singles(sdxl_session *s, sdxl_generate_params gp)
{
    latents_log batch_log = {0};
    sdxl_result batch;
    run_logged(s, &gp, &batch_log, &batch);
    size_t per_image = batch_log.count / (size_t)gp.batch_size;
    uint64_t first = gp.seed;
    int n = gp.batch_size;
    for (int i = 0; i < n; i++) {
        gp.batch_size = 1;
        gp.seed = first + (uint64_t)i;
        latents_log one_log = {0};
        sdxl_result one;
        run_logged(s, &gp, &one_log, &one);
        assert_true(one.seeds[0] == batch.seeds[i]);
        assert_int_equal(one_log.entries, batch_log.entries);
        for (int k = 0; k < one_log.entries; k++)
            assert_memory_equal(one_log.step[k], batch_log.step[k] + (size_t)i * per_image,
                                per_image * sizeof(float));
        const sdxl_image *a = &one.images[0], *b = &batch.images[i];
        assert_int_equal(a->width, b->width);
        assert_int_equal(a->height, b->height);
        assert_memory_equal(a->pixels, b->pixels, (size_t)a->width * a->height * 3);
        sdxl_result_free(&one);
        log_free(&one_log);
    }
    /* Different seeds make different images (the rows are not one image repeated). */
    assert_memory_not_equal(batch.images[0].pixels, batch.images[1].pixels,
                            (size_t)batch.images[0].width * batch.images[0].height * 3);
    sdxl_result_free(&batch);
    log_free(&batch_log);
}

/* img2img on picture with a fixed prompt and seed. */
static sdxl_generate_params picture_request(const sdxl_image *picture, uint64_t seed, int batch,
                                            int steps, float strength)
{
    sdxl_generate_params gp = sdxl_default_generate_params();
    gp.prompt = "a red house by the sea";
    gp.init_image = picture;
    gp.seed = seed;
    gp.seed_set = true;
    gp.batch_size = batch;
    gp.num_inference_steps = steps;
    gp.strength = strength;
    return gp;
}

static void test_batch_equals_single_images(void **state)
{
    (void)state;
    sdxl_model *m = open_model("tiny-a", &CPU);
    sdxl_session *s;
    sdxl_error err;
    check_ok(sdxl_session_open(m, &s, &err), &err);
    sdxl_image picture = make_picture();

    sdxl_generate_params gp = picture_request(&picture, 1000, 3, 3, 0.7f);
    check_batch_equals_singles(s, gp);

    gp.guidance_scale = 4.0f; /* with guidance: negative rows first, then positive */
    gp.negative_prompt = "blurry";
    gp.batch_size = 2;
    check_batch_equals_singles(s, gp);

    gp.init_image = NULL; /* txt2img, with the model's default size */
    gp.guidance_scale = 0.0f;
    gp.seed = UINT64_MAX; /* seed + 1 wraps to 0 */
    check_batch_equals_singles(s, gp);

    free(picture.pixels);
    sdxl_session_close(s);
    sdxl_model_close(m);
}

/* ---- a replayed UNet graph equals the direct run ---------------------------------------- */

/* The first request of a shape runs the UNet op by op and records it; the same request again
 * replays the recording: every latent and pixel must be the same bits. Then a request of
 * another size in between (new plans, maybe larger scratch) and the first shape once more. */
static void test_graph_replay_same_bits(void **state)
{
    (void)state;
    sdxl_model *m = open_model("tiny-a", &CUDA_DEFAULT);
    sdxl_session *s;
    sdxl_error err;
    check_ok(sdxl_session_open(m, &s, &err), &err);
    sdxl_image picture = make_picture();
    sdxl_generate_params gp = picture_request(&picture, 7, 2, 4, 0.75f);
    gp.width = 64; /* latents 8x4: every upsampling doubles, so the UNet can be recorded */
    gp.height = 32;

    latents_log first_log = {0};
    sdxl_result first;
    run_logged(s, &gp, &first_log, &first);
    for (int round = 0; round < 2; round++) {
        if (round == 1) { /* a larger shape in between */
            sdxl_generate_params big = gp;
            big.width = 2 * gp.width;
            big.height = 2 * gp.height;
            sdxl_result other;
            check_ok(sdxl_generate(s, &big, &other, &err), &err);
            sdxl_result_free(&other);
        }
        latents_log log = {0};
        sdxl_result again;
        run_logged(s, &gp, &log, &again);
        assert_int_equal(log.entries, first_log.entries);
        for (int k = 0; k < log.entries; k++)
            assert_memory_equal(log.step[k], first_log.step[k], log.count * sizeof(float));
        for (int i = 0; i < again.n_images; i++)
            assert_memory_equal(again.images[i].pixels, first.images[i].pixels,
                                (size_t)gp.width * gp.height * 3);
        sdxl_result_free(&again);
        log_free(&log);
    }
    assert_true(graph_cache_recorded(&s->graphs) >= 1); /* the replays above were replays */
    sdxl_result_free(&first);
    log_free(&first_log);
    free(picture.pixels);
    sdxl_session_close(s);
    sdxl_model_close(m);
}

/* ---- sessions sharing a model ----------------------------------------------------------- */

#define SHARING_THREADS 3
#define SHARING_REQUESTS 3
#define SHARING_ROUNDS 2

/* Requests that differ in kind, size, guidance and prompt (prompt-cache misses, then hits). */
static sdxl_generate_params sharing_request(const sdxl_image *picture, int i)
{
    sdxl_generate_params gp = picture_request(picture, 40 + (uint64_t)i, 1, 2, 0.6f);
    if (i == 1) {
        gp.init_image = NULL; /* txt2img at the model's default size */
        gp.prompt = "a lighthouse at night";
    } else if (i == 2) {
        gp.guidance_scale = 3.0f;
        gp.negative_prompt = "fog";
        gp.batch_size = 2;
    }
    return gp;
}

typedef struct sharer {
    sdxl_model *m;
    const sdxl_image *picture;
    const sdxl_result *want; /* [SHARING_REQUESTS], from one session alone */
    int id;
    char failure[SDXL_ERROR_MESSAGE_MAX + 64]; /* empty when every result had want's bits */
} sharer;

static bool same_images(const sdxl_result *a, const sdxl_result *b)
{
    if (a->n_images != b->n_images)
        return false;
    for (int i = 0; i < a->n_images; i++)
        if (a->images[i].width != b->images[i].width ||
            a->images[i].height != b->images[i].height ||
            memcmp(a->images[i].pixels, b->images[i].pixels,
                   (size_t)a->images[i].width * a->images[i].height * 3) != 0)
            return false;
    return true;
}

/* Its own session, the requests in an order of its own, each result checked. */
static void *share_model(void *arg)
{
    sharer *w = arg;
    sdxl_session *s;
    sdxl_error err;
    if (sdxl_session_open(w->m, &s, &err) != SDXL_OK) {
        snprintf(w->failure, sizeof w->failure, "session: %s", err.message);
        return NULL;
    }
    for (int k = 0; k < SHARING_ROUNDS * SHARING_REQUESTS && !w->failure[0]; k++) {
        int i = (k + w->id) % SHARING_REQUESTS;
        sdxl_generate_params gp = sharing_request(w->picture, i);
        sdxl_result got;
        if (sdxl_generate(s, &gp, &got, &err) != SDXL_OK)
            snprintf(w->failure, sizeof w->failure, "request %d: %s", i, err.message);
        else if (!same_images(&got, &w->want[i]))
            snprintf(w->failure, sizeof w->failure, "request %d: other pixels than alone", i);
        sdxl_result_free(&got);
    }
    sdxl_session_close(s);
    return NULL;
}

/* Sessions of several threads at once on one model (include/sdxl.h allows it) get, request
 * for request, the bits one session alone gets. */
static void check_sessions_share_a_model(const run_config *rc)
{
    sdxl_model *m = open_model("tiny-a", rc);
    sdxl_session *s;
    sdxl_error err;
    check_ok(sdxl_session_open(m, &s, &err), &err);
    sdxl_image picture = make_picture();
    sdxl_result want[SHARING_REQUESTS];
    for (int i = 0; i < SHARING_REQUESTS; i++) {
        sdxl_generate_params gp = sharing_request(&picture, i);
        check_ok(sdxl_generate(s, &gp, &want[i], &err), &err);
    }
    sdxl_session_close(s);

    pthread_t threads[SHARING_THREADS];
    sharer workers[SHARING_THREADS];
    for (int t = 0; t < SHARING_THREADS; t++) {
        workers[t] = (sharer){.m = m, .picture = &picture, .want = want, .id = t};
        assert_int_equal(pthread_create(&threads[t], NULL, share_model, &workers[t]), 0);
    }
    for (int t = 0; t < SHARING_THREADS; t++)
        assert_int_equal(pthread_join(threads[t], NULL), 0);
    for (int t = 0; t < SHARING_THREADS; t++)
        if (workers[t].failure[0])
            fail_msg("%s, thread %d: %s", rc->label, t, workers[t].failure);
    for (int i = 0; i < SHARING_REQUESTS; i++)
        sdxl_result_free(&want[i]);
    free(picture.pixels);
    sdxl_model_close(m);
}

static void test_sessions_share_a_model(void **state)
{
    (void)state;
    check_sessions_share_a_model(&CPU);
}

static void test_sessions_share_a_cuda_model(void **state)
{
    (void)state;
    check_sessions_share_a_model(&CUDA_DEFAULT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_tiny_a),
        cmocka_unit_test(test_golden_tiny_b),
        cmocka_unit_test(test_batch_equals_single_images),
        cmocka_unit_test(test_golden_cuda_fp32),
        cmocka_unit_test(test_golden_cuda_default_types),
        cmocka_unit_test(test_graph_replay_same_bits),
        cmocka_unit_test(test_sessions_share_a_model),
        cmocka_unit_test(test_sessions_share_a_cuda_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
