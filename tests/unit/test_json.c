/*
 * test_json.c — configuration reading: every getter with the key present, missing, null, of
 * the wrong type; integers that are not whole; scalar-or-array; parse errors with their byte
 * offset; loading files with a size limit. Messages must name the file and the key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/json.h"
#include "support/paths.h"

static const char config_text[] =
    "{\n"
    "  \"_class_name\": \"UNet2DConditionModel\",\n"
    "  \"layers_per_block\": 2,\n"
    "  \"sample_size\": 128.0,\n"
    "  \"norm_eps\": 1e-05,\n"
    "  \"half\": 0.5,\n"
    "  \"huge\": 1e30,\n"
    "  \"negative\": -7,\n"
    "  \"center_input_sample\": false,\n"
    "  \"flip\": true,\n"
    "  \"addition_embed_type\": null,\n"
    "  \"block_out_channels\": [320, 640, 1280],\n"
    "  \"attention_head_dim\": 5,\n"
    "  \"transformer_layers\": [1, 2.5, 10],\n"
    "  \"down_block_types\": [\"DownBlock2D\", \"CrossAttnDownBlock2D\"],\n"
    "  \"mixed\": [\"a\", 3],\n"
    "  \"empty\": [],\n"
    "  \"nested\": {\"inner\": \"x\", \"count\": \"3\"}\n"
    "}\n";

static json_doc doc;

static int setup(void **state)
{
    sdxl_error err;
    return json_doc_parse(&doc, config_text, strlen(config_text), "unet/config.json", &err);
}

static int teardown(void **state)
{
    json_doc_free(&doc);
    return 0;
}

/* The call failed with code, and its message names the file and contains `want`. */
static void assert_fails(sdxl_status st, const sdxl_error *err, sdxl_status code,
                         const char *want)
{
    assert_int_equal(st, code);
    assert_int_equal(err->code, code);
    if (!strstr(err->message, "unet/config.json") || !strstr(err->message, want))
        fail_msg("message \"%s\" lacks the file name or \"%s\"", err->message, want);
}

static void test_get_int(void **state)
{
    const cJSON *root = json_doc_root(&doc);
    sdxl_error err;
    long long v = 0;
    assert_int_equal(json_get_int(&doc, root, "layers_per_block", &v, &err), SDXL_OK);
    assert_int_equal(v, 2);
    assert_int_equal(json_get_int(&doc, root, "sample_size", &v, &err), SDXL_OK); /* 128.0 */
    assert_int_equal(v, 128);
    assert_int_equal(json_get_int(&doc, root, "negative", &v, &err), SDXL_OK);
    assert_int_equal(v, -7);
    assert_fails(json_get_int(&doc, root, "missing_key", &v, &err), &err, SDXL_ERR_NOT_FOUND,
                 "\"missing_key\" is missing");
    assert_fails(json_get_int(&doc, root, "addition_embed_type", &v, &err), &err,
                 SDXL_ERR_FORMAT, "key \"addition_embed_type\": expected an integer, got null");
    assert_fails(json_get_int(&doc, root, "_class_name", &v, &err), &err, SDXL_ERR_FORMAT,
                 "key \"_class_name\": expected an integer, got a string");
    assert_fails(json_get_int(&doc, root, "half", &v, &err), &err, SDXL_ERR_FORMAT,
                 "key \"half\": expected an integer, got 0.5");
    assert_fails(json_get_int(&doc, root, "huge", &v, &err), &err, SDXL_ERR_FORMAT,
                 "key \"huge\": expected an integer");
    assert_fails(json_get_int(&doc, root, "block_out_channels", &v, &err), &err,
                 SDXL_ERR_FORMAT, "got an array");
}

