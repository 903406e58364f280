/*
 * bench_common.c — clocks, memory and failure reporting for the C benchmarks (see
 * bench_common.h).
 */
#include "bench_common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

double bench_now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, compare_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double bench_cpu_ms(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e3 +
           (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-3;
}

double bench_peak_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char line[256];
    double kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %lf kB", &kb) == 1)
            break;
    fclose(f);
    return kb * 1024.0;
}

void bench_check(sdxl_status st, const sdxl_error *err)
{
    if (st) {
        fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, sdxl_status_name(st),
                err->message);
        exit(1);
    }
}

bench_model_args bench_default_args(void)
{
    return (bench_model_args){.width = 512, .height = 512, .batch = 1, .threads = 0, .runs = 1};
}

bool bench_parse_common(bench_model_args *a, const char *flag, const char *value)
{
    if (!strcmp(flag, "--model"))
        a->model = value;
    else if (!strcmp(flag, "--width"))
        a->width = atoi(value);
    else if (!strcmp(flag, "--height"))
        a->height = atoi(value);
    else if (!strcmp(flag, "--batch"))
        a->batch = atoi(value);
    else if (!strcmp(flag, "--threads"))
        a->threads = atoi(value);
    else if (!strcmp(flag, "--runs"))
        a->runs = atoi(value);
    else
        return false;
    return true;
}

tensor bench_random_input(backend *be, arena *a, int ndim, const int64_t *shape, float scale,
                          unsigned seed)
{
    sdxl_error err;
    tensor t;
    bench_check(tensor_alloc(&t, a, DTYPE_F32, ndim, shape, &err), &err);
    size_t n = (size_t)tensor_numel(&t);
    float *x = malloc(n * sizeof *x);
    if (!x) {
        fprintf(stderr, "%s: out of memory\n", program_invocation_short_name);
        exit(1);
    }
    unsigned s = seed;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = ((float)(s >> 8) / 8388608.0f - 1.0f) * scale;
    }
    bench_check(backend_tensor_write(be, &t, DTYPE_F32, x, n, &err), &err);
    free(x);
    return t;
}
