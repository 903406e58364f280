/*
 * test_engine_api_header.c — include/sdxl.h is a self-contained, strict C11 header: it comes
 * first here, with no other project header, under -Wpedantic as an error (the build is already
 * -std=c11 without extensions), and its documented defaults and names hold.
 */
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic error "-Wpedantic"
#endif
#include "sdxl.h"
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

static void test_generate_defaults_are_the_prds(void **state)
{
    (void)state;
    sdxl_generate_params p = sdxl_default_generate_params();
    assert_null(p.prompt);
    assert_null(p.negative_prompt);
    assert_null(p.init_image);
    assert_int_equal(p.width, 0);
    assert_int_equal(p.height, 0);
    assert_int_equal(p.num_inference_steps, 2);
    assert_true(p.strength == 0.8f);
    assert_true(p.guidance_scale == 0.0f);
    assert_false(p.seed_set);
    assert_int_equal(p.batch_size, 1);
    assert_null(p.progress);
    assert_null(p.on_image);
}

static void test_model_defaults(void **state)
{
    (void)state;
    sdxl_model_params p = sdxl_model_default_params();
    assert_int_equal(p.backend, SDXL_BACKEND_AUTO);
    assert_int_equal(p.dtype, SDXL_DTYPE_AUTO);
    assert_int_equal(p.threads, 0);
    assert_true(p.memory_budget_bytes == 0);
    assert_false(p.vae_tiling);
    assert_true(p.prompt_cache_entries > 0);
    assert_null(p.load_progress);
}

static void test_status_names_are_stable(void **state)
{
    (void)state;
    assert_int_equal(SDXL_OK, 0);
    assert_int_equal(SDXL_ERR_INTERNAL, 10);
    assert_string_equal(sdxl_status_name(SDXL_OK), "SDXL_OK");
    assert_string_equal(sdxl_status_name(SDXL_ERR_CANCELLED), "SDXL_ERR_CANCELLED");
    assert_string_equal(sdxl_status_name((sdxl_status)99), "SDXL_ERR_UNKNOWN");
}

/* A client's first mistakes are answered with a status and a message, never a crash. */
static void test_null_arguments_are_refused(void **state)
{
    (void)state;
    sdxl_error err;
    sdxl_model *m = (sdxl_model *)&err; /* overwritten with NULL on failure */
    assert_int_equal(sdxl_model_open(NULL, NULL, &m, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_null(m);
    assert_true(strlen(err.message) > 0);
    assert_int_equal(sdxl_model_open("/nonexistent", NULL, NULL, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    sdxl_session *s;
    assert_int_equal(sdxl_session_open(NULL, &s, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_null(s);
    sdxl_result r;
    sdxl_generate_params p = sdxl_default_generate_params();
    assert_int_equal(sdxl_generate(NULL, &p, &r, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_int_equal(r.n_images, 0);
    assert_int_equal(sdxl_validate_params(NULL, &p, &err), SDXL_ERR_INVALID_ARGUMENT);
    uint64_t bytes;
    assert_int_equal(sdxl_estimate_memory(NULL, 512, 512, 1, true, &bytes, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    sdxl_model_close(NULL);
    sdxl_session_close(NULL);
    sdxl_result_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_defaults_are_the_prds),
        cmocka_unit_test(test_model_defaults),
        cmocka_unit_test(test_status_names_are_stable),
        cmocka_unit_test(test_null_arguments_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
