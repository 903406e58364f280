/*
 * options.c — sdxld's flags (see options.h). One table drives parsing and --help, so the two
 * cannot disagree.
 */
#include "server/options.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum flag_id {
    FLAG_MODEL,
    FLAG_BACKEND,
    FLAG_DTYPE,
    FLAG_VAE_DTYPE,
    FLAG_THREADS,
    FLAG_IO_THREADS,
    FLAG_LISTEN,
    FLAG_SOCKET,
    FLAG_SOCKET_MODE,
    FLAG_METRICS_LISTEN,
    FLAG_QUEUE_SIZE,
    FLAG_MAX_MESSAGE_BYTES,
    FLAG_MAX_IMAGE_BYTES,
    FLAG_MAX_PIXELS,
    FLAG_MAX_BATCH,
    FLAG_MAX_STEPS,
    FLAG_DEFAULT_DEADLINE,
    FLAG_LOG_LEVEL,
    FLAG_LOG_FORMAT,
    FLAG_AUTH_TOKEN_FILE,
    FLAG_ON_SHUTDOWN,
    FLAG_SHUTDOWN_GRACE,
    FLAG_MEMORY_BUDGET,
    FLAG_HELP,
} flag_id;

static const struct flag {
    flag_id id;
    const char *name;
    const char *arg; /* NULL: takes no value */
    const char *help;
} flags[] = {
    {FLAG_MODEL, "model", "DIR", "model directory in diffusers layout (required)"},
    {FLAG_BACKEND, "backend", "auto|cpu|cuda", "compute backend (default auto: cuda when built "
                                               "and a GPU is present)"},
    {FLAG_DTYPE, "dtype", "auto|fp32|fp16|bf16", "compute type of the text encoders and the "
                                                 "UNet (default auto: fp32 on the cpu, fp16 on a "
                                                 "GPU)"},
    {FLAG_VAE_DTYPE, "vae-dtype", "auto|fp32|fp16|bf16", "compute type of the VAE (default auto: "
                                                         "bf16 beside an fp16 UNet, which SDXL's "
                                                         "VAE overflows; else --dtype's)"},
    {FLAG_THREADS, "threads", "N", "engine CPU threads; 0 = every core (default 0)"},
    {FLAG_IO_THREADS, "io-threads", "N", "threads decoding requests and encoding images, off "
                                         "the engine's thread (default 2)"},
    {FLAG_LISTEN, "listen", "HOST:PORT", "gRPC address (default 127.0.0.1:50051; loopback "
                                         "only unless you name another address; none = no TCP)"},
    {FLAG_SOCKET, "socket", "PATH", "also listen on this unix socket"},
    {FLAG_SOCKET_MODE, "socket-mode", "OCTAL", "permissions of the unix socket file (default "
                                               "0600: the server's user only)"},
    {FLAG_METRICS_LISTEN, "metrics-listen", "HOST:PORT", "Prometheus /metrics over HTTP "
                                                         "(default 127.0.0.1:9464; none = off)"},
    {FLAG_QUEUE_SIZE, "queue-size", "N", "jobs that may wait; one more gets RESOURCE_EXHAUSTED "
                                         "QUEUE_FULL at once (default 64)"},
    {FLAG_MAX_MESSAGE_BYTES, "max-message-bytes", "BYTES", "largest gRPC message received or "
                                                           "sent (default 64M)"},
    {FLAG_MAX_IMAGE_BYTES, "max-image-bytes", "BYTES", "largest encoded input image (default "
                                                       "32M)"},
    {FLAG_MAX_PIXELS, "max-pixels", "N", "largest width × height of an input or output image "
                                         "(default 4194304 = 2048²)"},
    {FLAG_MAX_BATCH, "max-batch", "N", "largest batch_size (default 8, at most 16)"},
    {FLAG_MAX_STEPS, "max-steps", "N", "largest num_inference_steps (default 50, at most 50)"},
    {FLAG_DEFAULT_DEADLINE, "default-deadline", "SECONDS", "deadline of calls that set none "
                                                           "(default 600; 0 = none)"},
    {FLAG_LOG_LEVEL, "log-level", "debug|info|warning|error", "(default info)"},
    {FLAG_LOG_FORMAT, "log-format", "text|json", "log lines on stderr (default text)"},
    {FLAG_AUTH_TOKEN_FILE, "auth-token-file", "PATH", "require \"authorization: Bearer "
                                                      "<token>\" with the token in this file"},
    {FLAG_ON_SHUTDOWN, "on-shutdown", "drain|cancel", "on SIGTERM, finish queued jobs (drain, "
                                                      "default) or answer them UNAVAILABLE"},
    {FLAG_SHUTDOWN_GRACE, "shutdown-grace", "SECONDS", "after SIGTERM, cancel calls still open "
                                                       "after this long (default 60)"},
    {FLAG_MEMORY_BUDGET, "memory-budget", "BYTES", "refuse runs whose activations need more "
                                                   "(default 0 = no budget)"},
    {FLAG_HELP, "help", NULL, "print this help and exit"},
};