static void test_get_int_opt(void **state)
{
    const cJSON *root = json_doc_root(&doc);
    sdxl_error err;
    long long v = 0;
    assert_int_equal(json_get_int_opt(&doc, root, "layers_per_block", 9, &v, &err), SDXL_OK);
    assert_int_equal(v, 2);
    assert_int_equal(json_get_int_opt(&doc, root, "missing_key", 9, &v, &err), SDXL_OK);
    assert_int_equal(v, 9);
    assert_int_equal(json_get_int_opt(&doc, root, "addition_embed_type", 8, &v, &err), SDXL_OK);
    assert_int_equal(v, 8);
    assert_fails(json_get_int_opt(&doc, root, "flip", 1, &v, &err), &err, SDXL_ERR_FORMAT,
                 "key \"flip\": expected an integer, got a boolean");
    assert_fails(json_get_int_opt(&doc, root, "half", 1, &v, &err), &err, SDXL_ERR_FORMAT,
                 "key \"half\": expected an integer");
}

static void test_get_double(void **state)
{
    const cJSON *root = json_doc_root(&doc);
    sdxl_error err;
    double d = 0;
    assert_int_equal(json_get_double(&doc, root, "norm_eps", &d, &err), SDXL_OK);
    assert_true(d == 1e-05);
    assert_int_equal(json_get_double(&doc, root, "layers_per_block", &d, &err), SDXL_OK);
    assert_true(d == 2.0);
    assert_fails(json_get_double(&doc, root, "nope", &d, &err), &err, SDXL_ERR_NOT_FOUND,
                 "\"nope\"");
    assert_fails(json_get_double(&doc, root, "addition_embed_type", &d, &err), &err,
                 SDXL_ERR_FORMAT, "expected a number, got null");
    assert_fails(json_get_double(&doc, root, "nested", &d, &err), &err, SDXL_ERR_FORMAT,
                 "key \"nested\": expected a number, got an object");
    assert_int_equal(json_get_double_opt(&doc, root, "nope", 0.25, &d, &err), SDXL_OK);
    assert_true(d == 0.25);
    assert_int_equal(json_get_double_opt(&doc, root, "addition_embed_type", 0.5, &d, &err),
                     SDXL_OK);
    assert_true(d == 0.5);
    assert_int_equal(json_get_double_opt(&doc, root, "half", 0.0, &d, &err), SDXL_OK);
    assert_true(d == 0.5);
    assert_fails(json_get_double_opt(&doc, root, "_class_name", 0.0, &d, &err), &err,
                 SDXL_ERR_FORMAT, "expected a number, got a string");
}

static void test_get_bool(void **state)
{
    const cJSON *root = json_doc_root(&doc);
    sdxl_error err;
    bool b = true;
    assert_int_equal(json_get_bool(&doc, root, "center_input_sample", &b, &err), SDXL_OK);
    assert_false(b);
    assert_int_equal(json_get_bool(&doc, root, "flip", &b, &err), SDXL_OK);
    assert_true(b);
    assert_fails(json_get_bool(&doc, root, "nope", &b, &err), &err, SDXL_ERR_NOT_FOUND,
                 "\"nope\"");
    assert_fails(json_get_bool(&doc, root, "addition_embed_type", &b, &err), &err,
                 SDXL_ERR_FORMAT, "expected a boolean, got null");
    assert_fails(json_get_bool(&doc, root, "layers_per_block", &b, &err), &err, SDXL_ERR_FORMAT,
                 "key \"layers_per_block\": expected a boolean, got a number");
    assert_int_equal(json_get_bool_opt(&doc, root, "nope", true, &b, &err), SDXL_OK);
    assert_true(b);
    assert_int_equal(json_get_bool_opt(&doc, root, "addition_embed_type", false, &b, &err),
                     SDXL_OK);
    assert_false(b);
    assert_int_equal(json_get_bool_opt(&doc, root, "flip", false, &b, &err), SDXL_OK);
    assert_true(b);
    assert_fails(json_get_bool_opt(&doc, root, "_class_name", false, &b, &err), &err,
                 SDXL_ERR_FORMAT, "expected a boolean, got a string");
}

