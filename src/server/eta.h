/*
 * eta.h — estimated processing times from measured running averages, one per job shape
 * (width, height, num_inference_steps, batch_size), for GetStatus and queue-wait estimates.
 *
 * The average is the plain mean over the first ETA_WINDOW runs of a shape, then an exponential
 * moving average with weight 1/ETA_WINDOW, so it follows a machine whose speed changes (warm-up,
 * thermal limits) without being thrown by one slow run. A shape never measured is estimated
 * from the others by scaling with width × height × steps × batch (the UNet's cost grows about
 * linearly in each); with nothing measured at all there is no estimate. Thread-safe.
 */
#ifndef SDXL_SERVER_ETA_H
#define SDXL_SERVER_ETA_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ETA_WINDOW 8
#define ETA_MAX_SHAPES 64

typedef struct eta_shape {
    int width, height, steps, batch;
} eta_shape;

typedef struct eta_entry {
    eta_shape shape;
    double average_ms;
    int64_t samples;
    uint64_t last_used; /* for replacing the least recently used shape when full */
} eta_entry;

typedef struct eta_table {
    pthread_mutex_t lock;
    eta_entry entries[ETA_MAX_SHAPES];
    int count;
    uint64_t clock;
} eta_table;

void eta_init(eta_table *t);
void eta_destroy(eta_table *t);

void eta_record(eta_table *t, eta_shape shape, double ms);

/* The estimate for shape in ms; false (and *ms = 0) when nothing has been measured. */
bool eta_estimate(eta_table *t, eta_shape shape, double *ms);

/* Copies up to max entries (most recently used first); returns how many. */
int eta_snapshot(eta_table *t, eta_entry *out, int max);

#endif /* SDXL_SERVER_ETA_H */
