/*
 * cuda_gemm.c — matrix products through cuBLASLt: linear layers (bias added in the epilogue),
 * matmul, and the products other ops are made of (1x1 convolutions, tiled attention).
 *
 * cuBLAS is column-major. A row-major C = A · op(B) is the column-major Cᵀ = op(B)ᵀ · Aᵀ, and
 * a row-major matrix is its own transpose read column-major, so every call passes our B as
 * cuBLAS's A and our A as its B, with cuBLAS's m = N and n = M. The bias epilogue adds a
 * vector along cuBLAS's rows — our columns N — which is a linear layer's bias.
 *
 * Two fusions save launches (inside a CUDA graph each kernel still costs microseconds, and the
 * UNet's products at 512² are small): linear_add is D = A·Bᵀ + 1·C + bias with C = D, the
 * residual added in the epilogue; linear_groups runs G weights on one input as one strided
 * batch (A's batch stride 0, the stacked weights N·K apart, the outputs rows·N apart, the
 * biases N apart), G times the tiles of one product per launch.
 *
 * Activations are not fused: cuBLASLt's GELU epilogue is the tanh approximation and the models
 * use the exact GELU, so linear applies its activation as a separate in-place kernel.
 *
 * The algorithm for a shape is chosen once, at the shape's first product, and kept: a shape
 * always runs the same kernels, and cuBLAS gives the same bits run to run on one GPU model (its
 * documented reproducibility); linear runs image by image so a batch changes nothing. The
 * choice times cuBLASLt's heuristic candidates on that first product, because its first answer
 * for the UNet's small products (256 to 4096 rows) fills under one wave of the GPU. Another
 * candidate replaces the first answer only when clearly faster; still, a timing decides, so two
 * processes may pick differently and differ in the last bits (within the type's tolerance). A
 * shape first met while recording a graph takes the first answer: nothing can be timed then.
 */
#include "backend/cuda/cuda_internal.h"

#include <stdlib.h>
#include <string.h>

/* How many of the heuristic's candidates are timed, how often each, and how much faster one
 * must be to replace the first answer (so that timing noise does not decide). */
#define GEMM_CANDIDATES 8
#define GEMM_TIMED_RUNS 10
#define GEMM_CLEARLY_FASTER 0.95f

/* Everything that decides the algorithm. Zeroed before it is filled, so memcmp compares. */
typedef struct gemm_key {
    int32_t trans_b, bias, ab_type, c_type;
    int32_t align_a, align_b, align_c, pad_;
    int64_t m, n, k, lda, ldb, ldc;
    int64_t batch, stride_a, stride_b, stride_c, stride_bias;
} gemm_key;

typedef struct gemm_plan {
    gemm_key key;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, lc; /* cuBLAS's A (our B), its B (our A), C */
    cublasLtMatmulAlgo_t algo;
} gemm_plan;

static cudaDataType_t data_type(dtype t)
{
    switch (t) {
    case DTYPE_F16:
        return CUDA_R_16F;
    case DTYPE_BF16:
        return CUDA_R_16BF;
    default:
        return CUDA_R_32F;
    }
}

static void gemm_plan_free(gemm_plan *p)
{
    if (p->la)
        cublasLtMatrixLayoutDestroy(p->la);
    if (p->lb)
        cublasLtMatrixLayoutDestroy(p->lb);
    if (p->lc)
        cublasLtMatrixLayoutDestroy(p->lc);
    if (p->desc)
        cublasLtMatmulDescDestroy(p->desc);
    free(p);
}

void cuda_gemm_plans_free(cuda_backend *cb)
{
    for (size_t i = 0; i < cb->gemm_plans.count; i++)
        gemm_plan_free(cb->gemm_plans.plans[i]);
    free(cb->gemm_plans.plans);
    memset(&cb->gemm_plans, 0, sizeof(cb->gemm_plans));
}

/* A column-major rows x cols matrix, repeated batch times `stride` elements apart. */
static sdxl_status layout_create(cublasLtMatrixLayout_t *l, dtype type, int64_t rows, int64_t cols,
                                 int64_t ld, int64_t batch, int64_t stride, sdxl_error *err)
{
    SDXL_TRY(cuda_check_blas(
        cublasLtMatrixLayoutCreate(l, data_type(type), (uint64_t)rows, (uint64_t)cols, ld),
        "matrix layout", err));
    if (batch > 1) {
        int32_t count = (int32_t)batch;
        SDXL_TRY(cuda_check_blas(cublasLtMatrixLayoutSetAttribute(
                                     *l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)),
                                 "matrix layout batch", err));
        SDXL_TRY(cuda_check_blas(
            cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                             &stride, sizeof(stride)),
            "matrix layout stride", err));
    }
    return SDXL_OK;
}

