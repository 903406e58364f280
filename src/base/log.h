/*
 * log.h — leveled logging to stderr (or any FILE), as text or JSON lines.
 *
 * One line per call, written with a single write under a lock so lines from different
 * threads never interleave. A line about a request carries its request id: either pass it
 * explicitly (log_request) or set it for the current thread (log_set_thread_request_id), which
 * every later log_* call on that thread then includes.
 *
 * Text:  2026-11-22T09:33:41.123Z INFO  [req-7f3a] queued at position 3
 * JSON:  {"ts":"2026-11-22T09:33:41.123Z","level":"info","request_id":"req-7f3a","msg":"queued at position 3"}
 */
#ifndef SDXL_BASE_LOG_H
#define SDXL_BASE_LOG_H

#include <stdbool.h>
#include <stdio.h>

#include "base/status.h"

typedef enum log_level {
    LOG_LEVEL_DEBUG = 0,
    LOG_LEVEL_INFO = 1,
    LOG_LEVEL_WARNING = 2,
    LOG_LEVEL_ERROR = 3,
    LOG_LEVEL_OFF = 4,
} log_level;

typedef enum log_format {
    LOG_FORMAT_TEXT = 0,
    LOG_FORMAT_JSON = 1,
} log_format;

/* Process-wide settings; defaults: INFO, TEXT, stderr. Not thread-safe against logging calls:
 * configure at start-up. out == NULL means stderr. */
void log_configure(log_level level, log_format format, FILE *out);

/* Parses "debug", "info", "warning", "error", "off" (and "text"/"json"); false if unknown. */
bool log_level_parse(const char *name, log_level *out);
bool log_format_parse(const char *name, log_format *out);

bool log_enabled(log_level level);

/* Sets (or clears, with NULL) the request id included on this thread's lines. Copied. */
void log_set_thread_request_id(const char *request_id);

void log_message(log_level level, const char *fmt, ...) SDXL_PRINTF(2, 3);
void log_request(log_level level, const char *request_id, const char *fmt, ...) SDXL_PRINTF(3, 4);

#define LOG_DEBUG(...) log_message(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define LOG_INFO(...) log_message(LOG_LEVEL_INFO, __VA_ARGS__)
#define LOG_WARNING(...) log_message(LOG_LEVEL_WARNING, __VA_ARGS__)
#define LOG_ERROR(...) log_message(LOG_LEVEL_ERROR, __VA_ARGS__)

#endif /* SDXL_BASE_LOG_H */
