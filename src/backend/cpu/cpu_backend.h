/*
 * cpu_backend.h — the cpu backend's state and the kernels its op table is made of.
 *
 * fp32 throughout. Matrix products go through CBLAS called single-threaded from our own
 * thread pool (cpu_gemm), so only one set of threads ever runs and results cannot depend on
 * how many there are; every other kernel splits its work into tasks whose outputs are
 * disjoint and whose arithmetic does not depend on the split.
 *
 * Layouts of weights (shape stays PyTorch's, see tensor.h):
 *   LINEAR [N, K]            row-major as given (used transposed by the GEMM)
 *   CONV   [Cout, Cin, kh, kw] stored as [kh, kw, Cin, Cout] (the B matrix of an NHWC
 *                            im2col GEMM: rows (ky, kx, ci), columns co)
 *   VECTOR, EMBEDDING        row-major as given
 */
#ifndef SDXL_BACKEND_CPU_CPU_BACKEND_H
#define SDXL_BACKEND_CPU_CPU_BACKEND_H

#include <stdbool.h>
#include <stddef.h>

#include "backend/backend.h"
#include "base/threadpool.h"

typedef struct cpu_backend {
    backend base; /* first: a backend * is a cpu_backend * */
    threadpool *pool;
    int n_threads;
    /* Per-thread scratch (im2col tiles, attention score blocks), grown on demand: the first
     * call at a new largest shape allocates, later calls do not. */
    float **scratch;
    size_t *scratch_floats;
    /* Scratch shared by all threads of one op (e.g. group-norm partial sums), grown alike. */
    void *shared;
    size_t shared_bytes;
} cpu_backend;

sdxl_status cpu_backend_create(const backend_params *params, backend **out, sdxl_error *err);

static inline cpu_backend *cpu_of(backend *b)
{
    return (cpu_backend *)b;
}

/* Makes sure every thread's scratch holds at least `floats` floats. */
sdxl_status cpu_scratch_reserve(cpu_backend *cb, size_t floats, sdxl_error *err);
/* Makes sure cb->shared holds at least `bytes` bytes. */
sdxl_status cpu_shared_reserve(cpu_backend *cb, size_t bytes, sdxl_error *err);

/* ---- platform (cpu_platform.c: the only file that knows the BLAS vendor) ---------------- */

/* Makes the BLAS library run each call on the calling thread only. */
void cpu_platform_blas_single_thread(void);
/* 64-byte aligned host memory; NULL when out of memory. Freed by cpu_platform_free. */
void *cpu_platform_alloc(size_t bytes);
void cpu_platform_free(void *p);

/* ---- matrix products (cpu_gemm.c) ----------------------------------------------------- */

/* Every sgemm call has M a multiple of this (see cpu_gemm.c): a multiple of the row unroll of
 * OpenBLAS's sgemm kernels (12 measured on Zen; 8 or 16 usual elsewhere). */
#define CPU_GEMM_ROW_UNIT 48

/* C[M, N] = alpha · A[M, K] · op(B), row-major with leading dimensions; op(B) is B [K, N] or,
 * when trans_b, Bᵀ with B [N, K]. Any M: a remainder of M is computed through pad, which must
 * hold cpu_sgemm_pad_floats(n, k) floats. Runs on the calling thread only. A row's bits depend
 * on its row of A, on B, on m, n, k and on the row's index modulo CPU_GEMM_ROW_UNIT: callers
 * keep all of these the same for an image whatever the batch or threads (cpu_gemm.c). */
void cpu_sgemm_rows(bool trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                    const float *bm, int ldb, float *c, int ldc, float *pad);
size_t cpu_sgemm_pad_floats(int n, int k);
/* Width of the column blocks a product with N columns and depth K is cut into (from N and K
 * only; N itself when it is not worth cutting). */
int cpu_gemm_col_block(int n, int k);

sdxl_status cpu_linear(backend *b, const tensor *x, const tensor *w, const tensor *bias,
                       backend_act act, tensor *y, sdxl_error *err);
sdxl_status cpu_linear_add(backend *b, const tensor *x, const tensor *w, const tensor *bias,
                           tensor *y, sdxl_error *err);
sdxl_status cpu_linear_groups(backend *b, const tensor *x, const tensor *w, const tensor *bias,
                              int groups, tensor *y, sdxl_error *err);
sdxl_status cpu_matmul(backend *b, const tensor *a, const tensor *bm, bool trans_b, float alpha,
                       tensor *c, sdxl_error *err);

/* ---- convolution (cpu_conv.c) ---------------------------------------------------------- */

/* Re-arranges a PyTorch [Cout, Cin, kh, kw] weight (f32) into [kh, kw, Cin, Cout]. */
void cpu_conv_weight_layout(const float *src, float *dst, int cout, int cin, int kh, int kw);
sdxl_status cpu_conv2d(backend *b, const tensor *x, const tensor *w, const tensor *bias,
                       const conv2d_params *p, tensor *y, sdxl_error *err);

/* ---- Winograd F(2x2, 3x3) convolution (cpu_winograd.c) ---------------------------------- */

