/*
 * cpu_norm.c — group normalisation (optionally followed by SiLU), layer normalisation and
 * softmax over the last dimension.
 *
 * Means and variances are summed in double, so they are at least as accurate as torch's and
 * the fp32 result is the normalisation itself rounded a couple of times. Group norm sums in
 * two steps whose cut is fixed by the shape alone: partial sums per chunk of
 * POSITIONS_PER_CHUNK positions (in parallel), then the chunks in order. Every other reduction
 * is one row, summed by one task in a fixed order.
 */
#include "backend/cpu/cpu_backend.h"

#include <math.h>

#include "backend/cpu/cpu_math.h"
#include "backend/cpu/cpu_simd.h"

#define POSITIONS_PER_CHUNK 256
#define ELEMENTS_PER_CHUNK 32768

typedef struct norm_job {
    const float *x;
    float *y;
    const float *gamma, *beta;
    size_t positions, channels, groups, chunks_per_image;
    float *const *scratch; /* per thread: 2 * channels doubles */
    double *partials;      /* group norm: [N][chunks][groups][2] (sum, sum of squares) */
    float *coef;           /* group norm: [N][2][C] (scales, then shifts) */
    float eps;
    bool silu;
} norm_job;

/* Partial sums of chunks of positions, per group. Per-channel accumulators keep the inner
 * loop free of a loop-carried dependency (so it vectorises). */
static void group_stats_chunk(void *ctx, size_t begin, size_t end, int thread)
{
    const norm_job *job = ctx;
    size_t c = job->channels, cg = c / job->groups;
    double *acc = (double *)job->scratch[thread];
    double *acc2 = acc + c;
    for (size_t task = begin; task < end; task++) {
        size_t image = task / job->chunks_per_image, chunk = task % job->chunks_per_image;
        size_t p0 = chunk * POSITIONS_PER_CHUNK;
        size_t p1 = p0 + POSITIONS_PER_CHUNK < job->positions ? p0 + POSITIONS_PER_CHUNK
                                                              : job->positions;
        for (size_t j = 0; j < c; j++)
            acc[j] = acc2[j] = 0.0;
        const float *x = job->x + (image * job->positions + p0) * c;
        for (size_t p = p0; p < p1; p++, x += c)
            for (size_t j = 0; j < c; j++) {
                double v = x[j];
                acc[j] += v;
                acc2[j] += v * v;
            }
        double *out = job->partials + task * job->groups * 2;
        for (size_t g = 0; g < job->groups; g++) {
            double s = 0.0, s2 = 0.0;
            for (size_t j = g * cg; j < (g + 1) * cg; j++) {
                s += acc[j];
                s2 += acc2[j];
            }
            out[2 * g] = s;
            out[2 * g + 1] = s2;
        }
    }
}

/* Rows [begin, end) of x viewed as [N * positions, C]: y = x * scale[c] + shift[c] (+ SiLU). */
static void group_apply_chunk(void *ctx, size_t begin, size_t end, int thread)
{
    const norm_job *job = ctx;
    size_t c = job->channels;
    for (size_t r = begin; r < end; r++) {
        const float *scale = job->coef + (r / job->positions) * c * 2, *shift = scale + c;
        const float *x = job->x + r * c;
        float *y = job->y + r * c;
        for (size_t j = 0; j < c; j++)
            y[j] = x[j] * scale[j] + shift[j];
        if (job->silu)
            cpu_apply_act(BACKEND_ACT_SILU, y, c);
    }
}

sdxl_status cpu_group_norm(backend *b, const tensor *x, int groups, float eps,
                           const tensor *gamma, const tensor *beta, bool silu, tensor *y,
                           sdxl_error *err)
{
    cpu_backend *cb = cpu_of(b);
    size_t n = (size_t)x->shape[0], c = (size_t)tensor_last_dim(x);
    size_t positions = (size_t)tensor_numel(x) / (n * c);
    size_t chunks = (positions + POSITIONS_PER_CHUNK - 1) / POSITIONS_PER_CHUNK;
    size_t g = (size_t)groups, cg = c / g;
    size_t partial_bytes = n * chunks * g * 2 * sizeof(double);
    size_t coef_bytes = n * c * 2 * sizeof(float);
    sdxl_status st = cpu_shared_reserve(cb, partial_bytes + coef_bytes, err);
    if (!st)
        st = cpu_scratch_reserve(cb, 4 * c, err); /* 2 * c doubles */
    if (st)
        return st;
    norm_job job = {
        .x = x->data,
        .y = y->data,
        .gamma = gamma->data,
        .beta = beta->data,
        .positions = positions,
        .channels = c,
        .groups = g,
        .chunks_per_image = chunks,
        .scratch = cb->scratch,
        .partials = cb->shared,
        .coef = (float *)((unsigned char *)cb->shared + partial_bytes),
        .eps = eps,
        .silu = silu,
    };
    cpu_parallel_range(cb, n * chunks, 1, group_stats_chunk, &job);

    double count = (double)positions * (double)cg;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < g; k++) {
            double s = 0.0, s2 = 0.0;
            for (size_t ch = 0; ch < chunks; ch++) {
                const double *p = job.partials + ((i * chunks + ch) * g + k) * 2;
                s += p[0];
                s2 += p[1];
            }
            double mean = s / count;
            double var = s2 / count - mean * mean;
            double rstd = 1.0 / sqrt((var > 0.0 ? var : 0.0) + (double)eps);
            for (size_t j = k * cg; j < (k + 1) * cg; j++) {
                double scale = rstd * (double)job.gamma[j];
                job.coef[i * c * 2 + j] = (float)scale;
                job.coef[i * c * 2 + c + j] = (float)((double)job.beta[j] - mean * scale);
            }
        }
    cpu_parallel_range(cb, n * positions, ELEMENTS_PER_CHUNK / c + 1, group_apply_chunk, &job);
    return SDXL_OK;
}