/* The heuristic's candidates for p, best first: up to GEMM_CANDIDATES of them in results. */
static sdxl_status heuristic_candidates(cuda_backend *cb, gemm_plan *p,
                                        cublasLtMatmulHeuristicResult_t *results, int *found,
                                        sdxl_error *err)
{
    const gemm_key *key = &p->key;
    cublasLtMatmulPreference_t pref = NULL;
    SDXL_TRY(cuda_check_blas(cublasLtMatmulPreferenceCreate(&pref), "matmul preference", err));
    uint64_t workspace = CUDA_GEMM_WORKSPACE;
    uint32_t align_a = (uint32_t)key->align_b, align_b = (uint32_t)key->align_a;
    uint32_t align_c = (uint32_t)key->align_c;
    *found = 0;
    sdxl_status st = cuda_check_blas(
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                             &workspace, sizeof(workspace)),
        "matmul preference", err);
    if (!st)
        st = cuda_check_blas(
            cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                                 &align_a, sizeof(align_a)),
            "matmul preference", err);
    if (!st)
        st = cuda_check_blas(
            cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                                 &align_b, sizeof(align_b)),
            "matmul preference", err);
    if (!st)
        st = cuda_check_blas(
            cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                                                 &align_c, sizeof(align_c)),
            "matmul preference", err);
    if (!st)
        st = cuda_check_blas(
            cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                                                 &align_c, sizeof(align_c)),
            "matmul preference", err);
    if (!st)
        st = cuda_check_blas(cublasLtMatmulAlgoGetHeuristic(cb->lt, p->desc, p->la, p->lb, p->lc,
                                                            p->lc, pref, GEMM_CANDIDATES, results,
                                                            found),
                             "choosing a matmul algorithm", err);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st)
        return st;
    if (*found < 1 || results[0].state != CUBLAS_STATUS_SUCCESS)
        return error_set(err, SDXL_ERR_BACKEND,
                         "cuda backend: cuBLASLt has no algorithm for a %lld x %lld x %lld "
                         "product (%s operands, %s result, alignment %d/%d/%d bytes)",
                         (long long)key->m, (long long)key->n, (long long)key->k,
                         dtype_name((dtype)key->ab_type), dtype_name((dtype)key->c_type),
                         key->align_a, key->align_b, key->align_c);
    return SDXL_OK;
}

/* The bias epilogue reads g's bias: its address is an attribute of the plan's descriptor. */
static sdxl_status set_bias(const gemm_plan *p, const cuda_gemm_args *g, sdxl_error *err)
{
    if (!g->bias)
        return SDXL_OK;
    return cuda_check_blas(cublasLtMatmulDescSetAttribute(p->desc,
                                                          CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                          &g->bias, sizeof(g->bias)),
                           "matmul bias", err);
}

/* D = alpha · product + beta · C (+ bias), C being g's output and D `d` (g's output, or
 * scratch while timing a product that reads C). */
static cublasStatus_t run_algo(cuda_backend *cb, const gemm_plan *p, const cuda_gemm_args *g,
                               const cublasLtMatmulAlgo_t *algo, void *d)
{
    return cublasLtMatmul(cb->lt, p->desc, &g->alpha, g->b, p->la, g->a, p->lb, &g->beta, g->c,
                          p->lc, d, p->lc, algo, cb->gemm_workspace, CUDA_GEMM_WORKSPACE,
                          cb->stream);
}

/* Milliseconds for GEMM_TIMED_RUNS runs of algo on g's operands (after one untimed run) into
 * d, or a negative number when the candidate fails to run. d is g's own output when the
 * product does not read it (beta 0): every run overwrites it, and the product that follows
 * writes it once more. */
