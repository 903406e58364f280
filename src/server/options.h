/*
 * options.h — sdxld's command-line flags: parsing (hostile-input safe: every value is checked,
 * nothing is trusted) and the --help text that explains each one.
 */
#ifndef SDXL_SERVER_OPTIONS_H
#define SDXL_SERVER_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/log.h"
#include "base/status.h"
#include "sdxl.h"

#define OPTIONS_PATH_MAX 1024

typedef enum shutdown_mode {
    SHUTDOWN_DRAIN = 0,  /* finish the running and queued jobs, then exit */
    SHUTDOWN_CANCEL = 1, /* answer queued jobs UNAVAILABLE, stop the running one */
} shutdown_mode;

typedef struct server_options {
    char model_dir[OPTIONS_PATH_MAX];
    sdxl_backend_kind backend;
    sdxl_compute_dtype dtype;
    sdxl_compute_dtype vae_dtype;
    int threads;                 /* engine cpu threads; 0 = every core */
    int io_threads;              /* decode/encode pool */
    char listen[256];            /* HOST:PORT, or empty for none */
    char socket_path[OPTIONS_PATH_MAX]; /* unix socket, or empty */
    unsigned socket_mode;        /* permissions of the socket file */
    char metrics_listen[256];    /* HOST:PORT, or empty for none */
    int queue_size;
    size_t max_message_bytes;
    size_t max_image_bytes;
    size_t max_pixels;           /* input and output images, width × height */
    int max_batch;
    int max_steps;
    int64_t default_deadline_ms; /* for calls without a deadline; 0 = none */
    log_level log_level;
    log_format log_format;
    char auth_token_file[OPTIONS_PATH_MAX];
    shutdown_mode shutdown;
    int shutdown_grace_s;        /* then every call still open is cancelled */
    uint64_t memory_budget_bytes;
    bool help;                   /* --help was given: print options_usage and exit 0 */
} server_options;

void options_default(server_options *opts);

/* Parses argv[1..argc-1] ("--flag value" or "--flag=value") over the defaults. A bad flag or
 * value fails with SDXL_ERR_INVALID_ARGUMENT naming it (err->field is the flag). --model is
 * required unless --help is given. */
sdxl_status options_parse(int argc, char *const *argv, server_options *opts, sdxl_error *err);

void options_usage(FILE *out);

#endif /* SDXL_SERVER_OPTIONS_H */