static void test_get_string(void **state)
{
    const cJSON *root = json_doc_root(&doc);
    sdxl_error err;
    const char *s = NULL;
    assert_int_equal(json_get_string(&doc, root, "_class_name", &s, &err), SDXL_OK);
    assert_string_equal(s, "UNet2DConditionModel");
    assert_fails(json_get_string(&doc, root, "nope", &s, &err), &err, SDXL_ERR_NOT_FOUND,
                 "\"nope\"");
    assert_fails(json_get_string(&doc, root, "addition_embed_type", &s, &err), &err,
                 SDXL_ERR_FORMAT, "expected a string, got null");
    assert_fails(json_get_string(&doc, root, "down_block_types", &s, &err), &err,
                 SDXL_ERR_FORMAT, "key \"down_block_types\": expected a string, got an array");
    assert_int_equal(json_get_string_opt(&doc, root, "nope", "dflt", &s, &err), SDXL_OK);
    assert_string_equal(s, "dflt");
    assert_int_equal(json_get_string_opt(&doc, root, "addition_embed_type", NULL, &s, &err),
                     SDXL_OK);
    assert_null(s);
    assert_int_equal(json_get_string_opt(&doc, root, "_class_name", NULL, &s, &err), SDXL_OK);
    assert_string_equal(s, "UNet2DConditionModel");
    assert_fails(json_get_string_opt(&doc, root, "half", "x", &s, &err), &err, SDXL_ERR_FORMAT,
                 "key \"half\": expected a string, got a number");
}

static void test_get_object_and_nested_keys(void **state)
{
    const cJSON *root = json_doc_root(&doc);
    sdxl_error err;
    const cJSON *nested = NULL;
    assert_int_equal(json_get_object(&doc, root, "nested", &nested, &err), SDXL_OK);
    const char *s = NULL;
    assert_int_equal(json_get_string(&doc, nested, "inner", &s, &err), SDXL_OK);
    assert_string_equal(s, "x");
    long long v;
    /* Keys inside a nested object are reported with their parent. */
    assert_fails(json_get_int(&doc, nested, "count", &v, &err), &err, SDXL_ERR_FORMAT,
                 "key \"nested.count\": expected an integer, got a string");
    assert_fails(json_get_object(&doc, root, "nope", &nested, &err), &err, SDXL_ERR_NOT_FOUND,
                 "\"nope\"");
    assert_fails(json_get_object(&doc, root, "addition_embed_type", &nested, &err), &err,
                 SDXL_ERR_FORMAT, "expected an object, got null");
    assert_fails(json_get_object(&doc, root, "flip", &nested, &err), &err, SDXL_ERR_FORMAT,
                 "key \"flip\": expected an object, got a boolean");
    /* Looking a key up in something that is not an object. */
    const cJSON *array = cJSON_GetObjectItemCaseSensitive(root, "block_out_channels");
    assert_fails(json_get_int(&doc, array, "x", &v, &err), &err, SDXL_ERR_FORMAT,
                 "block_out_channels is not an object");
}

static void test_get_int_array_scalar_or_array(void **state)
{
    const cJSON *root = json_doc_root(&doc);
    sdxl_error err;
    long long out[4] = {0};
    assert_int_equal(json_get_int_array(&doc, root, "block_out_channels", false, 3, out, &err),
                     SDXL_OK);
    assert_true(out[0] == 320 && out[1] == 640 && out[2] == 1280);
    assert_int_equal(json_get_int_array(&doc, root, "attention_head_dim", true, 3, out, &err),
                     SDXL_OK);
    assert_true(out[0] == 5 && out[1] == 5 && out[2] == 5);
    assert_int_equal(json_get_int_array(&doc, root, "block_out_channels", true, 3, out, &err),
                     SDXL_OK);
    assert_int_equal(out[2], 1280);
    assert_fails(json_get_int_array(&doc, root, "attention_head_dim", false, 3, out, &err), &err,
                 SDXL_ERR_FORMAT, "key \"attention_head_dim\": expected an array of integers");
    assert_fails(json_get_int_array(&doc, root, "block_out_channels", false, 4, out, &err),
                 &err, SDXL_ERR_FORMAT, "expected 4 integers");
    assert_fails(json_get_int_array(&doc, root, "transformer_layers", true, 3, out, &err), &err,
                 SDXL_ERR_FORMAT, "key \"transformer_layers[1]\": expected an integer");
    assert_fails(json_get_int_array(&doc, root, "half", true, 3, out, &err), &err,
                 SDXL_ERR_FORMAT, "key \"half\": expected an integer");
    assert_fails(json_get_int_array(&doc, root, "_class_name", true, 3, out, &err), &err,
                 SDXL_ERR_FORMAT, "expected an integer or an array of integers, got a string");
    assert_fails(json_get_int_array(&doc, root, "addition_embed_type", true, 3, out, &err), &err,
                 SDXL_ERR_FORMAT, "got null");
    assert_fails(json_get_int_array(&doc, root, "nope", true, 3, out, &err), &err,
                 SDXL_ERR_NOT_FOUND, "\"nope\"");
}