static float time_algo(cuda_backend *cb, const gemm_plan *p, const cuda_gemm_args *g,
                       const cublasLtMatmulAlgo_t *algo, void *d, cudaEvent_t start,
                       cudaEvent_t stop)
{
    if (run_algo(cb, p, g, algo, d) != CUBLAS_STATUS_SUCCESS)
        return -1.0f;
    cudaEventRecord(start, cb->stream);
    for (int i = 0; i < GEMM_TIMED_RUNS; i++)
        if (run_algo(cb, p, g, algo, d) != CUBLAS_STATUS_SUCCESS)
            return -1.0f;
    cudaEventRecord(stop, cb->stream);
    float ms = -1.0f;
    if (cudaEventSynchronize(stop) != cudaSuccess || cudaEventElapsedTime(&ms, start, stop))
        return -1.0f;
    return ms;
}

/* Where the candidates of g write while they are timed: g's output, unless the product reads
 * it (beta != 0: a residual, which repeated runs would add again and again), then scratch of
 * the output's size. */
static sdxl_status timing_output(cuda_backend *cb, const cuda_gemm_args *g, void **d,
                                 sdxl_error *err)
{
    *d = g->c;
    if (g->beta == 0.0f)
        return SDXL_OK;
    size_t elements = (size_t)((g->batch - 1) * g->stride_c + g->m * g->ldc);
    SDXL_TRY(cuda_buffer_reserve(cb, &cb->scratch, elements * dtype_size(g->c_type),
                                 "timing a residual product", err));
    *d = cb->scratch.data;
    return SDXL_OK;
}

/* An algorithm already chosen for a plan that differs from p only in the output's batch
 * stride (linear_groups's outputs are rows·N apart for one image, B·rows·N for an image of a
 * batch of B): kept, so that an image gets the same kernel, and the same bits, in any batch.
 * Checked against p's layouts before it is taken. */
static bool reuse_algo(cuda_backend *cb, gemm_plan *p)
{
    for (size_t i = 0; i < cb->gemm_plans.count; i++) {
        const gemm_plan *q = cb->gemm_plans.plans[i];
        gemm_key other = q->key;
        other.stride_c = p->key.stride_c;
        if (q->key.stride_c == p->key.stride_c || memcmp(&other, &p->key, sizeof(other)) != 0)
            continue;
        cublasLtMatmulHeuristicResult_t check;
        memset(&check, 0, sizeof(check));
        if (cublasLtMatmulAlgoCheck(cb->lt, p->desc, p->la, p->lb, p->lc, p->lc, &q->algo,
                                    &check) != CUBLAS_STATUS_SUCCESS ||
            check.state != CUBLAS_STATUS_SUCCESS)
            return false;
        p->algo = q->algo;
        return true;
    }
    return false;
}

/* Sets p->algo: the algorithm of a plan differing only in the output's batch stride, else the
 * heuristic's first answer or a clearly faster candidate (file comment). */
static sdxl_status choose_algo(cuda_backend *cb, gemm_plan *p, const cuda_gemm_args *g,
                               sdxl_error *err)
{
    if (reuse_algo(cb, p))
        return SDXL_OK;
    cublasLtMatmulHeuristicResult_t results[GEMM_CANDIDATES];
    memset(results, 0, sizeof(results));
    int found = 0;
    SDXL_TRY(heuristic_candidates(cb, p, results, &found, err));
    p->algo = results[0].algo;
    if (found < 2 || cb->base.recording)
        return SDXL_OK;
    SDXL_TRY(set_bias(p, g, err));
    void *d = NULL;
    SDXL_TRY(timing_output(cb, g, &d, err));
    cudaEvent_t start = NULL, stop = NULL;
    SDXL_TRY(cuda_check(cudaEventCreate(&start), "timing event", err));
    sdxl_status st = cuda_check(cudaEventCreate(&stop), "timing event", err);
    float best = -1.0f;
    for (int i = 0; i < found && st == SDXL_OK; i++) {
        if (results[i].state != CUBLAS_STATUS_SUCCESS)
            continue;
        float ms = time_algo(cb, p, g, &results[i].algo, d, start, stop);
        if (ms < 0.0f)
            continue;
        if (best < 0.0f || ms < best * GEMM_CLEARLY_FASTER) {
            best = ms;
            p->algo = results[i].algo;
        }
    }
    if (stop)
        cudaEventDestroy(stop);
    cudaEventDestroy(start);
    /* A failed candidate may leave an error behind: clear it, as the chosen one runs next. */
    cudaGetLastError();
    return st;
}

