// needs: model_tiny-a
/*
 * test_engine_api.c — include/sdxl.h as a client sees it, on mkmodel's tiny-a: model and
 * session handles, model info, loading progress and its cancellation, every invalid parameter
 * refused with its field named (by sdxl_validate_params and by sdxl_generate alike), the memory
 * budget, cancellation from the progress callback (and the session still working after it),
 * progress and image callbacks, random seeds reported and reproducible, and memory estimates.
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

#include "sdxl.h"
#include "support/paths.h"

static void check_ok(sdxl_status st, const sdxl_error *err)
{
    if (st != SDXL_OK)
        fail_msg("%s: %s", sdxl_status_name(st), err->message);
}

static sdxl_model *open_tiny(const sdxl_model_params *mp)
{
    char dir[1024];
    test_model_dir("tiny-a", dir, sizeof dir);
    sdxl_model *m;
    sdxl_error err;
    check_ok(sdxl_model_open(dir, mp, &m, &err), &err);
    return m;
}

/* tiny-a and one session over it, opened before a test and closed after it. */
typedef struct tiny {
    sdxl_model *m;
    sdxl_session *s;
} tiny;

static int open_tiny_session(void **state)
{
    tiny *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->m = open_tiny(NULL);
    sdxl_error err;
    check_ok(sdxl_session_open(t->m, &t->s, &err), &err);
    *state = t;
    return 0;
}

static int close_tiny_session(void **state)
{
    tiny *t = *state;
    sdxl_session_close(t->s);
    sdxl_model_close(t->m);
    free(t);
    return 0;
}

/* The default parameters with a prompt and a fixed seed. */
static sdxl_generate_params seeded_params(const char *prompt, uint64_t seed)
{
    sdxl_generate_params p = sdxl_default_generate_params();
    p.prompt = prompt;
    p.seed = seed;
    p.seed_set = true;
    return p;
}

/* A 48×40 gradient (a multiple of 8 in both directions). */
static sdxl_image make_picture(int width, int height)
{
    sdxl_image im = {.width = width, .height = height,
                     .pixels = malloc((size_t)width * height * 3)};
    assert_non_null(im.pixels);
    for (size_t i = 0; i < (size_t)width * height * 3; i++)
        im.pixels[i] = (uint8_t)(i * 7 % 256);
    return im;
}

/* ---- model ------------------------------------------------------------------------------ */

static void test_model_info(void **state)
{
    (void)state;
    sdxl_model *m = open_tiny(NULL);
    sdxl_model_info info;
    sdxl_model_get_info(m, &info);
    assert_string_equal(info.name, "tiny-a");
    assert_string_equal(info.backend, "cpu");
    assert_true(strlen(info.device) > 0);
    /* tiny-a: UNet sample_size 8 × VAE scale 8 */
    assert_int_equal(info.default_width, 64);
    assert_int_equal(info.default_height, 64);
    assert_int_equal(info.vae_scale_factor, 8);
    assert_true(info.weight_bytes > 1000000);
    sdxl_model_close(m);
}

typedef struct load_log {
    uint64_t last_done, total;
    int calls;
    int cancel_after; /* 0: never */
} load_log;

static bool on_load(void *user, uint64_t done, uint64_t total)
{
    load_log *log = user;
    assert_true(done >= log->last_done && done <= total);
    log->last_done = done;
    log->total = total;
    log->calls++;
    return log->cancel_after == 0 || log->calls < log->cancel_after;
}

static void test_model_load_progress(void **state)
{
    (void)state;
    sdxl_model_params mp = sdxl_model_default_params();
    load_log log = {0};
    mp.load_progress = on_load;
    mp.load_progress_user = &log;
    sdxl_model *m = open_tiny(&mp);
    assert_true(log.calls > 10);
    assert_true(log.total > 0 && log.last_done == log.total); /* ends at exactly 100% */
    sdxl_model_close(m);

    char dir[1024];
    test_model_dir("tiny-a", dir, sizeof dir);
    load_log cancel = {.cancel_after = 3};
    mp.load_progress_user = &cancel;
    sdxl_error err;
    assert_int_equal(sdxl_model_open(dir, &mp, &m, &err), SDXL_ERR_CANCELLED);
    assert_null(m);
    assert_int_equal(cancel.calls, 3);
}