void options_default(server_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->backend = SDXL_BACKEND_AUTO;
    opts->io_threads = 2;
    snprintf(opts->listen, sizeof opts->listen, "127.0.0.1:50051");
    opts->socket_mode = 0600;
    snprintf(opts->metrics_listen, sizeof opts->metrics_listen, "127.0.0.1:9464");
    opts->queue_size = 64;
    opts->max_message_bytes = (size_t)64 << 20;
    opts->max_image_bytes = (size_t)32 << 20;
    opts->max_pixels = (size_t)2048 * 2048;
    opts->max_batch = 8;
    opts->max_steps = SDXL_MAX_STEPS;
    opts->default_deadline_ms = 600 * 1000;
    opts->log_level = LOG_LEVEL_INFO;
    opts->log_format = LOG_FORMAT_TEXT;
    opts->shutdown = SHUTDOWN_DRAIN;
    opts->shutdown_grace_s = 60;
}

static sdxl_status bad_value(sdxl_error *err, const char *flag, const char *value,
                             const char *expected)
{
    error_set(err, SDXL_ERR_INVALID_ARGUMENT, "--%s: \"%.64s\" is not %s (see --help)", flag,
              value, expected);
    return error_field(err, SDXL_ERR_INVALID_ARGUMENT, flag);
}

/* A decimal integer in [lo, hi], nothing else. */
static sdxl_status parse_int(const char *flag, const char *value, long long lo, long long hi,
                             long long *out, sdxl_error *err)
{
    char *end;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (errno || end == value || *end || !isdigit((unsigned char)value[value[0] == '-']) ||
        v < lo || v > hi) {
        char expected[96];
        snprintf(expected, sizeof expected, "an integer in [%lld, %lld]", lo, hi);
        return bad_value(err, flag, value, expected);
    }
    *out = v;
    return SDXL_OK;
}

/* A byte count: digits with an optional K, M or G suffix (powers of 1024). */
static sdxl_status parse_bytes(const char *flag, const char *value, uint64_t max, uint64_t *out,
                               sdxl_error *err)
{
    char *end;
    errno = 0;
    if (!isdigit((unsigned char)value[0]))
        return bad_value(err, flag, value, "a byte count such as 1048576, 512K, 64M or 2G");
    unsigned long long v = strtoull(value, &end, 10);
    unsigned shift = 0;
    if (*end == 'K' || *end == 'k')
        shift = 10;
    else if (*end == 'M' || *end == 'm')
        shift = 20;
    else if (*end == 'G' || *end == 'g')
        shift = 30;
    if (shift)
        end++;
    if (errno || *end || v > (max >> shift))
        return bad_value(err, flag, value, "a byte count such as 1048576, 512K, 64M or 2G, "
                                           "within range");
    *out = (uint64_t)v << shift;
    return SDXL_OK;
}

/* HOST:PORT (HOST may be [v6]); "none" clears. */
static sdxl_status parse_address(const char *flag, const char *value, char *out, size_t cap,
                                 sdxl_error *err)
{
    if (strcmp(value, "none") == 0) {
        out[0] = '\0';
        return SDXL_OK;
    }
    const char *colon = strrchr(value, ':');
    size_t len = strlen(value);
    bool ok = colon && colon != value && colon[1] && len < cap && strlen(colon + 1) <= 5;
    for (const char *p = colon ? colon + 1 : value; ok && *p; p++)
        ok = isdigit((unsigned char)*p);
    if (ok && atoi(colon + 1) > 65535)
        ok = false;
    for (const char *p = value; ok && p < colon; p++)
        ok = isalnum((unsigned char)*p) || strchr(".-:[]", *p);
    if (!ok)
        return bad_value(err, flag, value, "HOST:PORT (e.g. 127.0.0.1:50051 or [::1]:50051) or "
                                           "none");
    memcpy(out, value, len + 1);
    return SDXL_OK;
}

