/*
 * cpu_attention.c — multi-head scaled-dot-product attention in blocks of query rows.
 *
 * One task is (image, head, block of query rows): scores S = q·kᵀ/sqrt(D) for the block
 * against every key (one GEMM, reading the head's columns in place through the leading
 * dimension — no transposes), exp(S - rowmax) in place, O = S·v (a second GEMM, written
 * straight into the head's columns of y), then each row divided by its sum. Memory is one
 * block x Tk score matrix per thread, never Tq x Tk.
 *
 * Each GEMM call re-packs the head's K (or V) for just one block of queries, so blocks should
 * be tall; but a thread's score block should stay near the cache, and an image should give
 * enough tasks to share. attention_block_rows weighs these from the layer's shape alone —
 * never from the batch or the thread count — so that an image's GEMM calls have the same
 * shapes in every run: a BLAS may sum differently for different call shapes (OpenBLAS's
 * Cooper Lake kernels do, measured), never for the same one.
 */
#include "backend/cpu/cpu_backend.h"

#include <math.h>

#define MAX_BLOCK_ROWS (8 * CPU_GEMM_ROW_UNIT)
/* One thread's score block, bytes. */
#define SCORE_BUDGET (16u << 20)
/* Tasks per image worth having (enough for a 16-core machine), while blocks can shrink. */
#define TASKS_PER_IMAGE 16

typedef struct attention_job {
    const float *q, *k, *v;
    float *y;
    float *const *scratch;
    size_t tq, tk, width, d, heads, block_rows, blocks;
    bool causal;
    float scale;
} attention_job;

static void attention_block(void *ctx, size_t begin, size_t end, int thread)
{
    const attention_job *job = ctx;
    size_t w = job->width, d = job->d, tk = job->tk;
    /* Scratch: scores [block_rows, tk], row sums [block_rows], the GEMMs' padding. */
    float *s = job->scratch[thread];
    float *sums = s + job->block_rows * tk;
    float *pad = sums + job->block_rows;
    for (size_t task = begin; task < end; task++) {
        size_t block = task % job->blocks, head = (task / job->blocks) % job->heads;
        size_t image = task / (job->blocks * job->heads);
        size_t q0 = block * job->block_rows;
        size_t rows = q0 + job->block_rows < job->tq ? job->block_rows : job->tq - q0;
        const float *q = job->q + (image * job->tq + q0) * w + head * d;
        const float *k = job->k + image * tk * w + head * d;
        const float *v = job->v + image * tk * w + head * d;
        float *y = job->y + (image * job->tq + q0) * w + head * d;

        cpu_sgemm_rows(true, (int)rows, (int)tk, (int)d, job->scale, q, (int)w, k, (int)w, s,
                       (int)tk, pad);
        for (size_t i = 0; i < rows; i++) {
            float *row = s + i * tk;
            /* Causal: query q0 + i sees keys 0..q0 + i; the rest weigh nothing. */
            size_t seen = job->causal ? q0 + i + 1 : tk;
            sums[i] = cpu_softmax_row_unnormalised(row, seen);
            for (size_t j = seen; j < tk; j++)
                row[j] = 0.0f;
        }
        cpu_sgemm_rows(false, (int)rows, (int)d, (int)tk, 1.0f, s, (int)tk, v, (int)w, y,
                       (int)w, pad);
        for (size_t i = 0; i < rows; i++) {
            float inv = 1.0f / sums[i];
            for (size_t j = 0; j < d; j++)
                y[i * w + j] *= inv;
        }
    }
}

/* Rows per block: a multiple of the row unit, at most MAX_BLOCK_ROWS, the score block within
 * SCORE_BUDGET, and no shorter than 2 units to make TASKS_PER_IMAGE tasks. */
static size_t attention_block_rows(size_t heads, size_t tq, size_t tk)
{
    const size_t unit = CPU_GEMM_ROW_UNIT;
    size_t budget_rows = SCORE_BUDGET / (tk * sizeof(float));
    size_t rows = budget_rows < MAX_BLOCK_ROWS ? budget_rows : MAX_BLOCK_ROWS;
    rows = rows / unit * unit;
    while (rows > 2 * unit && heads * ((tq + rows - 1) / rows) < TASKS_PER_IMAGE)
        rows -= unit;
    return rows < unit ? unit : rows;
}

sdxl_status cpu_attention(backend *b, const tensor *q, const tensor *k, const tensor *v,
                          int heads, bool causal, tensor *y, sdxl_error *err)
{
    cpu_backend *cb = cpu_of(b);
    attention_job job = {
        .q = q->data,
        .k = k->data,
        .v = v->data,
        .y = y->data,
        .scratch = cb->scratch,
        .tq = (size_t)q->shape[1],
        .tk = (size_t)k->shape[1],
        .width = (size_t)q->shape[2],
        .heads = (size_t)heads,
        .causal = causal,
    };
    job.d = job.width / job.heads;
    job.scale = (float)(1.0 / sqrt((double)job.d));
    job.block_rows = attention_block_rows(job.heads, job.tq, job.tk);
    job.blocks = (job.tq + job.block_rows - 1) / job.block_rows;
    sdxl_status st = cpu_scratch_reserve(
        cb, job.block_rows * (job.tk + 1) + cpu_sgemm_pad_floats((int)job.tk, (int)job.d), err);
    if (st)
        return st;
    cpu_parallel_range(cb, (size_t)q->shape[0] * job.heads * job.blocks, 1, attention_block,
                       &job);
    return SDXL_OK;
}
