/*
 * test_log.c — log lines in text and JSON formats (captured to a temporary file and parsed
 * back), level filtering, request ids, escaping, and whole lines under concurrent writers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"

enum { MAX_LINES = 1024 };

typedef struct captured {
    char *lines[MAX_LINES];
    size_t count;
} captured;

static FILE *capture_start(log_level level, log_format format)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    log_configure(level, format, f);
    return f;
}

/* Stops capturing and splits what was written into lines (without their '\n'). */
static void capture_end(FILE *f, captured *out)
{
    log_configure(LOG_LEVEL_INFO, LOG_FORMAT_TEXT, NULL);
    log_set_thread_request_id(NULL);
    rewind(f);
    out->count = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        assert_true(out->count < MAX_LINES);
        assert_int_equal(line[len - 1], '\n');
        line[len - 1] = '\0';
        out->lines[out->count++] = strdup(line);
    }
    free(line);
    fclose(f);
}

static void captured_free(captured *c)
{
    for (size_t i = 0; i < c->count; i++)
        free(c->lines[i]);
    c->count = 0;
}

/* Checks "YYYY-MM-DDTHH:MM:SS.mmmZ" and that it is (about) now: a wrong time zone or a
 * seconds/milliseconds mix-up is off by far more than a minute. */
static void assert_timestamp_now(const char *ts)
{
    assert_int_equal(strlen(ts), 24);
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm);
    assert_non_null(rest);
    assert_true(rest[0] == '.' && rest[1] >= '0' && rest[1] <= '9' && rest[2] >= '0' &&
                rest[2] <= '9' && rest[3] >= '0' && rest[3] <= '9' && rest[4] == 'Z');
    time_t logged = timegm(&tm);
    time_t now = time(NULL);
    assert_true(logged <= now && now - logged < 60);
}

static cJSON *parse_json_line(const char *line)
{
    cJSON *obj = cJSON_Parse(line);
    assert_non_null(obj);
    assert_true(cJSON_IsObject(obj));
    return obj;
}