static sdxl_status parse_path(const char *flag, const char *value, char *out, size_t cap,
                              sdxl_error *err)
{
    size_t len = strlen(value);
    if (len == 0 || len >= cap)
        return bad_value(err, flag, value, "a non-empty path shorter than 1024 bytes");
    memcpy(out, value, len + 1);
    return SDXL_OK;
}

static sdxl_status parse_seconds(const char *flag, const char *value, double max, double *out,
                                 sdxl_error *err)
{
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (errno || end == value || *end || !isfinite(v) || v < 0 || v > max ||
        !(isdigit((unsigned char)value[0]) || value[0] == '.'))
        return bad_value(err, flag, value, "a number of seconds, 0 or more");
    *out = v;
    return SDXL_OK;
}

static sdxl_status apply_flag(const struct flag *f, const char *value, server_options *o,
                              sdxl_error *err)
{
    long long i = 0;
    uint64_t bytes = 0;
    double seconds = 0;
    sdxl_status st = SDXL_OK;
    switch (f->id) {
    case FLAG_MODEL:
        return parse_path(f->name, value, o->model_dir, sizeof o->model_dir, err);
    case FLAG_BACKEND:
        if (!sdxl_backend_parse(value, &o->backend))
            return bad_value(err, f->name, value, "auto, cpu or cuda");
        return SDXL_OK;
    case FLAG_DTYPE:
    case FLAG_VAE_DTYPE:
        if (!sdxl_dtype_parse(value, f->id == FLAG_DTYPE ? &o->dtype : &o->vae_dtype))
            return bad_value(err, f->name, value, "auto, fp32, fp16 or bf16");
        return SDXL_OK;
    case FLAG_THREADS:
        if (!(st = parse_int(f->name, value, 0, 1024, &i, err)))
            o->threads = (int)i;
        return st;
    case FLAG_IO_THREADS:
        if (!(st = parse_int(f->name, value, 1, 64, &i, err)))
            o->io_threads = (int)i;
        return st;
    case FLAG_LISTEN:
        return parse_address(f->name, value, o->listen, sizeof o->listen, err);
    case FLAG_SOCKET:
        /* sun_path holds 108 bytes with its NUL. */
        if (strlen(value) > 100)
            return bad_value(err, f->name, value, "a path of at most 100 bytes");
        return parse_path(f->name, value, o->socket_path, sizeof o->socket_path, err);
    case FLAG_SOCKET_MODE: {
        char *end;
        errno = 0;
        unsigned long mode = strtoul(value, &end, 8);
        if (errno || end == value || *end || mode > 0777 || !isdigit((unsigned char)value[0]))
            return bad_value(err, f->name, value, "an octal mode such as 0600 or 0660");
        o->socket_mode = (unsigned)mode;
        return SDXL_OK;
    }
    case FLAG_METRICS_LISTEN:
        return parse_address(f->name, value, o->metrics_listen, sizeof o->metrics_listen, err);
    case FLAG_QUEUE_SIZE:
        if (!(st = parse_int(f->name, value, 1, 100000, &i, err)))
            o->queue_size = (int)i;
        return st;
    case FLAG_MAX_MESSAGE_BYTES:
        /* gRPC takes the limit as an int. */
        if (!(st = parse_bytes(f->name, value, INT_MAX, &bytes, err)))
            o->max_message_bytes = (size_t)bytes;
        return st;
    case FLAG_MAX_IMAGE_BYTES:
        if (!(st = parse_bytes(f->name, value, INT_MAX, &bytes, err)))
            o->max_image_bytes = (size_t)bytes;
        return st;
    case FLAG_MAX_PIXELS:
        if (!(st = parse_int(f->name, value, 64, (long long)SDXL_MAX_SIDE * SDXL_MAX_SIDE * 4,
                             &i, err)))
            o->max_pixels = (size_t)i;
        return st;
    case FLAG_MAX_BATCH:
        if (!(st = parse_int(f->name, value, 1, SDXL_MAX_BATCH, &i, err)))
            o->max_batch = (int)i;
        return st;
    case FLAG_MAX_STEPS:
        if (!(st = parse_int(f->name, value, 1, SDXL_MAX_STEPS, &i, err)))
            o->max_steps = (int)i;
        return st;
    case FLAG_DEFAULT_DEADLINE:
        if (!(st = parse_seconds(f->name, value, 86400.0 * 365, &seconds, err)))
            o->default_deadline_ms = (int64_t)(seconds * 1000.0);
        return st;
    case FLAG_LOG_LEVEL:
        if (!log_level_parse(value, &o->log_level))
            return bad_value(err, f->name, value, "debug, info, warning, error or off");
        return SDXL_OK;
    case FLAG_LOG_FORMAT:
        if (!log_format_parse(value, &o->log_format))
            return bad_value(err, f->name, value, "text or json");
        return SDXL_OK;
    case FLAG_AUTH_TOKEN_FILE:
        return parse_path(f->name, value, o->auth_token_file, sizeof o->auth_token_file, err);
    case FLAG_ON_SHUTDOWN:
        if (strcmp(value, "drain") == 0)
            o->shutdown = SHUTDOWN_DRAIN;
        else if (strcmp(value, "cancel") == 0)
            o->shutdown = SHUTDOWN_CANCEL;
        else
            return bad_value(err, f->name, value, "drain or cancel");
        return SDXL_OK;
    case FLAG_SHUTDOWN_GRACE:
        if (!(st = parse_int(f->name, value, 0, 86400, &i, err)))
            o->shutdown_grace_s = (int)i;
        return st;
    case FLAG_MEMORY_BUDGET:
        if (!(st = parse_bytes(f->name, value, UINT64_MAX, &bytes, err)))
            o->memory_budget_bytes = bytes;
        return st;
    case FLAG_HELP:
        o->help = true;
        return SDXL_OK;
    }
    return error_set(err, SDXL_ERR_INTERNAL, "flag --%s has no handler", f->name);
}

