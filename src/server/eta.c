/*
 * eta.c — running averages of processing time per job shape (see eta.h).
 */
#include "server/eta.h"

#include <stdlib.h>
#include <string.h>

void eta_init(eta_table *t)
{
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->lock, NULL);
}

void eta_destroy(eta_table *t)
{
    pthread_mutex_destroy(&t->lock);
}

static bool same_shape(eta_shape a, eta_shape b)
{
    return a.width == b.width && a.height == b.height && a.steps == b.steps && a.batch == b.batch;
}

static double shape_units(eta_shape s)
{
    return (double)s.width * s.height * s.steps * s.batch;
}

void eta_record(eta_table *t, eta_shape shape, double ms)
{
    if (!(ms >= 0))
        return;
    pthread_mutex_lock(&t->lock);
    eta_entry *e = NULL;
    for (int i = 0; i < t->count && !e; i++)
        if (same_shape(t->entries[i].shape, shape))
            e = &t->entries[i];
    if (!e) {
        if (t->count < ETA_MAX_SHAPES) {
            e = &t->entries[t->count++];
        } else {
            e = &t->entries[0];
            for (int i = 1; i < t->count; i++)
                if (t->entries[i].last_used < e->last_used)
                    e = &t->entries[i];
        }
        memset(e, 0, sizeof *e);
        e->shape = shape;
    }
    e->samples++;
    double weight = e->samples < ETA_WINDOW ? 1.0 / (double)e->samples : 1.0 / ETA_WINDOW;
    e->average_ms += (ms - e->average_ms) * weight;
    e->last_used = ++t->clock;
    pthread_mutex_unlock(&t->lock);
}

bool eta_estimate(eta_table *t, eta_shape shape, double *ms)
{
    pthread_mutex_lock(&t->lock);
    bool found = false;
    double ms_per_unit = 0, weight = 0;
    for (int i = 0; i < t->count; i++) {
        const eta_entry *e = &t->entries[i];
        if (same_shape(e->shape, shape)) {
            *ms = e->average_ms;
            found = true;
            break;
        }
        double units = shape_units(e->shape);
        if (units > 0) {
            ms_per_unit += e->average_ms / units * (double)e->samples;
            weight += (double)e->samples;
        }
    }
    pthread_mutex_unlock(&t->lock);
    if (found)
        return true;
    if (weight > 0) {
        *ms = ms_per_unit / weight * shape_units(shape);
        return true;
    }
    *ms = 0;
    return false;
}

static int by_recent_use(const void *a, const void *b)
{
    uint64_t ua = ((const eta_entry *)a)->last_used, ub = ((const eta_entry *)b)->last_used;
    return ua < ub ? 1 : ua > ub ? -1 : 0;
}

int eta_snapshot(eta_table *t, eta_entry *out, int max)
{
    pthread_mutex_lock(&t->lock);
    eta_entry all[ETA_MAX_SHAPES];
    int n = t->count;
    memcpy(all, t->entries, (size_t)n * sizeof all[0]);
    pthread_mutex_unlock(&t->lock);
    qsort(all, (size_t)n, sizeof all[0], by_recent_use);
    if (n > max)
        n = max;
    memcpy(out, all, (size_t)n * sizeof all[0]);
    return n;
}