static void test_get_int_list(void **state)
{
    const cJSON *root = json_doc_root(&doc);
    sdxl_error err;
    long long out[3] = {0};
    size_t count = 99;
    assert_int_equal(json_get_int_list(&doc, root, "block_out_channels", 3, out, &count, &err),
                     SDXL_OK);
    assert_int_equal(count, 3);
    assert_int_equal(out[1], 640);
    assert_int_equal(json_get_int_list(&doc, root, "empty", 3, out, &count, &err), SDXL_OK);
    assert_int_equal(count, 0);
    assert_fails(json_get_int_list(&doc, root, "block_out_channels", 2, out, &count, &err), &err,
                 SDXL_ERR_UNSUPPORTED, "3 elements, at most 2");
    assert_fails(json_get_int_list(&doc, root, "transformer_layers", 3, out, &count, &err), &err,
                 SDXL_ERR_FORMAT, "transformer_layers[1]");
    assert_int_equal(count, 0);
    assert_fails(json_get_int_list(&doc, root, "attention_head_dim", 3, out, &count, &err), &err,
                 SDXL_ERR_FORMAT, "expected an array of integers, got a number");
    assert_fails(json_get_int_list(&doc, root, "nope", 3, out, &count, &err), &err,
                 SDXL_ERR_NOT_FOUND, "\"nope\"");
}

static void test_get_string_list(void **state)
{
    const cJSON *root = json_doc_root(&doc);
    sdxl_error err;
    const char *out[2] = {NULL, NULL};
    size_t count = 99;
    assert_int_equal(json_get_string_list(&doc, root, "down_block_types", 2, out, &count, &err),
                     SDXL_OK);
    assert_int_equal(count, 2);
    assert_string_equal(out[0], "DownBlock2D");
    assert_string_equal(out[1], "CrossAttnDownBlock2D");
    assert_fails(json_get_string_list(&doc, root, "down_block_types", 1, out, &count, &err),
                 &err, SDXL_ERR_UNSUPPORTED, "2 elements, at most 1");
    assert_fails(json_get_string_list(&doc, root, "mixed", 2, out, &count, &err), &err,
                 SDXL_ERR_FORMAT, "key \"mixed[1]\": expected a string, got a number");
    assert_int_equal(count, 0);
    assert_fails(json_get_string_list(&doc, root, "_class_name", 2, out, &count, &err), &err,
                 SDXL_ERR_FORMAT, "expected an array of strings, got a string");
    assert_fails(json_get_string_list(&doc, root, "nope", 2, out, &count, &err), &err,
                 SDXL_ERR_NOT_FOUND, "\"nope\"");
}

/* Parses text (not NUL-terminated: copied to an exact-size heap block, so ASan catches a read
 * past the end) and checks the error. */
static void assert_parse_fails(const char *text, const char *want)
{
    size_t len = strlen(text);
    char *copy = malloc(len ? len : 1);
    memcpy(copy, text, len);
    json_doc bad;
    sdxl_error err;
    sdxl_status st = json_doc_parse(&bad, copy, len, "broken.json", &err);
    free(copy);
    assert_int_equal(st, SDXL_ERR_FORMAT);
    assert_null(bad.root);
    if (!strstr(err.message, "broken.json") || !strstr(err.message, want))
        fail_msg("message \"%s\" lacks the file name or \"%s\"", err.message, want);
}

