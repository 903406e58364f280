/*
 * cpu_gemm.c — matrix products: linear layers (plain, added into a residual, or grouped: several
 * weights on one input) and batched matmul, through CBLAS.
 *
 * Reproducible bits from an optimised BLAS. OpenBLAS's sgemm computes the rows of C in groups
 * of its kernel's row unroll (12 measured on Zen; 16 is usual for AVX-512 and ARM kernels).
 * Measured (OpenBLAS 0.3.21, Zen): a row's bits depend on its position within its group, and the
 * remainder rows of a call go through other kernels that sum in another order. So that an
 * image's bits never depend on the batch, the tile or the task cut:
 *  - every call has M a multiple of CPU_GEMM_ROW_UNIT; a remainder is copied into zero-padded
 *    scratch and computed as a full group (cpu_sgemm_rows);
 *  - calls start at multiples of that unit from the first row of an image (dimension 0 is the
 *    batch), so a row's position in its group is the same alone and in a batch;
 *  - columns are cut into blocks by N and K alone; row blocks by an image's rows, N and K.
 * So an image's calls have the same shapes in every run, whatever the batch or the threads,
 * and a BLAS is trusted only to be deterministic for one call shape.
 * CBLAS itself runs single-threaded (cpu_platform.c); the pool runs the blocks side by side.
 */
#include "backend/cpu/cpu_backend.h"

#include <string.h>

#include <cblas.h>

void cpu_sgemm_rows(bool trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                    const float *bm, int ldb, float *c, int ldc, float *pad)
{
    enum CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
    int main_rows = m / CPU_GEMM_ROW_UNIT * CPU_GEMM_ROW_UNIT;
    if (main_rows > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, tb, main_rows, n, k, alpha, a, lda, bm, ldb,
                    0.0f, c, ldc);
    int tail = m - main_rows;
    if (tail == 0)
        return;
    /* pad: A rows [CPU_GEMM_ROW_UNIT, k] then C rows [CPU_GEMM_ROW_UNIT, n]. */
    float *pa = pad, *pc = pad + (size_t)CPU_GEMM_ROW_UNIT * (size_t)k;
    for (int r = 0; r < tail; r++)
        memcpy(pa + (size_t)r * (size_t)k, a + (size_t)(main_rows + r) * (size_t)lda,
               (size_t)k * sizeof(float));
    memset(pa + (size_t)tail * (size_t)k, 0,
           (size_t)(CPU_GEMM_ROW_UNIT - tail) * (size_t)k * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, tb, CPU_GEMM_ROW_UNIT, n, k, alpha, pa, k, bm, ldb,
                0.0f, pc, n);
    for (int r = 0; r < tail; r++)
        memcpy(c + (size_t)(main_rows + r) * (size_t)ldc, pc + (size_t)r * (size_t)n,
               (size_t)n * sizeof(float));
}

size_t cpu_sgemm_pad_floats(int n, int k)
{
    return (size_t)CPU_GEMM_ROW_UNIT * ((size_t)k + (size_t)n);
}

typedef struct gemm_job {
    bool trans_b;
    int m, n, k;
    float alpha;
    const float *a;
    int lda;
    const float *b;
    int ldb;
    float *c;
    int ldc;
    const float *bias; /* [n] or NULL */
    backend_act act;
    bool accumulate; /* C += product (+ bias) instead of C = ... */
    int rows_per_image; /* m = images * rows_per_image */
    int row_block, row_blocks, col_block, col_blocks;
    float *const *scratch;
} gemm_job;

/* Task = (image, row block, column block): its rows of C, its columns, then bias and
 * activation. Accumulating, the product goes first into the thread's scratch after its pad
 * (room for a whole block), so that C becomes C + (product + bias) with the roundings of a
 * linear and then an add: the same bits. */