/* The plan for key, its algorithm chosen on the product g (whose shape key describes). */
static sdxl_status gemm_plan_build(cuda_backend *cb, const gemm_key *key,
                                   const cuda_gemm_args *g, gemm_plan *p, sdxl_error *err)
{
    p->key = *key;
    /* fp32 accumulation and scale; CUBLAS_COMPUTE_32F never rounds operands to TF32. */
    SDXL_TRY(cuda_check_blas(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F),
                             "matmul descriptor", err));
    cublasOperation_t op_a = key->trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, op_b = CUBLAS_OP_N;
    SDXL_TRY(cuda_check_blas(
        cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof(op_a)),
        "matmul descriptor", err));
    SDXL_TRY(cuda_check_blas(
        cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof(op_b)),
        "matmul descriptor", err));
    if (key->bias) {
        cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
        SDXL_TRY(
            cuda_check_blas(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE,
                                                           &epilogue, sizeof(epilogue)),
                            "matmul bias epilogue", err));
    }
    if (key->bias && key->batch > 1) {
        int64_t stride = key->stride_bias; /* the attribute is an int64_t */
        SDXL_TRY(cuda_check_blas(
            cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE, &stride,
                                           sizeof(stride)),
            "matmul bias batch stride", err));
    }
    dtype ab = (dtype)key->ab_type, c = (dtype)key->c_type;
    /* Our B [K, N] row-major is column-major [N, K]; transposed [N, K] is column-major [K, N]. */
    if (key->trans_b)
        SDXL_TRY(
            layout_create(&p->la, ab, key->k, key->n, key->ldb, key->batch, key->stride_b, err));
    else
        SDXL_TRY(
            layout_create(&p->la, ab, key->n, key->k, key->ldb, key->batch, key->stride_b, err));
    SDXL_TRY(layout_create(&p->lb, ab, key->k, key->m, key->lda, key->batch, key->stride_a, err));
    SDXL_TRY(layout_create(&p->lc, c, key->n, key->m, key->ldc, key->batch, key->stride_c, err));
    return choose_algo(cb, p, g, err);
}

static sdxl_status gemm_plan_get(cuda_backend *cb, const gemm_key *key,
                                 const cuda_gemm_args *g, gemm_plan **out, sdxl_error *err)
{
    *out = cuda_plan_cache_find(&cb->gemm_plans, key, sizeof(*key));
    if (*out)
        return SDXL_OK;
    gemm_plan *p = calloc(1, sizeof(*p));
    if (!p)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "cuda backend: out of host memory");
    sdxl_status st = gemm_plan_build(cb, key, g, p, err);
    if (!st)
        st = cuda_plan_cache_add(&cb->gemm_plans, p, err);
    if (st) {
        gemm_plan_free(p);
        return st;
    }
    *out = p;
    return SDXL_OK;
}

sdxl_status cuda_gemm(cuda_backend *cb, const cuda_gemm_args *g, sdxl_error *err)
{
    size_t ab_size = dtype_size(g->ab_type), c_size = dtype_size(g->c_type);
    bool batched = g->batch > 1;
    gemm_key key;
    memset(&key, 0, sizeof(key));
    key.trans_b = g->trans_b;
    key.bias = g->bias != NULL;
    key.ab_type = (int32_t)g->ab_type;
    key.c_type = (int32_t)g->c_type;
    key.align_a = cuda_alignment(g->a, batched ? (size_t)g->stride_a * ab_size : 0);
    key.align_b = cuda_alignment(g->b, batched ? (size_t)g->stride_b * ab_size : 0);
    key.align_c = cuda_alignment(g->c, batched ? (size_t)g->stride_c * c_size : 0);
    key.m = g->m;
    key.n = g->n;
    key.k = g->k;
    key.lda = g->lda;
    key.ldb = g->ldb;
    key.ldc = g->ldc;
    key.batch = g->batch;
    key.stride_a = batched ? g->stride_a : 0;
    key.stride_b = batched ? g->stride_b : 0;
    key.stride_c = batched ? g->stride_c : 0;
    key.stride_bias = batched && g->bias ? g->stride_bias : 0;
    gemm_plan *p = NULL;
    SDXL_TRY(gemm_plan_get(cb, &key, g, &p, err));
    SDXL_TRY(set_bias(p, g, err));
    return cuda_check_blas(run_algo(cb, p, g, &p->algo, g->c),
                           g->beta != 0.0f ? "matrix product added into its output"
                                           : "matrix product",
                           err);
}

