/*
 * log.c — leveled text or JSON-lines logging (see log.h).
 *
 * Each line is built in memory first and written with one fwrite under a mutex, so lines from
 * different threads never interleave. Messages and request ids may carry client-supplied bytes,
 * so both formats escape control characters (a client must not be able to forge a log line),
 * and the JSON format also escapes quotes and backslashes and replaces invalid UTF-8 with
 * U+FFFD so that every line is valid JSON.
 */
#include "base/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Longest request id kept per thread (ids are generated or client-supplied and short). */
#define LOG_REQUEST_ID_MAX 128

static struct {
    log_level level;
    log_format format;
    FILE *out; /* NULL: stderr */
    pthread_mutex_t lock;
} log_state = {LOG_LEVEL_INFO, LOG_FORMAT_TEXT, NULL, PTHREAD_MUTEX_INITIALIZER};

static _Thread_local char thread_request_id[LOG_REQUEST_ID_MAX];

static const char *const level_names[] = {"debug", "info", "warning", "error", "off"};
/* Text lines pad the level to one width so the columns after it line up. */
static const char *const level_labels[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};

void log_configure(log_level level, log_format format, FILE *out)
{
    log_state.level = level;
    log_state.format = format;
    log_state.out = out;
}

bool log_level_parse(const char *name, log_level *out)
{
    for (int i = LOG_LEVEL_DEBUG; i <= LOG_LEVEL_OFF; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (log_level)i;
            return true;
        }
    }
    return false;
}

bool log_format_parse(const char *name, log_format *out)
{
    if (strcmp(name, "text") == 0)
        *out = LOG_FORMAT_TEXT;
    else if (strcmp(name, "json") == 0)
        *out = LOG_FORMAT_JSON;
    else
        return false;
    return true;
}

bool log_enabled(log_level level)
{
    return level >= log_state.level && level < LOG_LEVEL_OFF;
}

void log_set_thread_request_id(const char *request_id)
{
    if (!request_id) {
        thread_request_id[0] = '\0';
        return;
    }
    snprintf(thread_request_id, sizeof thread_request_id, "%s", request_id);
}

/* A growing line buffer; if it cannot grow, the line is cut at what fits. */
typedef struct line_buf {
    char *data;
    size_t len, cap;
    char fixed[1024];
} line_buf;

static void line_reserve(line_buf *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return;
    size_t cap = b->cap * 2 > b->len + extra ? b->cap * 2 : b->len + extra;
    char *grown = b->data == b->fixed ? malloc(cap) : realloc(b->data, cap);
    if (!grown)
        return;
    if (b->data == b->fixed)
        memcpy(grown, b->fixed, b->len);
    b->data = grown;
    b->cap = cap;
}

static void line_put(line_buf *b, const char *s, size_t n)
{
    line_reserve(b, n);
    if (b->len + n > b->cap)
        n = b->cap - b->len;
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

static void line_puts(line_buf *b, const char *s)
{
    line_put(b, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 if it is not valid. */
static size_t utf8_sequence_length(const unsigned char *s, size_t n)
{
    size_t len;
    uint32_t cp, min;
    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xe0) == 0xc0) {
        len = 2, cp = s[0] & 0x1fu, min = 0x80;
    } else if ((s[0] & 0xf0) == 0xe0) {
        len = 3, cp = s[0] & 0x0fu, min = 0x800;
    } else if ((s[0] & 0xf8) == 0xf0) {
        len = 4, cp = s[0] & 0x07u, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* Appends s escaped: control characters always; quotes, backslashes and invalid UTF-8 too
 * when json. */
static void line_put_escaped(line_buf *b, const char *s, bool json)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        char esc[8];
        const char *rep = NULL;
        switch (c) {
        case '\n': rep = "\\n"; break;
        case '\r': rep = "\\r"; break;
        case '\t': rep = "\\t"; break;
        case '"': rep = json ? "\\\"" : NULL; break;
        case '\\': rep = json ? "\\\\" : NULL; break;
        default:
            if (c < 0x20 || c == 0x7f) {
                snprintf(esc, sizeof esc, json ? "\\u%04x" : "\\x%02x", c);
                rep = esc;
            }
        }
        if (rep) {
            line_puts(b, rep);
            i++;
            continue;
        }
        size_t len = json ? utf8_sequence_length(p + i, n - i) : 1;
        if (len == 0) {
            line_puts(b, "\\ufffd");
            i++;
            continue;
        }
        line_put(b, s + i, len);
        i += len;
    }
}

static void format_timestamp(char *out, size_t n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t len = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + len, n - len, ".%03ldZ", ts.tv_nsec / 1000000L);
}

static void log_write(log_level level, const char *request_id, const char *fmt, va_list args)
    SDXL_PRINTF(3, 0);

static void log_write(log_level level, const char *request_id, const char *fmt, va_list args)
{
    char fixed_msg[1024];
    char *msg = fixed_msg;
    va_list copy;
    va_copy(copy, args);
    int need = vsnprintf(fixed_msg, sizeof fixed_msg, fmt, args);
    if (need >= (int)sizeof fixed_msg) {
        char *heap = malloc((size_t)need + 1);
        if (heap) {
            vsnprintf(heap, (size_t)need + 1, fmt, copy);
            msg = heap;
        }
    } else if (need < 0) {
        snprintf(fixed_msg, sizeof fixed_msg, "(log message format error: %s)", fmt);
    }
    va_end(copy);

    if (!request_id || !request_id[0])
        request_id = thread_request_id[0] ? thread_request_id : NULL;
    char ts[40];
    format_timestamp(ts, sizeof ts);

    line_buf b = {.len = 0, .cap = sizeof b.fixed};
    b.data = b.fixed;
    if (log_state.format == LOG_FORMAT_JSON) {
        line_puts(&b, "{\"ts\":\"");
        line_puts(&b, ts);
        line_puts(&b, "\",\"level\":\"");
        line_puts(&b, level_names[level]);
        if (request_id) {
            line_puts(&b, "\",\"request_id\":\"");
            line_put_escaped(&b, request_id, true);
        }
        line_puts(&b, "\",\"msg\":\"");
        line_put_escaped(&b, msg, true);
        line_puts(&b, "\"}\n");
    } else {
        line_puts(&b, ts);
        line_puts(&b, " ");
        line_puts(&b, level_labels[level]);
        line_puts(&b, " ");
        if (request_id) {
            line_puts(&b, "[");
            line_put_escaped(&b, request_id, false);
            line_puts(&b, "] ");
        }
        line_put_escaped(&b, msg, false);
        line_puts(&b, "\n");
    }
    /* A truncated line (allocation failure) still ends with a newline. */
    if (b.data[b.len - 1] != '\n')
        b.data[b.len - 1] = '\n';

    FILE *out = log_state.out ? log_state.out : stderr;
    pthread_mutex_lock(&log_state.lock);
    fwrite(b.data, 1, b.len, out);
    fflush(out);
    pthread_mutex_unlock(&log_state.lock);

    if (b.data != b.fixed)
        free(b.data);
    if (msg != fixed_msg)
        free(msg);
}

void log_message(log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    va_list args;
    va_start(args, fmt);
    log_write(level, NULL, fmt, args);
    va_end(args);
}

void log_request(log_level level, const char *request_id, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    va_list args;
    va_start(args, fmt);
    log_write(level, request_id, fmt, args);
    va_end(args);
}