static void layer_norm_chunk(void *ctx, size_t begin, size_t end, int thread)
{
    const norm_job *job = ctx;
    size_t c = job->channels;
    for (size_t r = begin; r < end; r++) {
        const float *x = job->x + r * c;
        float *y = job->y + r * c;
        /* Four accumulators in a fixed pattern: a shorter dependency chain, same order always. */
        double s[4] = {0, 0, 0, 0}, s2[4] = {0, 0, 0, 0};
        size_t j = 0;
        for (; j + 4 <= c; j += 4)
            for (int l = 0; l < 4; l++) {
                double v = x[j + (size_t)l];
                s[l] += v;
                s2[l] += v * v;
            }
        for (; j < c; j++) {
            double v = x[j];
            s[0] += v;
            s2[0] += v * v;
        }
        double mean = ((s[0] + s[1]) + (s[2] + s[3])) / (double)c;
        double var = ((s2[0] + s2[1]) + (s2[2] + s2[3])) / (double)c - mean * mean;
        double rstd = 1.0 / sqrt((var > 0.0 ? var : 0.0) + (double)job->eps);
        float fm = (float)mean, fr = (float)rstd;
        for (j = 0; j < c; j++)
            y[j] = (x[j] - fm) * fr * job->gamma[j] + job->beta[j];
    }
}

sdxl_status cpu_layer_norm(backend *b, const tensor *x, float eps, const tensor *gamma,
                           const tensor *beta, tensor *y, sdxl_error *err)
{
    size_t c = (size_t)tensor_last_dim(x);
    norm_job job = {.x = x->data, .y = y->data, .gamma = gamma->data, .beta = beta->data,
                    .channels = c, .eps = eps};
    cpu_parallel_range(cpu_of(b), (size_t)tensor_rows(x), ELEMENTS_PER_CHUNK / c + 1,
                       layer_norm_chunk, &job);
    return SDXL_OK;
}

CPU_SIMD_CLONES
float cpu_softmax_row_unnormalised(float *row, size_t n)
{
    /* Two running maxima: half the dependency chain. */
    size_t j = 0;
    cpu_f8 m0 = cpu_f8_splat(row[0]), m1 = m0;
    for (; j + 16 <= n; j += 16) {
        cpu_f8 a = cpu_f8_load(row + j), b = cpu_f8_load(row + j + 8);
        m0 = CPU_F8_SELECT(a > m0, a, m0);
        m1 = CPU_F8_SELECT(b > m1, b, m1);
    }
    m0 = CPU_F8_SELECT(m1 > m0, m1, m0);
    float max = m0[0];
    for (int l = 1; l < 8; l++)
        max = m0[l] > max ? m0[l] : max;
    for (; j < n; j++)
        max = row[j] > max ? row[j] : max;

    /* Eight running sums, lane l taking elements l, l+8, ..., added pairwise at the end. A NaN
     * score (which the maximum may have skipped) makes the sum NaN, so the row comes out NaN
     * as with libm's exp, instead of as whatever the bounded exp makes of it. */
    cpu_f8 vsum = cpu_f8_splat(0.0f), vm = cpu_f8_splat(max);
    cpu_i8 nan_seen = {0, 0, 0, 0, 0, 0, 0, 0};
    j = 0;
    if (max == max)
        for (; j + 8 <= n; j += 8) {
            cpu_f8 v = cpu_f8_load(row + j);
            nan_seen |= v != v;
            v -= vm;
            cpu_f8 e = cpu_f8_exp_bounded(&v);
            cpu_f8_store(row + j, &e);
            vsum += e;
        }
    for (; j < n; j++) {
        row[j] = cpu_expf(row[j] - max);
        vsum[0] += row[j];
    }
    for (int l = 0; l < 8; l++)
        if (nan_seen[l])
            return NAN;
    return ((vsum[0] + vsum[1]) + (vsum[2] + vsum[3])) + ((vsum[4] + vsum[5]) + (vsum[6] + vsum[7]));
}

static void softmax_chunk(void *ctx, size_t begin, size_t end, int thread)
{
    const norm_job *job = ctx;
    size_t c = job->channels;
    for (size_t r = begin; r < end; r++) {
        float *y = job->y + r * c;
        if (y != job->x + r * c)
            for (size_t j = 0; j < c; j++)
                y[j] = job->x[r * c + j];
        float inv = 1.0f / cpu_softmax_row_unnormalised(y, c);
        for (size_t j = 0; j < c; j++)
            y[j] *= inv;
    }
}

sdxl_status cpu_softmax(backend *b, const tensor *x, tensor *y, sdxl_error *err)
{
    size_t c = (size_t)tensor_last_dim(x);
    norm_job job = {.x = x->data, .y = y->data, .channels = c};
    cpu_parallel_range(cpu_of(b), (size_t)tensor_rows(x), ELEMENTS_PER_CHUNK / c + 1,
                       softmax_chunk, &job);
    return SDXL_OK;
}