/* y[g, ..., N] = x[..., K] · w_gᵀ + bias_g + beta · y[g, ...] for the `groups` weights [N, K]
 * stacked in w, image by image (a 1-D x is one row of one image): one product per image, a
 * batch of the groups. */
static sdxl_status linear_images(cuda_backend *cb, const tensor *x, const void *w, int64_t n,
                                 int groups, const tensor *bias, float beta, tensor *y,
                                 sdxl_error *err)
{
    int64_t k = tensor_last_dim(x);
    int64_t images = x->ndim >= 2 ? x->shape[0] : 1;
    int64_t rows = tensor_rows(x) / images; /* per image */
    size_t x_image = (size_t)(rows * k) * dtype_size(x->type);
    size_t y_image = (size_t)(rows * n) * dtype_size(y->type);
    for (int64_t i = 0; i < images; i++) {
        cuda_gemm_args g = {
            .trans_b = true,
            .m = rows,
            .n = n,
            .k = k,
            .lda = k,
            .ldb = k,
            .ldc = n,
            .batch = groups,
            .stride_a = 0,
            .stride_b = n * k,
            .stride_c = images * rows * n,
            .stride_bias = n,
            .ab_type = x->type,
            .c_type = y->type,
            .alpha = 1.0f,
            .beta = beta,
            .a = (const unsigned char *)x->data + (size_t)i * x_image,
            .b = w,
            .bias = bias ? bias->data : NULL,
            .c = (unsigned char *)y->data + (size_t)i * y_image,
        };
        SDXL_TRY(cuda_gemm(cb, &g, err));
    }
    return SDXL_OK;
}

sdxl_status cuda_linear_rows(cuda_backend *cb, const tensor *x, const void *w, int64_t n,
                             const tensor *bias, backend_act act, tensor *y, sdxl_error *err)
{
    SDXL_TRY(linear_images(cb, x, w, n, 1, bias, 0.0f, y, err));
    if (act == BACKEND_ACT_NONE)
        return SDXL_OK;
    return cuda_unary(&cb->base, (backend_unary_op)act, y, y, err);
}

sdxl_status cuda_linear(backend *b, const tensor *x, const tensor *w, const tensor *bias,
                        backend_act act, tensor *y, sdxl_error *err)
{
    return cuda_linear_rows(cuda_of(b), x, w->data, w->shape[0], bias, act, y, err);
}

sdxl_status cuda_linear_add(backend *b, const tensor *x, const tensor *w, const tensor *bias,
                            tensor *y, sdxl_error *err)
{
    return linear_images(cuda_of(b), x, w->data, w->shape[0], 1, bias, 1.0f, y, err);
}

sdxl_status cuda_linear_groups(backend *b, const tensor *x, const tensor *w, const tensor *bias,
                               int groups, tensor *y, sdxl_error *err)
{
    return linear_images(cuda_of(b), x, w->data, w->shape[0] / groups, groups, bias, 0.0f, y,
                         err);
}

sdxl_status cuda_matmul(backend *b, const tensor *a, const tensor *bm, bool trans_b, float alpha,
                        tensor *c, sdxl_error *err)
{
    int64_t batch = a->shape[0], m = a->shape[1], k = a->shape[2], n = c->shape[2];
    size_t es = dtype_size(a->type);
    /* One product per entry, each planned for one entry: c[i]'s bits do not depend on batch. */
    for (int64_t i = 0; i < batch; i++) {
        cuda_gemm_args g = {
            .trans_b = trans_b,
            .m = m,
            .n = n,
            .k = k,
            .lda = k,
            .ldb = trans_b ? k : n,
            .ldc = n,
            .batch = 1,
            .ab_type = a->type,
            .c_type = c->type,
            .alpha = alpha,
            .a = (const unsigned char *)a->data + (size_t)(i * m * k) * es,
            .b = (const unsigned char *)bm->data + (size_t)(i * k * n) * es,
            .bias = NULL,
            .c = (unsigned char *)c->data + (size_t)(i * m * n) * es,
        };
        SDXL_TRY(cuda_gemm(cuda_of(b), &g, err));
    }
    return SDXL_OK;
}
