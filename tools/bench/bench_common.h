/*
 * bench_common.h — what every C benchmark in tools/bench needs: a wall clock, the process's
 * CPU time, its peak resident memory, and stopping with the engine's message on a failure.
 */
#ifndef SDXL_BENCH_COMMON_H
#define SDXL_BENCH_COMMON_H

#include "sdxl.h"

/* Monotonic wall time in seconds. */
double bench_now_s(void);

/* CPU time of the whole process (every thread), ms: on a shared machine, wall time measures the
 * other jobs too. */
double bench_cpu_ms(void);

/* VmHWM from /proc/self/status, in bytes (0 where there is no /proc). */
double bench_peak_rss_bytes(void);

/* Exits with "PROGRAM: CODE: message" when st is not SDXL_OK. */
void bench_check(sdxl_status st, const sdxl_error *err);

#endif /* SDXL_BENCH_COMMON_H */
