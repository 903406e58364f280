/*
 * metrics.c — counters, histograms and the Prometheus text format (see metrics.h).
 */
#include "server/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/status.h"

/* Seconds: from a cached GetStatus to a long batch on a CPU. */
static const double bucket_bounds[METRICS_N_BUCKETS] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 60, 120, 300, 600,
};

void metrics_init(server_metrics *m)
{
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->lock, NULL);
}

void metrics_destroy(server_metrics *m)
{
    pthread_mutex_destroy(&m->lock);
}

static void observe(metrics_histogram *h, double v)
{
    for (int i = 0; i < METRICS_N_BUCKETS; i++)
        if (v <= bucket_bounds[i]) {
            h->buckets[i]++;
            break;
        }
    h->count++;
    h->sum += v;
}

void metrics_record_call(server_metrics *m, server_method method, grpc_status_code code,
                         server_reason reason, double latency_s)
{
    if (method >= METHOD_COUNT)
        method = METHOD_UNKNOWN;
    int c = (int)code >= 0 && (int)code < METRICS_N_CODES ? (int)code : GRPC_STATUS_UNKNOWN;
    pthread_mutex_lock(&m->lock);
    m->requests[method][c]++;
    if (code != GRPC_STATUS_OK)
        m->errors[method][reason < REASON_COUNT ? reason : REASON_INTERNAL]++;
    observe(&m->latency[method], latency_s);
    pthread_mutex_unlock(&m->lock);
}

void metrics_record_auth_failure(server_metrics *m)
{
    pthread_mutex_lock(&m->lock);
    m->auth_failures++;
    pthread_mutex_unlock(&m->lock);
}

void metrics_record_images(server_metrics *m, int n)
{
    pthread_mutex_lock(&m->lock);
    m->images_generated += (uint64_t)n;
    pthread_mutex_unlock(&m->lock);
}

void metrics_observe_queue_wait(server_metrics *m, double seconds)
{
    pthread_mutex_lock(&m->lock);
    observe(&m->queue_wait, seconds);
    pthread_mutex_unlock(&m->lock);
}

void metrics_observe_inference(server_metrics *m, double seconds)
{
    pthread_mutex_lock(&m->lock);
    observe(&m->inference, seconds);
    pthread_mutex_unlock(&m->lock);
}

void metrics_generation_totals(server_metrics *m, uint64_t *requests, uint64_t *failed,
                               uint64_t *images)
{
    *requests = *failed = 0;
    pthread_mutex_lock(&m->lock);
    for (int method = 0; method < METHOD_COUNT; method++) {
        if (!method_is_generation((server_method)method))
            continue;
        for (int c = 0; c < METRICS_N_CODES; c++) {
            *requests += m->requests[method][c];
            if (c != GRPC_STATUS_OK)
                *failed += m->requests[method][c];
        }
    }
    *images = m->images_generated;
    pthread_mutex_unlock(&m->lock);
}

uint64_t metrics_resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    unsigned long long size = 0, resident = 0;
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return n == 2 && page > 0 ? (uint64_t)resident * (uint64_t)page : 0;
}

/* A growing text buffer; on allocation failure it stops growing and remembers it. */
typedef struct text {
    char *data;
    size_t len, cap;
    bool failed;
} text;

static void add(text *t, const char *fmt, ...) SDXL_PRINTF(2, 3);
static void add(text *t, const char *fmt, ...)
{
    if (t->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->data ? t->data + t->len : NULL, t->data ? t->cap - t->len : 0, fmt,
                          ap);
        va_end(ap);
        if (n < 0) {
            t->failed = true;
            return;
        }
        if (t->data && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap * 2 : 16384;
        while (cap < t->len + (size_t)n + 1)
            cap *= 2;
        char *data = realloc(t->data, cap);
        if (!data) {
            t->failed = true;
            return;
        }
        t->data = data;
        t->cap = cap;
    }
}

static void add_histogram(text *t, const char *name, const char *labels,
                          const metrics_histogram *h)
{
    uint64_t cumulative = 0;
    const char *sep = labels[0] ? "," : "";
    for (int i = 0; i < METRICS_N_BUCKETS; i++) {
        cumulative += h->buckets[i];
        add(t, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, bucket_bounds[i],
            (unsigned long long)cumulative);
    }
    add(t, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long)h->count);
    add(t, "%s_sum%s%s%s %.6f\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
        h->sum);
    add(t, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
        (unsigned long long)h->count);
}