/* Whether cpu_conv2d runs this convolution as Winograd F(2x2, 3x3): 3x3, stride 1, padding 1,
 * and an output large enough to repay the transforms. */
bool cpu_winograd_applies(const tensor *x, const tensor *w, const conv2d_params *p,
                          const tensor *y);
sdxl_status cpu_conv2d_winograd(cpu_backend *cb, const tensor *x, const tensor *w,
                                const tensor *bias, tensor *y, sdxl_error *err);

/* ---- attention (cpu_attention.c) -------------------------------------------------------- */

sdxl_status cpu_attention(backend *b, const tensor *q, const tensor *k, const tensor *v,
                          int heads, bool causal, tensor *y, sdxl_error *err);

/* ---- normalisation and softmax (cpu_norm.c) --------------------------------------------- */

sdxl_status cpu_group_norm(backend *b, const tensor *x, int groups, float eps,
                           const tensor *gamma, const tensor *beta, bool silu, tensor *y,
                           sdxl_error *err);
sdxl_status cpu_layer_norm(backend *b, const tensor *x, float eps, const tensor *gamma,
                           const tensor *beta, tensor *y, sdxl_error *err);
sdxl_status cpu_softmax(backend *b, const tensor *x, tensor *y, sdxl_error *err);
/* row[j] = exp(row[j] - max(row)) in place; returns the sum of the new row (fixed order). */
float cpu_softmax_row_unnormalised(float *row, size_t n);

/* ---- element-wise ops (cpu_elementwise.c) ----------------------------------------------- */

/* Applies act to n floats in place (shared by linear's epilogue and the unary op). */
void cpu_apply_act(backend_act act, float *x, size_t n);
sdxl_status cpu_unary(backend *b, backend_unary_op op, const tensor *x, tensor *y,
                      sdxl_error *err);
sdxl_status cpu_geglu(backend *b, const tensor *x, tensor *y, sdxl_error *err);
sdxl_status cpu_binary(backend *b, backend_binary_op op, const tensor *x, const tensor *z,
                       tensor *y, sdxl_error *err);
sdxl_status cpu_add_scaled(backend *b, float alpha, const tensor *x, float beta,
                           const tensor *z, tensor *y, sdxl_error *err);
sdxl_status cpu_scale(backend *b, const tensor *x, float alpha, float beta, tensor *y,
                      sdxl_error *err);
sdxl_status cpu_div_scalar(backend *b, const tensor *x, float divisor, tensor *y,
                           sdxl_error *err);
sdxl_status cpu_clamp(backend *b, const tensor *x, float lo, float hi, tensor *y,
                      sdxl_error *err);
sdxl_status cpu_gaussian_sample(backend *b, const tensor *mean, const tensor *logvar,
                                const tensor *noise, tensor *y, sdxl_error *err);
/* x of any float type (F16 and BF16 tensors are host memory like any other here). */
sdxl_status cpu_convert(backend *b, const tensor *x, tensor *y, sdxl_error *err);
sdxl_status cpu_normalize_pixels(backend *b, const tensor *x, tensor *y, sdxl_error *err);
sdxl_status cpu_denormalize_pixels(backend *b, const tensor *x, tensor *y, sdxl_error *err);
sdxl_status cpu_add_channels(backend *b, const tensor *x, const tensor *e, tensor *y,
                             sdxl_error *err);

/* ---- data movement (cpu_layout.c) -------------------------------------------------------- */

sdxl_status cpu_upsample_nearest2x(backend *b, const tensor *x, tensor *y, sdxl_error *err);
sdxl_status cpu_concat_channels(backend *b, const tensor *a, const tensor *c, tensor *y,
                                sdxl_error *err);
sdxl_status cpu_slice_channels(backend *b, const tensor *x, int64_t first, tensor *y,
                               sdxl_error *err);
sdxl_status cpu_timestep_embedding(backend *b, const tensor *t, bool flip_sin_to_cos,
                                   float downscale_freq_shift, float max_period, tensor *y,
                                   sdxl_error *err);
sdxl_status cpu_gather_rows(backend *b, const tensor *table, const tensor *ids, tensor *y,
                            sdxl_error *err);
sdxl_status cpu_copy(backend *b, const tensor *x, tensor *y, sdxl_error *err);
sdxl_status cpu_zero(backend *b, tensor *y, sdxl_error *err);

/* ---- splitting work over the pool (cpu_parallel.c) --------------------------------------- */

/* Calls fn(ctx, begin, end, thread) over [0, n) cut into chunks of `grain` (the last may be
 * shorter), spread over the pool. The cut depends only on n and grain, never on the thread
 * count, so per-chunk arithmetic gives the same bits with any number of threads. */
typedef void (*cpu_range_fn)(void *ctx, size_t begin, size_t end, int thread);
void cpu_parallel_range(cpu_backend *cb, size_t n, size_t grain, cpu_range_fn fn, void *ctx);

#endif /* SDXL_BACKEND_CPU_CPU_BACKEND_H */