static const char *json_str(const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

static void test_text_lines_have_timestamp_level_and_message(void **state)
{
    FILE *f = capture_start(LOG_LEVEL_DEBUG, LOG_FORMAT_TEXT);
    LOG_INFO("queued at position %d", 3);
    log_request(LOG_LEVEL_WARNING, "req-7f3a", "slow step %s", "2");
    LOG_ERROR("two\nlines");
    captured c;
    capture_end(f, &c);
    assert_int_equal(c.count, 3);
    char ts[25];
    memcpy(ts, c.lines[0], 24);
    ts[24] = '\0';
    assert_timestamp_now(ts);
    assert_string_equal(c.lines[0] + 24, " INFO  queued at position 3");
    assert_string_equal(c.lines[1] + 24, " WARN  [req-7f3a] slow step 2");
    /* A newline in a message must not start a new (forgeable) line. */
    assert_string_equal(c.lines[2] + 24, " ERROR two\\nlines");
    captured_free(&c);
}

static void test_json_lines_parse_back_with_escaping(void **state)
{
    /* Quotes, backslashes, control characters, valid UTF-8 (é) and an invalid byte. */
    const char *tricky = "say \"hi\" \\ C:\\path\ttab\nnl \x01 bell\x07 caf\xc3\xa9 bad\xff end";
    FILE *f = capture_start(LOG_LEVEL_DEBUG, LOG_FORMAT_JSON);
    LOG_DEBUG("%s", tricky);
    log_request(LOG_LEVEL_ERROR, "id \"with\" quote\n", "failed: %d", 42);
    captured c;
    capture_end(f, &c);
    assert_int_equal(c.count, 2);

    cJSON *first = parse_json_line(c.lines[0]);
    assert_timestamp_now(json_str(first, "ts"));
    assert_string_equal(json_str(first, "level"), "debug");
    assert_null(cJSON_GetObjectItemCaseSensitive(first, "request_id"));
    assert_string_equal(json_str(first, "msg"),
                        "say \"hi\" \\ C:\\path\ttab\nnl \x01 bell\x07 caf\xc3\xa9 bad\xef\xbf\xbd end");
    cJSON_Delete(first);

    cJSON *second = parse_json_line(c.lines[1]);
    assert_string_equal(json_str(second, "level"), "error");
    assert_string_equal(json_str(second, "request_id"), "id \"with\" quote\n");
    assert_string_equal(json_str(second, "msg"), "failed: 42");
    /* Keys in the documented order. */
    assert_non_null(strstr(c.lines[1], "{\"ts\":\""));
    assert_true(strstr(c.lines[1], "\"level\"") < strstr(c.lines[1], "\"request_id\""));
    assert_true(strstr(c.lines[1], "\"request_id\"") < strstr(c.lines[1], "\"msg\""));
    cJSON_Delete(second);
    captured_free(&c);
}

static void test_levels_filter(void **state)
{
    FILE *f = capture_start(LOG_LEVEL_WARNING, LOG_FORMAT_JSON);
    assert_false(log_enabled(LOG_LEVEL_DEBUG));
    assert_false(log_enabled(LOG_LEVEL_INFO));
    assert_true(log_enabled(LOG_LEVEL_WARNING));
    assert_true(log_enabled(LOG_LEVEL_ERROR));
    LOG_DEBUG("d");
    LOG_INFO("i");
    LOG_WARNING("w");
    log_request(LOG_LEVEL_INFO, "r", "i2");
    LOG_ERROR("e");
    log_message(LOG_LEVEL_OFF, "never");
    captured c;
    capture_end(f, &c);
    assert_int_equal(c.count, 2);
    cJSON *w = parse_json_line(c.lines[0]), *e = parse_json_line(c.lines[1]);
    assert_string_equal(json_str(w, "msg"), "w");
    assert_string_equal(json_str(w, "level"), "warning");
    assert_string_equal(json_str(e, "msg"), "e");
    cJSON_Delete(w);
    cJSON_Delete(e);
    captured_free(&c);

    f = capture_start(LOG_LEVEL_OFF, LOG_FORMAT_TEXT);
    assert_false(log_enabled(LOG_LEVEL_ERROR));
    LOG_ERROR("silenced");
    capture_end(f, &c);
    assert_int_equal(c.count, 0);
}

static void *log_from_other_thread(void *arg)
{
    LOG_INFO("from another thread");
    return NULL;
}

static void test_thread_request_id_is_per_thread(void **state)
{
    FILE *f = capture_start(LOG_LEVEL_INFO, LOG_FORMAT_JSON);
    log_set_thread_request_id("req-main");
    LOG_INFO("one");
    pthread_t other;
    assert_int_equal(pthread_create(&other, NULL, log_from_other_thread, NULL), 0);
    pthread_join(other, NULL);
    log_request(LOG_LEVEL_INFO, "req-explicit", "two"); /* explicit id wins */
    log_set_thread_request_id(NULL);
    LOG_INFO("three");
    captured c;
    capture_end(f, &c);
    assert_int_equal(c.count, 4);
    static const char *const expected_ids[] = {"req-main", NULL, "req-explicit", NULL};
    static const char *const expected_msgs[] = {"one", "from another thread", "two", "three"};
    for (size_t i = 0; i < 4; i++) {
        cJSON *line = parse_json_line(c.lines[i]);
        assert_string_equal(json_str(line, "msg"), expected_msgs[i]);
        if (expected_ids[i])
            assert_string_equal(json_str(line, "request_id"), expected_ids[i]);
        else
            assert_null(cJSON_GetObjectItemCaseSensitive(line, "request_id"));
        cJSON_Delete(line);
    }
    captured_free(&c);
}

static void test_long_messages_are_written_whole(void **state)
{
    enum { LEN = 5000 };
    char *big = malloc(LEN + 1);
    for (int i = 0; i < LEN; i++)
        big[i] = (char)('a' + i % 26);
    big[LEN] = '\0';
    FILE *f = capture_start(LOG_LEVEL_INFO, LOG_FORMAT_JSON);
    LOG_INFO("%s", big);
    captured c;
    capture_end(f, &c);
    assert_int_equal(c.count, 1);
    cJSON *line = parse_json_line(c.lines[0]);
    assert_string_equal(json_str(line, "msg"), big);
    cJSON_Delete(line);
    captured_free(&c);
    free(big);
}

enum { WRITERS = 4, LINES_PER_WRITER = 200 };

static void *write_many(void *arg)
{
    int id = (int)(intptr_t)arg;
    char rid[16];
    snprintf(rid, sizeof rid, "w%d", id);
    log_set_thread_request_id(rid);
    for (int i = 0; i < LINES_PER_WRITER; i++)
        LOG_INFO("writer %d line %d %s", id, i, "padding padding padding padding padding");
    return NULL;
}

static void test_concurrent_lines_never_interleave(void **state)
{
    FILE *f = capture_start(LOG_LEVEL_INFO, LOG_FORMAT_JSON);
    pthread_t threads[WRITERS];
    for (int i = 0; i < WRITERS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, write_many, (void *)(intptr_t)i), 0);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(threads[i], NULL);
    captured c;
    capture_end(f, &c);
    assert_int_equal(c.count, WRITERS * LINES_PER_WRITER);
    int next[WRITERS] = {0};
    for (size_t i = 0; i < c.count; i++) {
        cJSON *line = parse_json_line(c.lines[i]);
        int id, n;
        assert_int_equal(sscanf(json_str(line, "msg"), "writer %d line %d", &id, &n), 2);
        assert_true(id >= 0 && id < WRITERS);
        assert_int_equal(n, next[id]++); /* each writer's lines in its own order */
        char rid[16];
        snprintf(rid, sizeof rid, "w%d", id);
        assert_string_equal(json_str(line, "request_id"), rid);
        cJSON_Delete(line);
    }
    captured_free(&c);
}

static void test_level_and_format_names_parse(void **state)
{
    static const char *const names[] = {"debug", "info", "warning", "error", "off"};
    for (int i = 0; i < 5; i++) {
        log_level level = LOG_LEVEL_OFF;
        assert_true(log_level_parse(names[i], &level));
        assert_int_equal(level, i);
    }
    log_level level;
    assert_false(log_level_parse("verbose", &level));
    assert_false(log_level_parse("INFO ", &level));
    log_format format = LOG_FORMAT_TEXT;
    assert_true(log_format_parse("json", &format));
    assert_int_equal(format, LOG_FORMAT_JSON);
    assert_true(log_format_parse("text", &format));
    assert_int_equal(format, LOG_FORMAT_TEXT);
    assert_false(log_format_parse("xml", &format));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_lines_have_timestamp_level_and_message),
        cmocka_unit_test(test_json_lines_parse_back_with_escaping),
        cmocka_unit_test(test_levels_filter),
        cmocka_unit_test(test_thread_request_id_is_per_thread),
        cmocka_unit_test(test_long_messages_are_written_whole),
        cmocka_unit_test(test_concurrent_lines_never_interleave),
        cmocka_unit_test(test_level_and_format_names_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