static void test_model_open_errors(void **state)
{
    (void)state;
    sdxl_model *m;
    sdxl_error err;
    assert_int_equal(sdxl_model_open("/nonexistent/sdxl", NULL, &m, &err), SDXL_ERR_NOT_FOUND);
    assert_null(m);
    assert_non_null(strstr(err.message, "/nonexistent/sdxl"));

    char dir[1024];
    test_model_dir("tiny-a", dir, sizeof dir);
    sdxl_model_params mp = sdxl_model_default_params();
    mp.threads = -1;
    assert_int_equal(sdxl_model_open(dir, &mp, &m, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_string_equal(err.field, "threads");
    mp = sdxl_model_default_params();
    mp.backend = SDXL_BACKEND_CPU;
    mp.dtype = SDXL_DTYPE_FP16;
    assert_int_equal(sdxl_model_open(dir, &mp, &m, &err), SDXL_ERR_UNSUPPORTED);
    assert_string_equal(err.field, "dtype");
    mp.dtype = (sdxl_compute_dtype)9;
    assert_int_equal(sdxl_model_open(dir, &mp, &m, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_string_equal(err.field, "dtype");
    mp = sdxl_model_default_params();
    mp.backend = (sdxl_backend_kind)7;
    assert_int_equal(sdxl_model_open(dir, &mp, &m, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_string_equal(err.field, "backend");
    assert_int_equal(sdxl_model_open(NULL, NULL, &m, &err), SDXL_ERR_INVALID_ARGUMENT);
}

/* ---- parameters ----------------------------------------------------------------------------- */

typedef struct invalid_case {
    const char *what;
    void (*change)(sdxl_generate_params *p, sdxl_image *picture);
    const char *field;
} invalid_case;

#define CHANGE(name, body)                                                                       \
    static void name(sdxl_generate_params *p, sdxl_image *picture)                               \
    {                                                                                            \
        (void)picture;                                                                           \
        body;                                                                                    \
    }

static const char bad_utf8[] = {'a', ' ', (char)0xC3, (char)0x28, 0};

CHANGE(no_prompt, p->prompt = NULL)
CHANGE(prompt_not_utf8, p->prompt = bad_utf8)
CHANGE(negative_not_utf8, p->negative_prompt = bad_utf8)
CHANGE(width_not_multiple, p->width = 60)
CHANGE(width_too_small, p->width = 4)
CHANGE(width_too_large, p->width = SDXL_MAX_SIDE + 8)
CHANGE(width_negative, p->width = -64)
CHANGE(height_not_multiple, p->height = 36)
CHANGE(height_too_large, p->height = SDXL_MAX_SIDE + 8)
CHANGE(steps_zero, p->num_inference_steps = 0)
CHANGE(steps_too_many, p->num_inference_steps = SDXL_MAX_STEPS + 1)
CHANGE(strength_zero, p->strength = 0.0f)
CHANGE(strength_over_one, p->strength = 1.5f)
CHANGE(strength_nan, p->strength = NAN)
CHANGE(no_step_runs, p->num_inference_steps = 3; p->strength = 0.3f) /* int(0.9) = 0 */
CHANGE(one_step_below, p->num_inference_steps = 1; p->strength = 0.99f)
CHANGE(guidance_negative, p->guidance_scale = -1.0f)
CHANGE(guidance_too_large, p->guidance_scale = SDXL_MAX_GUIDANCE + 1.0f)
CHANGE(guidance_nan, p->guidance_scale = NAN)
CHANGE(guidance_infinite, p->guidance_scale = INFINITY)
CHANGE(batch_zero, p->batch_size = 0)
CHANGE(batch_too_large, p->batch_size = SDXL_MAX_BATCH + 1)
CHANGE(image_no_pixels, picture->pixels = NULL)
CHANGE(image_zero_width, picture->width = 0)
CHANGE(image_smaller_than_a_latent, picture->width = 5; picture->height = 7)
CHANGE(image_too_large, picture->width = SDXL_MAX_SIDE + 16)

static const invalid_case INVALID[] = {
    {"no prompt", no_prompt, "prompt"},
    {"prompt not UTF-8", prompt_not_utf8, "prompt"},
    {"negative prompt not UTF-8", negative_not_utf8, "negative_prompt"},
    {"width not a multiple of 8", width_not_multiple, "width"},
    {"width below 8", width_too_small, "width"},
    {"width above the maximum", width_too_large, "width"},
    {"negative width", width_negative, "width"},
    {"height not a multiple of 8", height_not_multiple, "height"},
    {"height above the maximum", height_too_large, "height"},
    {"0 steps", steps_zero, "num_inference_steps"},
    {"too many steps", steps_too_many, "num_inference_steps"},
    {"strength 0", strength_zero, "strength"},
    {"strength above 1", strength_over_one, "strength"},
    {"strength NaN", strength_nan, "strength"},
    {"3 steps × strength 0.3", no_step_runs, "strength"},
    {"1 step × strength 0.99", one_step_below, "strength"},
    {"negative guidance", guidance_negative, "guidance_scale"},
    {"guidance above the maximum", guidance_too_large, "guidance_scale"},
    {"guidance NaN", guidance_nan, "guidance_scale"},
    {"guidance infinite", guidance_infinite, "guidance_scale"},
    {"batch 0", batch_zero, "batch_size"},
    {"batch above the maximum", batch_too_large, "batch_size"},
    {"image without pixels", image_no_pixels, "init_image"},
    {"image 0 wide", image_zero_width, "init_image"},
    {"image smaller than one latent pixel", image_smaller_than_a_latent, "init_image"},
    {"image wider than the maximum output", image_too_large, "init_image"},
};

static void test_invalid_params_name_their_field(void **state)
{
    tiny *t = *state;
    sdxl_model *m = t->m;
    sdxl_session *s = t->s;
    sdxl_error err;
    sdxl_image picture = make_picture(48, 40);
    uint8_t *pixels = picture.pixels;

    sdxl_generate_params ok = sdxl_default_generate_params();
    ok.prompt = "a cat";
    ok.init_image = &picture;
    check_ok(sdxl_validate_params(m, &ok, &err), &err);

    for (size_t i = 0; i < sizeof INVALID / sizeof INVALID[0]; i++) {
        const invalid_case *c = &INVALID[i];
        sdxl_generate_params p = ok;
        picture = (sdxl_image){.width = 48, .height = 40, .pixels = pixels};
        c->change(&p, &picture);
        sdxl_status st = sdxl_validate_params(m, &p, &err);
        printf("%-40s -> %s (%s): %s\n", c->what, sdxl_status_name(st), err.field, err.message);
        assert_int_equal(st, SDXL_ERR_INVALID_ARGUMENT);
        assert_string_equal(err.field, c->field);
        assert_true(strlen(err.message) > 10);

        sdxl_result res;
        memset(&err, 0, sizeof err);
        assert_int_equal(sdxl_generate(s, &p, &res, &err), SDXL_ERR_INVALID_ARGUMENT);
        assert_string_equal(err.field, c->field);
        assert_int_equal(res.n_images, 0);
        assert_null(res.images);
    }
    /* The refusal of steps × strength < 1 says what to do. */
    sdxl_generate_params p = ok;
    p.num_inference_steps = 3;
    p.strength = 0.3f;
    sdxl_validate_params(m, &p, &err);
    assert_non_null(strstr(err.message, "raise num_inference_steps or strength"));

    /* Strength is read as the decimal written: 10 × 0.7 is 7 steps, as in Python. */
    picture = (sdxl_image){.width = 48, .height = 40, .pixels = pixels};
    p = ok;
    p.num_inference_steps = 10;
    p.strength = 0.7f;
    p.seed_set = true;
    sdxl_result res;
    check_ok(sdxl_generate(s, &p, &res, &err), &err);
    assert_int_equal(res.timings.unet_steps, 7);
    sdxl_result_free(&res);

    /* txt2img ignores strength; a width alone keeps the default height. */
    p = ok;
    p.init_image = NULL;
    p.strength = 0.0f;
    p.width = 32;
    p.seed_set = true;
    check_ok(sdxl_generate(s, &p, &res, &err), &err);
    assert_int_equal(res.images[0].width, 32);
    assert_int_equal(res.images[0].height, 64);
    sdxl_result_free(&res);

    free(pixels);
}

static void test_memory_budget(void **state)
{
    (void)state;
    sdxl_model *m = open_tiny(NULL);
    sdxl_error err;
    uint64_t small, large, large_batch, txt;
    check_ok(sdxl_estimate_memory(m, 64, 64, 1, true, &small, &err), &err);
    check_ok(sdxl_estimate_memory(m, 128, 128, 1, true, &large, &err), &err);
    check_ok(sdxl_estimate_memory(m, 128, 128, 4, true, &large_batch, &err), &err);
    check_ok(sdxl_estimate_memory(m, 128, 128, 1, false, &txt, &err), &err);
    /* The decoder, which runs one image at a time, dominates on tiny-a: a batch needs no less
     * (more on models whose UNet dominates). */
    assert_true(small > 0 && small < large && large <= large_batch);
    assert_true(txt <= large);
    assert_int_equal(sdxl_estimate_memory(m, 100, 64, 1, true, &small, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_string_equal(err.field, "width");
    assert_int_equal(sdxl_estimate_memory(m, 64, 64, 0, true, &small, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_string_equal(err.field, "batch_size");
    sdxl_model_close(m);

    /* A budget between the two sizes admits the small request and refuses the large one before
     * it runs (with guidance, as the estimates assume). */
    sdxl_model_params mp = sdxl_model_default_params();
    mp.memory_budget_bytes = (small + large) / 2;
    m = open_tiny(&mp);
    sdxl_session *s;
    check_ok(sdxl_session_open(m, &s, &err), &err);
    sdxl_image picture = make_picture(64, 64);
    sdxl_generate_params p = sdxl_default_generate_params();
    p.prompt = "a cat";
    p.init_image = &picture;
    p.guidance_scale = 2.0f;
    check_ok(sdxl_validate_params(m, &p, &err), &err);
    sdxl_result res;
    check_ok(sdxl_generate(s, &p, &res, &err), &err);
    sdxl_result_free(&res);
    p.width = p.height = 128;
    assert_int_equal(sdxl_validate_params(m, &p, &err), SDXL_ERR_OUT_OF_MEMORY);
    assert_int_equal(sdxl_generate(s, &p, &res, &err), SDXL_ERR_OUT_OF_MEMORY);
    assert_non_null(strstr(err.message, "budget"));
    assert_int_equal(res.n_images, 0);
    free(picture.pixels);
    sdxl_session_close(s);
    sdxl_model_close(m);
}

/* ---- running ------------------------------------------------------------------------------ */

typedef struct events {
    sdxl_progress seen[64];
    int n;
    int cancel_at; /* event index whose callback returns false; -1: never */
    int images[SDXL_MAX_BATCH];
    uint64_t image_seeds[SDXL_MAX_BATCH];
    int n_images;
} events;

static bool on_progress(void *user, const sdxl_progress *p)
{
    events *e = user;
    assert_true(e->n < 64);
    e->seen[e->n] = *p;
    return e->n++ != e->cancel_at;
}

static void on_image(void *user, int index, const sdxl_image *image, uint64_t seed)
{
    events *e = user;
    assert_non_null(image->pixels);
    e->images[e->n_images] = index;
    e->image_seeds[e->n_images] = seed;
    e->n_images++;
}

static void test_progress_and_image_callbacks(void **state)
{
    tiny *t = *state;
    sdxl_session *s = t->s;
    sdxl_error err;
    sdxl_image picture = make_picture(48, 40);
    events e = {.cancel_at = -1};
    sdxl_generate_params p = seeded_params("a cat", 77);
    p.init_image = &picture;
    p.num_inference_steps = 4;
    p.strength = 0.75f; /* 3 steps */
    p.batch_size = 2;
    p.progress = on_progress;
    p.progress_user = &e;
    p.on_image = on_image;
    p.on_image_user = &e;
    sdxl_result res;
    check_ok(sdxl_generate(s, &p, &res, &err), &err);

    /* text, encode, denoise 1..3, decode */
    const sdxl_stage stages[] = {SDXL_STAGE_TEXT, SDXL_STAGE_VAE_ENCODE, SDXL_STAGE_DENOISE,
                                 SDXL_STAGE_DENOISE, SDXL_STAGE_DENOISE, SDXL_STAGE_VAE_DECODE};
    assert_int_equal(e.n, 6);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(e.seen[i].stage, stages[i]);
        assert_int_equal(e.seen[i].total_steps, 3);
        assert_int_equal(e.seen[i].step, stages[i] == SDXL_STAGE_DENOISE ? i - 1 : 0);
    }
    assert_int_equal(e.n_images, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(e.images[i], i);
        assert_true(e.image_seeds[i] == 77 + (uint64_t)i);
        assert_true(res.seeds[i] == 77 + (uint64_t)i);
        assert_int_equal(res.images[i].width, 48);
        assert_int_equal(res.images[i].height, 40);
    }
    assert_int_equal(res.timings.unet_steps, 3);
    assert_true(res.timings.total_ms >= res.timings.unet_ms);
    sdxl_result_free(&res);
    free(picture.pixels);
}

static void test_cancel_from_progress(void **state)
{
    tiny *t = *state;
    sdxl_session *s = t->s;
    sdxl_error err;
    sdxl_generate_params p = seeded_params("a cat", 5);
    p.num_inference_steps = 3; /* txt2img: text, denoise 1..3, decode */
    p.progress = on_progress;
    p.on_image = on_image;

    sdxl_result reference;
    events e = {.cancel_at = -1};
    p.progress_user = p.on_image_user = &e;
    check_ok(sdxl_generate(s, &p, &reference, &err), &err);
    assert_int_equal(e.n, 5);

    for (int at = 0; at < 5; at++) { /* at every event: before the text, each step, decode */
        events c = {.cancel_at = at};
        p.progress_user = p.on_image_user = &c;
        sdxl_result res;
        assert_int_equal(sdxl_generate(s, &p, &res, &err), SDXL_ERR_CANCELLED);
        assert_int_equal(c.n, at + 1); /* nothing reported after the cancelling event */
        assert_int_equal(c.n_images, 0);
        assert_int_equal(res.n_images, 0);
        assert_null(res.images);
    }
    /* The session is fine afterwards and still deterministic. */
    events again = {.cancel_at = -1};
    p.progress_user = p.on_image_user = &again;
    sdxl_result res;
    check_ok(sdxl_generate(s, &p, &res, &err), &err);
    assert_memory_equal(res.images[0].pixels, reference.images[0].pixels, 64 * 64 * 3);
    sdxl_result_free(&res);
    sdxl_result_free(&reference);
}

static void test_random_seed_is_reported_and_reproducible(void **state)
{
    tiny *t = *state;
    sdxl_session *s = t->s;
    sdxl_error err;
    sdxl_generate_params p = sdxl_default_generate_params();
    p.prompt = "";
    p.width = p.height = 32;
    sdxl_result first, second, again;
    check_ok(sdxl_generate(s, &p, &first, &err), &err);
    check_ok(sdxl_generate(s, &p, &second, &err), &err);
    assert_true(first.seeds[0] != second.seeds[0]);
    p.seed = first.seeds[0];
    p.seed_set = true;
    check_ok(sdxl_generate(s, &p, &again, &err), &err);
    assert_memory_equal(again.images[0].pixels, first.images[0].pixels, 32 * 32 * 3);
    sdxl_result_free(&first);
    sdxl_result_free(&second);
    sdxl_result_free(&again);
}

/* Two sessions over one model give the same images (the model is shared read-only). */
static void test_sessions_share_a_model(void **state)
{
    tiny *t = *state;
    sdxl_session *a = t->s, *b;
    sdxl_error err;
    check_ok(sdxl_session_open(t->m, &b, &err), &err);
    sdxl_image picture = make_picture(64, 64);
    sdxl_generate_params p = seeded_params("a lighthouse", 9);
    p.init_image = &picture;
    p.guidance_scale = 2.0f;
    sdxl_result ra, rb;
    check_ok(sdxl_generate(a, &p, &ra, &err), &err);
    check_ok(sdxl_generate(b, &p, &rb, &err), &err);
    assert_memory_equal(ra.images[0].pixels, rb.images[0].pixels, 64 * 64 * 3);
    sdxl_result_free(&ra);
    sdxl_result_free(&rb);
    free(picture.pixels);
    sdxl_session_close(b);
}

#define WITH_SESSION(test)                                                                       \
    cmocka_unit_test_setup_teardown(test, open_tiny_session, close_tiny_session)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_info),
        cmocka_unit_test(test_model_load_progress),
        cmocka_unit_test(test_model_open_errors),
        WITH_SESSION(test_invalid_params_name_their_field),
        cmocka_unit_test(test_memory_budget),
        WITH_SESSION(test_progress_and_image_callbacks),
        WITH_SESSION(test_cancel_from_progress),
        WITH_SESSION(test_random_seed_is_reported_and_reproducible),
        WITH_SESSION(test_sessions_share_a_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
