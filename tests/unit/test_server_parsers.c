/*
 * test_server_parsers.c — the server's parsers of untrusted text: sdxld's flags, the metrics
 * endpoint's HTTP request heads, bearer tokens, and UTF-8 prompts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/auth.h"
#include "server/http_request.h"
#include "server/options.h"
#include "server/request.h"

static sdxl_status parse(server_options *o, sdxl_error *err, int argc, ...)
{
    char *argv[32] = {"sdxld"};
    va_list ap;
    va_start(ap, argc);
    for (int i = 1; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    options_default(o);
    return options_parse(argc, argv, o, err);
}

static void options_defaults_and_values(void **state)
{
    server_options o;
    sdxl_error err;
    assert_int_equal(parse(&o, &err, 3, "--model", "m"), SDXL_OK);
    assert_string_equal(o.model_dir, "m");
    assert_string_equal(o.listen, "127.0.0.1:50051");
    assert_string_equal(o.metrics_listen, "127.0.0.1:9464");
    assert_int_equal(o.queue_size, 64);
    assert_int_equal(o.default_deadline_ms, 600000);
    assert_int_equal(
        parse(&o, &err, 15, "--model=m", "--queue-size", "3", "--max-image-bytes", "2M",
              "--listen=[::1]:7000", "--metrics-listen", "none", "--default-deadline", "1.5",
              "--on-shutdown", "cancel", "--socket-mode", "0660"),
        SDXL_OK);
    assert_int_equal(o.queue_size, 3);
    assert_int_equal(o.max_image_bytes, 2 << 20);
    assert_string_equal(o.listen, "[::1]:7000");
    assert_string_equal(o.metrics_listen, "");
    assert_int_equal(o.default_deadline_ms, 1500);
    assert_int_equal(o.shutdown, SHUTDOWN_CANCEL);
    assert_int_equal(o.socket_mode, 0660);
    assert_int_equal(parse(&o, &err, 2, "--help"), SDXL_OK);
    assert_true(o.help);
}

static void options_errors_name_the_flag(void **state)
{
    server_options o;
    sdxl_error err;
    static const struct {
        const char *flag, *value, *field;
    } bad[] = {
        {"--queue-size", "0", "queue-size"},       {"--queue-size", "5x", "queue-size"},
        {"--max-batch", "17", "max-batch"},        {"--listen", "nohost", "listen"},
        {"--listen", "h:99999", "listen"},         {"--backend", "tpu", "backend"},
        {"--max-image-bytes", "-1", "max-image-bytes"}, {"--socket-mode", "999", "socket-mode"},
        {"--default-deadline", "nan", "default-deadline"}, {"--log-level", "loud", "log-level"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(parse(&o, &err, 5, "--model", "m", bad[i].flag, bad[i].value),
                         SDXL_ERR_INVALID_ARGUMENT);
        assert_string_equal(err.field, bad[i].field);
        assert_non_null(strstr(err.message, bad[i].flag));
    }
    assert_int_equal(parse(&o, &err, 1), SDXL_ERR_INVALID_ARGUMENT);
    assert_string_equal(err.field, "model");
    assert_int_equal(parse(&o, &err, 4, "--model", "m", "--queue-size"),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_int_equal(parse(&o, &err, 4, "--model", "m", "--bogus"), SDXL_ERR_INVALID_ARGUMENT);
    assert_int_equal(parse(&o, &err, 5, "--model", "m", "--listen", "none"),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_int_equal(parse(&o, &err, 7, "--model", "m", "--listen", "none", "--socket", "/s"),
                     SDXL_OK);
}

static http_parse_result http(const char *text, http_request *req)
{
    return http_parse_request(text, strlen(text), req);
}

static void http_request_heads(void **state)
{
    http_request r;
    assert_int_equal(http("GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n", &r),
                     HTTP_PARSE_OK);
    assert_int_equal(r.method_len, 3);
    assert_int_equal(r.path_len, 8);
    assert_int_equal(r.target_len, 12);
    assert_int_equal(r.minor_version, 1);
    assert_int_equal(r.head_len, strlen("GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n"));
    assert_int_equal(http("HEAD / HTTP/1.0\n\n", &r), HTTP_PARSE_OK);
    assert_int_equal(http("GET /metrics HTTP/1.1\r\nHost: a\r\n", &r), HTTP_PARSE_INCOMPLETE);
    assert_int_equal(http("GET /metr", &r), HTTP_PARSE_INCOMPLETE);
    assert_int_equal(http("GET /metrics HTTP/2.0\r\n\r\n", &r), HTTP_PARSE_BAD);
    assert_int_equal(http("GET  /metrics HTTP/1.1\r\n\r\n", &r), HTTP_PARSE_BAD);
    assert_int_equal(http("G(T /metrics HTTP/1.1\r\n\r\n", &r), HTTP_PARSE_BAD);
    assert_int_equal(http("GET /metrics HTTP/1.1\r\nno colon\r\n\r\n", &r), HTTP_PARSE_BAD);
    assert_int_equal(http_parse_request("GET \0 HTTP/1.1", 14, &r), HTTP_PARSE_BAD);
}

static void bearer_tokens(void **state)
{
    const char *tok;
    size_t len;
    assert_true(auth_parse_bearer("Bearer abc", 10, &tok, &len));
    assert_int_equal(len, 3);
    assert_memory_equal(tok, "abc", 3);
    assert_true(auth_parse_bearer("bearer   abc  ", 14, &tok, &len));
    assert_int_equal(len, 3);
    assert_false(auth_parse_bearer("Basic abc", 9, &tok, &len));
    assert_false(auth_parse_bearer("Bearer", 6, &tok, &len));
    assert_false(auth_parse_bearer("Bearer    ", 10, &tok, &len));
    assert_false(auth_parse_bearer("Bearer a b", 10, &tok, &len));
    assert_false(auth_parse_bearer("Bearerabc", 9, &tok, &len));
    auth_token t = {.value = "s3cret", .len = 6};
    assert_true(auth_check(&t, "Bearer s3cret", 13));
    assert_false(auth_check(&t, "Bearer s3cre", 12));
    assert_false(auth_check(&t, "Bearer s3cret2", 14));
    assert_false(auth_check(&t, "Bearer S3cret", 13));
}

static void token_file(void **state)
{
    char path[] = "/tmp/sdxl-token-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("  tok-123 \r\nsecond line\n", f);
    fclose(f);
    auth_token t;
    sdxl_error err;
    assert_int_equal(auth_token_load(path, &t, &err), SDXL_OK);
    assert_string_equal(t.value, "tok-123");
    f = fopen(path, "w");
    fputs("\n", f);
    fclose(f);
    assert_int_equal(auth_token_load(path, &t, &err), SDXL_ERR_FORMAT);
    remove(path);
    assert_int_equal(auth_token_load(path, &t, &err), SDXL_ERR_IO);
}

static void utf8_validation(void **state)
{
    assert_true(request_utf8_valid("a cat \xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xb1", 17));
    assert_false(request_utf8_valid("\xff", 1));
    assert_false(request_utf8_valid("\xc0\xaf", 2));          /* overlong */
    assert_false(request_utf8_valid("\xed\xa0\x80", 3));      /* surrogate */
    assert_false(request_utf8_valid("\xf4\x90\x80\x80", 4));  /* over U+10FFFF */
    assert_false(request_utf8_valid("\xe2\x82", 2));          /* truncated */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(options_defaults_and_values),
        cmocka_unit_test(options_errors_name_the_flag),
        cmocka_unit_test(http_request_heads),
        cmocka_unit_test(bearer_tokens),
        cmocka_unit_test(token_file),
        cmocka_unit_test(utf8_validation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