static void gemm_task(void *ctx, size_t task, int thread)
{
    const gemm_job *job = ctx;
    size_t blocks_per_image = (size_t)job->row_blocks * (size_t)job->col_blocks;
    int image = (int)(task / blocks_per_image);
    int rb = (int)(task % blocks_per_image / (size_t)job->col_blocks);
    int in_image = rb * job->row_block;
    int r0 = image * job->rows_per_image + in_image;
    int c0 = (int)(task % (size_t)job->col_blocks) * job->col_block;
    int rows = job->rows_per_image - in_image < job->row_block ? job->rows_per_image - in_image
                                                               : job->row_block;
    int cols = job->n - c0 < job->col_block ? job->n - c0 : job->col_block;
    const float *bm = job->trans_b ? job->b + (size_t)c0 * (size_t)job->ldb : job->b + c0;
    float *c = job->c + (size_t)r0 * (size_t)job->ldc + c0;
    float *pad = job->scratch[thread];
    float *out = job->accumulate ? pad + cpu_sgemm_pad_floats(job->col_block, job->k) : c;
    int ldo = job->accumulate ? cols : job->ldc;
    cpu_sgemm_rows(job->trans_b, rows, cols, job->k, job->alpha,
                   job->a + (size_t)r0 * (size_t)job->lda, job->lda, bm, job->ldb, out, ldo, pad);
    if (!job->bias && job->act == BACKEND_ACT_NONE && !job->accumulate)
        return;
    for (int r = 0; r < rows; r++) {
        float *row = out + (size_t)r * (size_t)ldo;
        if (job->bias)
            for (int j = 0; j < cols; j++)
                row[j] += job->bias[c0 + j];
        cpu_apply_act(job->act, row, (size_t)cols);
        if (job->accumulate) {
            float *dst = c + (size_t)r * (size_t)job->ldc;
            for (int j = 0; j < cols; j++)
                dst[j] += row[j];
        }
    }
}

static void gemm_task_range(void *ctx, size_t begin, size_t end, int thread)
{
    for (size_t t = begin; t < end; t++)
        gemm_task(ctx, t, thread);
}

/* Up to 4 blocks, none narrower than 128 columns (narrower calls lose kernel efficiency). */
int cpu_gemm_col_block(int n, int k)
{
    int blocks = 1;
    if ((double)n * k >= 262144.0)
        blocks = n / 128 < 4 ? n / 128 : 4;
    blocks = blocks < 1 ? 1 : blocks;
    int width = (n + blocks - 1) / blocks;
    return (width + 15) / 16 * 16;
}

/* C = alpha · A · op(B) (+ bias, act) over the pool, for `images` images of m / images rows
 * each. Per image, up to GEMM_TASKS_PER_IMAGE blocks of at least GEMM_TASK_FLOPS each (enough
 * to share among 16 threads): column blocks by cpu_gemm_col_block, then row blocks (multiples
 * of the row unit) of at least GEMM_MIN_ROW_UNITS units. Every row block packs its columns of
 * B (a weight block of K × width floats) again, which a short block cannot repay: with 48-row
 * blocks, packing weights took 12% of a UNet evaluation (its 256-token transformer layers). */
#define GEMM_TASKS_PER_IMAGE 32
#define GEMM_TASK_FLOPS 16e6
#define GEMM_MIN_ROW_UNITS 4

static sdxl_status gemm_parallel(cpu_backend *cb, gemm_job *job, int images, sdxl_error *err)
{
    job->rows_per_image = job->m / images;
    double flops = 2.0 * job->rows_per_image * job->n * job->k;
    job->col_block = cpu_gemm_col_block(job->n, job->k);
    job->col_blocks = (job->n + job->col_block - 1) / job->col_block;

    double tasks = flops / GEMM_TASK_FLOPS;
    tasks = tasks < 1.0 ? 1.0 : tasks > GEMM_TASKS_PER_IMAGE ? GEMM_TASKS_PER_IMAGE : tasks;
    int units = (job->rows_per_image + CPU_GEMM_ROW_UNIT - 1) / CPU_GEMM_ROW_UNIT;
    int max_blocks = units / GEMM_MIN_ROW_UNITS;
    int row_blocks = (int)(tasks / job->col_blocks);
    row_blocks = row_blocks > max_blocks ? max_blocks : row_blocks;
    row_blocks = row_blocks < 1 ? 1 : row_blocks;
    int units_per_block = (units + row_blocks - 1) / row_blocks;
    job->row_block = units_per_block * CPU_GEMM_ROW_UNIT;
    job->row_blocks = (job->rows_per_image + job->row_block - 1) / job->row_block;

    size_t block = job->accumulate ? (size_t)job->row_block * (size_t)job->col_block : 0;
    sdxl_status st =
        cpu_scratch_reserve(cb, cpu_sgemm_pad_floats(job->col_block, job->k) + block, err);
    if (st)
        return st;
    job->scratch = cb->scratch;
    cpu_parallel_range(cb, (size_t)images * (size_t)job->row_blocks * (size_t)job->col_blocks, 1,
                       gemm_task_range, job);
    return SDXL_OK;
}

