/*
 * test_status.c — the error model: error_set / error_prefix / error_field / error_clear and
 * status names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "base/status.h"

static void test_error_set_fills_code_and_message_and_returns_code(void **state)
{
    sdxl_error err = {.code = SDXL_OK};
    sdxl_status st = error_set(&err, SDXL_ERR_FORMAT, "file %s: tensor %s: %d dims", "a", "b", 3);
    assert_int_equal(st, SDXL_ERR_FORMAT);
    assert_int_equal(err.code, SDXL_ERR_FORMAT);
    assert_string_equal(err.message, "file a: tensor b: 3 dims");
}

static void test_null_error_is_allowed_everywhere(void **state)
{
    assert_int_equal(error_set(NULL, SDXL_ERR_IO, "x %d", 1), SDXL_ERR_IO);
    assert_int_equal(error_prefix(NULL, SDXL_ERR_LIMIT, "y"), SDXL_ERR_LIMIT);
    error_clear(NULL);
}

static void test_error_prefix_keeps_inner_message(void **state)
{
    sdxl_error err;
    error_set(&err, SDXL_ERR_UNSUPPORTED, "bad dtype");
    sdxl_status st = error_prefix(&err, SDXL_ERR_NOT_FOUND, "loading %s", "unet");
    assert_int_equal(st, SDXL_ERR_NOT_FOUND);
    assert_int_equal(err.code, SDXL_ERR_NOT_FOUND);
    assert_string_equal(err.message, "loading unet: bad dtype");
    error_prefix(&err, err.code, "model");
    assert_string_equal(err.message, "model: loading unet: bad dtype");
}

static void test_long_messages_are_truncated_and_terminated(void **state)
{
    char big[2 * SDXL_ERROR_MESSAGE_MAX];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    sdxl_error err;
    error_set(&err, SDXL_ERR_IO, "%s", big);
    assert_int_equal(strlen(err.message), SDXL_ERROR_MESSAGE_MAX - 1);
    error_set(&err, SDXL_ERR_IO, "inner");
    error_prefix(&err, SDXL_ERR_IO, "%s", big);
    assert_int_equal(strlen(err.message), SDXL_ERROR_MESSAGE_MAX - 1);
    assert_int_equal(err.message[0], 'x');
}

static void test_error_field_names_the_parameter_until_the_next_error(void **state)
{
    sdxl_error err;
    sdxl_status st = error_field(&err, error_set(&err, SDXL_ERR_INVALID_ARGUMENT, "too big"),
                                 "strength");
    assert_int_equal(st, SDXL_ERR_INVALID_ARGUMENT);
    assert_string_equal(err.field, "strength");
    error_prefix(&err, st, "request r1");
    assert_string_equal(err.field, "strength");
    assert_string_equal(err.message, "request r1: too big");
    error_set(&err, SDXL_ERR_IO, "disk");
    assert_string_equal(err.field, "");
    char long_field[3 * SDXL_ERROR_FIELD_MAX];
    memset(long_field, 'f', sizeof long_field - 1);
    long_field[sizeof long_field - 1] = '\0';
    error_field(&err, SDXL_ERR_IO, long_field);
    assert_int_equal(strlen(err.field), SDXL_ERROR_FIELD_MAX - 1);
    assert_int_equal(error_field(NULL, SDXL_ERR_LIMIT, "x"), SDXL_ERR_LIMIT);
}

static void test_error_clear_resets(void **state)
{
    sdxl_error err;
    error_field(&err, error_set(&err, SDXL_ERR_INTERNAL, "boom"), "seed");
    error_clear(&err);
    assert_int_equal(err.code, SDXL_OK);
    assert_string_equal(err.message, "");
    assert_string_equal(err.field, "");
}

static void test_status_names(void **state)
{
    assert_string_equal(sdxl_status_name(SDXL_OK), "SDXL_OK");
    assert_string_equal(sdxl_status_name(SDXL_ERR_FORMAT), "SDXL_ERR_FORMAT");
    assert_string_equal(sdxl_status_name(SDXL_ERR_INTERNAL), "SDXL_ERR_INTERNAL");
    assert_string_equal(sdxl_status_name((sdxl_status)99), "SDXL_ERR_UNKNOWN");
    /* Every code up to the last has its own name. */
    for (int code = SDXL_OK; code <= SDXL_ERR_INTERNAL; code++) {
        const char *name = sdxl_status_name((sdxl_status)code);
        assert_string_not_equal(name, "SDXL_ERR_UNKNOWN");
        for (int other = SDXL_OK; other < code; other++)
            assert_string_not_equal(name, sdxl_status_name((sdxl_status)other));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_set_fills_code_and_message_and_returns_code),
        cmocka_unit_test(test_null_error_is_allowed_everywhere),
        cmocka_unit_test(test_error_prefix_keeps_inner_message),
        cmocka_unit_test(test_long_messages_are_truncated_and_terminated),
        cmocka_unit_test(test_error_field_names_the_parameter_until_the_next_error),
        cmocka_unit_test(test_error_clear_resets),
        cmocka_unit_test(test_status_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