static void test_parse_errors_give_byte_offset(void **state)
{
    assert_parse_fails("{\"a\": 1,\n \"b\": tru}", "at byte 15 (line 2)");
    assert_parse_fails("{\"a\": [1, 2}", "at byte 11");
    assert_parse_fails("", "at byte 0");
    assert_parse_fails("{\"a\": 1", "invalid JSON at byte");
    assert_parse_fails("{\"a\": 1} {\"b\": 2}", "at byte 9 (line 1): unexpected data after");
    assert_parse_fails("[1, 2]", "expected a JSON object");
    assert_parse_fails("\"text\"", "expected a JSON object");

    /* Trailing whitespace is fine, and the text need not end in NUL. */
    const char text[] = {'{', '"', 'k', '"', ':', '1', '}', ' ', '\n'};
    json_doc ok;
    sdxl_error err;
    assert_int_equal(json_doc_parse(&ok, text, sizeof text, "ok.json", &err), SDXL_OK);
    long long v;
    assert_int_equal(json_get_int(&ok, json_doc_root(&ok), "k", &v, &err), SDXL_OK);
    assert_int_equal(v, 1);
    json_doc_free(&ok);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    fclose(f);
}

static void test_load_files_with_limit(void **state)
{
    char dir[512], path[600];
    assert_int_equal(test_make_temp_dir(dir, sizeof dir), SDXL_OK);
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_file(path, config_text);

    json_doc loaded;
    sdxl_error err;
    assert_int_equal(json_doc_load(&loaded, path, 0, &err), SDXL_OK);
    long long v;
    assert_int_equal(json_get_int(&loaded, json_doc_root(&loaded), "layers_per_block", &v, &err),
                     SDXL_OK);
    assert_int_equal(v, 2);
    json_doc_free(&loaded);

    size_t len = strlen(config_text);
    assert_int_equal(json_doc_load(&loaded, path, len, &err), SDXL_OK); /* exactly the limit */
    json_doc_free(&loaded);
    assert_int_equal(json_doc_load(&loaded, path, len - 1, &err), SDXL_ERR_LIMIT);
    assert_non_null(strstr(err.message, path));

    char missing[600];
    snprintf(missing, sizeof missing, "%s/absent.json", dir);
    assert_int_equal(json_doc_load(&loaded, missing, 0, &err), SDXL_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, "absent.json"));

    write_file(path, "{\"a\": }");
    assert_int_equal(json_doc_load(&loaded, path, 0, &err), SDXL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "config.json: invalid JSON at byte 6"));

    /* Longer than the first read block, to exercise growing the buffer. */
    size_t big_len = 200000;
    char *big = malloc(big_len + 1);
    memset(big, ' ', big_len);
    memcpy(big, "{\"k\": 7}", 8);
    big[big_len] = '\0';
    write_file(path, big);
    free(big);
    assert_int_equal(json_doc_load(&loaded, path, 0, &err), SDXL_OK);
    assert_int_equal(json_get_int(&loaded, json_doc_root(&loaded), "k", &v, &err), SDXL_OK);
    assert_int_equal(v, 7);
    json_doc_free(&loaded);

    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_int),
        cmocka_unit_test(test_get_int_opt),
        cmocka_unit_test(test_get_double),
        cmocka_unit_test(test_get_bool),
        cmocka_unit_test(test_get_string),
        cmocka_unit_test(test_get_object_and_nested_keys),
        cmocka_unit_test(test_get_int_array_scalar_or_array),
        cmocka_unit_test(test_get_int_list),
        cmocka_unit_test(test_get_string_list),
        cmocka_unit_test(test_parse_errors_give_byte_offset),
        cmocka_unit_test(test_load_files_with_limit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