/* y[..., n] = act(x · wᵀ + bias) (or y += x · wᵀ + bias when accumulating), w [n, K]. */
static sdxl_status linear_rows(backend *b, const tensor *x, const float *w, int n,
                               const float *bias, backend_act act, bool accumulate, float *y,
                               sdxl_error *err)
{
    int k = (int)tensor_last_dim(x);
    gemm_job job = {
        .trans_b = true,
        .m = (int)tensor_rows(x),
        .n = n,
        .k = k,
        .alpha = 1.0f,
        .a = x->data,
        .lda = k,
        .b = w,
        .ldb = k,
        .c = y,
        .ldc = n,
        .bias = bias,
        .act = act,
        .accumulate = accumulate,
    };
    /* A 1-D x is one row of one image. */
    int images = x->ndim >= 2 ? (int)x->shape[0] : 1;
    return gemm_parallel(cpu_of(b), &job, images, err);
}

sdxl_status cpu_linear(backend *b, const tensor *x, const tensor *w, const tensor *bias,
                       backend_act act, tensor *y, sdxl_error *err)
{
    return linear_rows(b, x, w->data, (int)w->shape[0], bias ? bias->data : NULL, act, false,
                       y->data, err);
}

sdxl_status cpu_linear_add(backend *b, const tensor *x, const tensor *w, const tensor *bias,
                           tensor *y, sdxl_error *err)
{
    return linear_rows(b, x, w->data, (int)w->shape[0], bias ? bias->data : NULL,
                       BACKEND_ACT_NONE, true, y->data, err);
}

/* Group by group, each exactly the linear of its slice of the weight (the same calls, so the
 * same bits). */
sdxl_status cpu_linear_groups(backend *b, const tensor *x, const tensor *w, const tensor *bias,
                              int groups, tensor *y, sdxl_error *err)
{
    int64_t n = w->shape[0] / groups, k = w->shape[1];
    size_t y_group = (size_t)(tensor_rows(x) * n);
    for (int g = 0; g < groups; g++) {
        const float *bg = bias ? (const float *)bias->data + (size_t)(g * n) : NULL;
        SDXL_TRY(linear_rows(b, x, (const float *)w->data + (size_t)(g * n * k), (int)n, bg,
                             BACKEND_ACT_NONE, false, (float *)y->data + (size_t)g * y_group,
                             err));
    }
    return SDXL_OK;
}

sdxl_status cpu_matmul(backend *b, const tensor *a, const tensor *bm, bool trans_b, float alpha,
                       tensor *c, sdxl_error *err)
{
    int batch = (int)a->shape[0], m = (int)a->shape[1], k = (int)a->shape[2];
    int n = (int)c->shape[2];
    size_t a_step = (size_t)m * (size_t)k, b_step = (size_t)k * (size_t)n,
           c_step = (size_t)m * (size_t)n;
    for (int i = 0; i < batch; i++) {
        gemm_job job = {
            .trans_b = trans_b,
            .m = m,
            .n = n,
            .k = k,
            .alpha = alpha,
            .a = (const float *)a->data + i * a_step,
            .lda = k,
            .b = (const float *)bm->data + i * b_step,
            .ldb = trans_b ? k : n,
            .c = (float *)c->data + i * c_step,
            .ldc = n,
            .act = BACKEND_ACT_NONE,
        };
        sdxl_status st = gemm_parallel(cpu_of(b), &job, 1, err);
        if (st)
            return st;
    }
    return SDXL_OK;
}
