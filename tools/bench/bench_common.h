/*
 * bench_common.h — what every C benchmark in tools/bench needs: a wall clock, the process's
 * CPU time, its peak resident memory, and stopping with the engine's message on a failure.
 */
#ifndef SDXL_BENCH_COMMON_H
#define SDXL_BENCH_COMMON_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"
#include "sdxl.h"

/* The flags every model benchmark takes: --model DIR --width W --height H --batch B
 * --threads N --runs R. */
typedef struct bench_model_args {
    const char *model;
    int width, height, batch, threads, runs;
} bench_model_args;

/* 512×512, batch 1, every core, one run, no model. */
bench_model_args bench_default_args(void);

/* Stores value when flag is one of the common flags; false for any other flag. */
bool bench_parse_common(bench_model_args *a, const char *flag, const char *value);

/* Monotonic wall time in seconds. */
double bench_now_s(void);

/* The median of v[0..n) (n >= 1; the mean of the middle two when n is even): the figure a
 * benchmark reports, robust to one slow run. Sorts v. */
double bench_median(double *v, int n);

/* CPU time of the whole process (every thread), ms: on a shared machine, wall time measures the
 * other jobs too. */
double bench_cpu_ms(void);

/* VmHWM from /proc/self/status, in bytes (0 where there is no /proc). */
double bench_peak_rss_bytes(void);

/* An F32 activation of the given shape from the arena, holding values uniform in
 * [-scale, scale) from a fixed generator (the same inputs on every run and machine). */
tensor bench_random_input(backend *be, arena *a, int ndim, const int64_t *shape, float scale,
                          unsigned seed);

/* Exits with "PROGRAM: CODE: message" when st is not SDXL_OK. */
void bench_check(sdxl_status st, const sdxl_error *err);

#endif /* SDXL_BENCH_COMMON_H */