char *metrics_render(server_metrics *m, const metrics_gauges *g, size_t *len)
{
    server_metrics s;
    pthread_mutex_lock(&m->lock);
    s = *m;
    pthread_mutex_unlock(&m->lock);

    text t = {0};
    add(&t, "# HELP sdxl_requests_total Calls answered, by method and gRPC status code.\n"
            "# TYPE sdxl_requests_total counter\n");
    for (int method = 0; method < METHOD_COUNT; method++)
        for (int c = 0; c < METRICS_N_CODES; c++)
            if (s.requests[method][c])
                add(&t, "sdxl_requests_total{method=\"%s\",code=\"%s\"} %llu\n",
                    method_name((server_method)method),
                    server_grpc_code_name((grpc_status_code)c),
                    (unsigned long long)s.requests[method][c]);
    add(&t, "# HELP sdxl_errors_total Failed calls, by method and error reason.\n"
            "# TYPE sdxl_errors_total counter\n");
    for (int method = 0; method < METHOD_COUNT; method++)
        for (int r = 0; r < REASON_COUNT; r++)
            if (s.errors[method][r])
                add(&t, "sdxl_errors_total{method=\"%s\",reason=\"%s\"} %llu\n",
                    method_name((server_method)method), server_reason_name((server_reason)r),
                    (unsigned long long)s.errors[method][r]);
    add(&t, "# HELP sdxl_auth_failures_total Calls refused for a missing or wrong token.\n"
            "# TYPE sdxl_auth_failures_total counter\n"
            "sdxl_auth_failures_total %llu\n",
        (unsigned long long)s.auth_failures);
    add(&t, "# HELP sdxl_images_generated_total Images generated and sent.\n"
            "# TYPE sdxl_images_generated_total counter\n"
            "sdxl_images_generated_total %llu\n",
        (unsigned long long)s.images_generated);
    add(&t, "# HELP sdxl_request_duration_seconds Call latency from arrival to final status.\n"
            "# TYPE sdxl_request_duration_seconds histogram\n");
    for (int method = 0; method < METHOD_COUNT; method++) {
        if (!s.latency[method].count)
            continue;
        char labels[64];
        snprintf(labels, sizeof labels, "method=\"%s\"", method_name((server_method)method));
        add_histogram(&t, "sdxl_request_duration_seconds", labels, &s.latency[method]);
    }
    add(&t, "# HELP sdxl_queue_wait_seconds Time jobs waited in the queue before running.\n"
            "# TYPE sdxl_queue_wait_seconds histogram\n");
    add_histogram(&t, "sdxl_queue_wait_seconds", "", &s.queue_wait);
    add(&t, "# HELP sdxl_inference_seconds Engine time per job (text, VAE, UNet steps).\n"
            "# TYPE sdxl_inference_seconds histogram\n");
    add_histogram(&t, "sdxl_inference_seconds", "", &s.inference);
    add(&t, "# HELP sdxl_queue_length Jobs waiting to run.\n"
            "# TYPE sdxl_queue_length gauge\n"
            "sdxl_queue_length %d\n"
            "# HELP sdxl_queue_capacity Jobs that may wait (--queue-size).\n"
            "# TYPE sdxl_queue_capacity gauge\n"
            "sdxl_queue_capacity %d\n"
            "# HELP sdxl_running_jobs Jobs the engine is running (0 or 1).\n"
            "# TYPE sdxl_running_jobs gauge\n"
            "sdxl_running_jobs %d\n"
            "# HELP sdxl_ready 1 when the model is loaded and the server accepts work.\n"
            "# TYPE sdxl_ready gauge\n"
            "sdxl_ready %d\n"
            "# HELP sdxl_resident_memory_bytes Resident set size of the server process.\n"
            "# TYPE sdxl_resident_memory_bytes gauge\n"
            "sdxl_resident_memory_bytes %llu\n",
        g->queue_length, g->queue_capacity, g->running_jobs, g->ready ? 1 : 0,
        (unsigned long long)g->resident_bytes);
    if (g->backend)
        add(&t, "# HELP sdxl_model_weight_bytes Model weights held in memory (device memory "
                "for the cuda backend).\n"
                "# TYPE sdxl_model_weight_bytes gauge\n"
                "sdxl_model_weight_bytes{backend=\"%s\"} %llu\n",
            g->backend, (unsigned long long)g->weight_bytes);
    add(&t, "# HELP sdxl_uptime_seconds Seconds since the server started.\n"
            "# TYPE sdxl_uptime_seconds gauge\n"
            "sdxl_uptime_seconds %.3f\n",
        g->uptime_s);
    if (t.failed) {
        free(t.data);
        return NULL;
    }
    *len = t.len;
    return t.data;
}
