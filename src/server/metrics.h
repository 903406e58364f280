/*
 * metrics.h — the server's counters and histograms, and their Prometheus text rendering
 * (exposition format 0.0.4), served by metrics_http.
 *
 * Every label set is known in advance (methods × gRPC codes × error reasons), so the storage
 * is fixed arrays under one lock: recording never allocates.
 */
#ifndef SDXL_SERVER_METRICS_H
#define SDXL_SERVER_METRICS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/errors.h"
#include "server/method.h"

#define METRICS_N_BUCKETS 16
#define METRICS_N_CODES 17

typedef struct metrics_histogram {
    uint64_t buckets[METRICS_N_BUCKETS]; /* not cumulative; the +Inf bucket is count */
    uint64_t count;
    double sum;
} metrics_histogram;

typedef struct server_metrics {
    pthread_mutex_t lock;
    uint64_t requests[METHOD_COUNT][METRICS_N_CODES];
    uint64_t errors[METHOD_COUNT][REASON_COUNT];
    uint64_t auth_failures;
    uint64_t images_generated;
    metrics_histogram latency[METHOD_COUNT];
    metrics_histogram queue_wait;
    metrics_histogram inference;
} server_metrics;

/* Values read at scrape time from their owners. */
typedef struct metrics_gauges {
    int queue_length;
    int queue_capacity;
    int running_jobs;
    bool ready;
    uint64_t resident_bytes;
    uint64_t weight_bytes; /* the model's weights, on the device for a GPU backend */
    const char *backend;   /* label of weight_bytes; NULL before the model is loaded */
    double uptime_s;
} metrics_gauges;

void metrics_init(server_metrics *m);
void metrics_destroy(server_metrics *m);

/* One finished call: its final code and, for an error, its reason; latency from arrival. */
void metrics_record_call(server_metrics *m, server_method method, grpc_status_code code,
                         server_reason reason, double latency_s);
void metrics_record_auth_failure(server_metrics *m);
void metrics_record_images(server_metrics *m, int n);
void metrics_observe_queue_wait(server_metrics *m, double seconds);
void metrics_observe_inference(server_metrics *m, double seconds);

/* Totals over methods (GetStatus): generation requests answered, and those that failed. */
void metrics_generation_totals(server_metrics *m, uint64_t *requests, uint64_t *failed,
                               uint64_t *images);

/* The process's resident set size from /proc/self/statm (0 when unreadable). */
uint64_t metrics_resident_bytes(void);

/* Renders every metric; malloc'd text (the caller frees), NULL when out of memory. */
char *metrics_render(server_metrics *m, const metrics_gauges *gauges, size_t *len);

#endif /* SDXL_SERVER_METRICS_H */