sdxl_status options_parse(int argc, char *const *argv, server_options *opts, sdxl_error *err)
{
    for (int a = 1; a < argc; a++) {
        const char *word = argv[a];
        if (strcmp(word, "-h") == 0)
            word = "--help";
        if (strncmp(word, "--", 2) != 0) {
            error_set(err, SDXL_ERR_INVALID_ARGUMENT, "unexpected argument \"%.64s\": flags "
                      "start with -- (see --help)", word);
            return error_field(err, SDXL_ERR_INVALID_ARGUMENT, "");
        }
        const char *name = word + 2;
        const char *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        const struct flag *f = NULL;
        for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++)
            if (strlen(flags[k].name) == name_len && strncmp(flags[k].name, name, name_len) == 0)
                f = &flags[k];
        if (!f) {
            error_set(err, SDXL_ERR_INVALID_ARGUMENT, "unknown flag \"%.64s\" (see --help)", word);
            return error_field(err, SDXL_ERR_INVALID_ARGUMENT, "");
        }
        const char *value = NULL;
        if (f->arg) {
            if (eq)
                value = eq + 1;
            else if (a + 1 < argc)
                value = argv[++a];
            else {
                error_set(err, SDXL_ERR_INVALID_ARGUMENT, "--%s needs a value: %s", f->name,
                          f->arg);
                return error_field(err, SDXL_ERR_INVALID_ARGUMENT, f->name);
            }
        } else if (eq) {
            error_set(err, SDXL_ERR_INVALID_ARGUMENT, "--%s takes no value", f->name);
            return error_field(err, SDXL_ERR_INVALID_ARGUMENT, f->name);
        }
        sdxl_status st = apply_flag(f, value, opts, err);
        if (st)
            return st;
    }
    if (!opts->help && !opts->model_dir[0]) {
        error_set(err, SDXL_ERR_INVALID_ARGUMENT, "--model DIR is required (a diffusers model "
                  "directory; build/mkmodel writes test models)");
        return error_field(err, SDXL_ERR_INVALID_ARGUMENT, "model");
    }
    if (!opts->help && !opts->listen[0] && !opts->socket_path[0]) {
        error_set(err, SDXL_ERR_INVALID_ARGUMENT, "--listen none needs --socket PATH: the "
                  "server would have no address");
        return error_field(err, SDXL_ERR_INVALID_ARGUMENT, "listen");
    }
    return SDXL_OK;
}

void options_usage(FILE *out)
{
    fprintf(out, "usage: sdxld --model DIR [flags]\n\n"
                 "SDXL-Turbo image generation over gRPC (service sdxl.v1.ImageGeneration, plus\n"
                 "grpc.health.v1.Health and server reflection). Flags take \"--flag VALUE\" or\n"
                 "\"--flag=VALUE\". docs/OPERATIONS.md explains each in more detail.\n\n");
    for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", flags[k].name, flags[k].arg ? " " : "",
                 flags[k].arg ? flags[k].arg : "");
        fprintf(out, "  %-34s %s\n", left, flags[k].help);
    }
    fprintf(out, "\nSignals: SIGTERM or SIGINT stops gracefully (health NOT_SERVING, no new calls,\n"
                 "queued work drained or cancelled per --on-shutdown); a second one cancels all.\n");
}
