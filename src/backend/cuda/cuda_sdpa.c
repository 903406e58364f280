/*
 * cuda_sdpa.c — attention through cuDNN's fused flash attention (SDPA), built with the C
 * backend API: the UNet's attention (cuda_attention.c says which shapes come here). A shape
 * cuDNN refuses is reported as SDXL_ERR_UNSUPPORTED, with cuDNN's reason, before anything is
 * queued; the refusal is kept like a plan, so the shape is not tried again.
 *
 * The operation graph, for one image, is the pattern cuDNN's runtime fusion recognises as
 * flash attention (what cudnn-frontend's SDPA node emits). H heads of D channels, T = F16/BF16:
 *   S = Q Kᵀ                matmul, fp32, virtual                       [1, H, Tq, Tk]
 *   S = S · scale           pointwise MUL by a by-value fp32 scalar, 1/sqrt(D)
 *   causal: S = row >= col ? S : -inf   GEN_INDEX of axes 2 and 3, CMP_GE, BINARY_SELECT
 *   m = max(S), e = exp(S − m), s = sum(e)     reductions over the keys     [1, H, Tq, 1]
 *   stats = m + log(s)      fp32, a real output (the engine writes it; cb->scratch, unread)
 *   P = e / s               virtual, in T
 *   Y = P V                 in T
 * Heads are read and written in place: q [B, Tq, H·D] is for one image dims [1, H, Tq, D]
 * with strides [Tq·W, D, W, 1] (W its row stride), y alike; v [B, Tk, H·D] is [1, H, Tk, D];
 * Kᵀ is k's memory seen as dims [1, H, D, Tk] with strides [Tk·W, D, 1, W].
 *
 * A plan is built for one image of a shape (and its alignments) and kept; a batch runs it
 * image by image, so an image's bits never depend on the batch. Engines are chosen as for the
 * convolutions (cuda_dnn_plan.c: heuristics, nondeterministic engines refused).
 */
#include "backend/cuda/cuda_dnn_plan.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

/* The tensors' unique ids: the variant pack's, then the virtual ones from SDPA_UID_VIRTUAL. */
enum {
    SDPA_UID_Q = 'q',
    SDPA_UID_K = 'k',
    SDPA_UID_V = 'v',
    SDPA_UID_Y = 'y',
    SDPA_UID_STATS = 's',
    SDPA_UID_SCALE = 'c',
    SDPA_UID_MASK = 'm',
    SDPA_UID_VIRTUAL = 1000,
};

#define SDPA_MAX_OPS 16

/* Everything that decides the plan (one image). Zeroed before it is filled. */
typedef struct sdpa_key {
    int32_t type, causal;
    int32_t align_q, align_k, align_v, align_y;
    int64_t tq, tk, heads, d;
    int64_t ld_q, ld_k, ld_v, ld_y; /* row strides, elements */
} sdpa_key;

typedef struct sdpa_plan {
    sdpa_key key;
    /* The by-value scalars, read from here when the plan is launched. */
    float scale, mask;
    dnn_plan dnn;      /* dnn.plan is NULL where cuDNN refused the shape: */
    sdxl_error refusal; /* what it said then */
} sdpa_plan;

/* A graph being built: its plan (which owns the descriptors) and its operations so far. */
typedef struct sdpa_graph {
    sdpa_plan *p;
    int64_t next_uid;
    cudnnBackendDescriptor_t ops[SDPA_MAX_OPS];
    int64_t n_ops;
} sdpa_graph;

bool cuda_sdpa_supported(dtype type, int64_t d)
{
    return (type == DTYPE_F16 || type == DTYPE_BF16) && d % 8 == 0 && d <= 128;
}

static void sdpa_plan_free(sdpa_plan *p)
{
    dnn_plan_clear(&p->dnn);
    free(p);
}

void cuda_sdpa_plans_free(cuda_backend *cb)
{
    for (size_t i = 0; i < cb->sdpa_plans.count; i++)
        sdpa_plan_free(cb->sdpa_plans.plans[i]);
    free(cb->sdpa_plans.plans);
    memset(&cb->sdpa_plans, 0, sizeof(cb->sdpa_plans));
}

/* A tensor of the graph with strides given (the caller's memory, or a by-value scalar). */
static sdxl_status real_tensor(sdpa_graph *g, const char *name, int64_t uid, cudnnDataType_t type,
                               const int64_t dims[4], const int64_t strides[4], int64_t alignment,
                               bool by_value, cudnnBackendDescriptor_t *out, sdxl_error *err)
{
    dnn_tensor_spec t = {
        .name = name,
        .uid = uid,
        .type = type,
        .dims = {dims[0], dims[1], dims[2], dims[3]},
        .strides = {strides[0], strides[1], strides[2], strides[3]},
        .alignment = alignment,
        .by_value = by_value,
    };
    return dnn_tensor(&g->p->dnn, &t, out, err);
}

/* A virtual tensor (never stored), packed row-major, with the next free unique id. */
static sdxl_status virtual_tensor(sdpa_graph *g, const char *name, cudnnDataType_t type,
                                  const int64_t dims[4], cudnnBackendDescriptor_t *out,
                                  sdxl_error *err)
{
    dnn_tensor_spec t = {
        .name = name,
        .uid = g->next_uid++,
        .type = type,
        .dims = {dims[0], dims[1], dims[2], dims[3]},
        .strides = {dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1},
        .alignment = CUDA_ALIGNMENT_CAP,
        .is_virtual = true,
    };
    return dnn_tensor(&g->p->dnn, &t, out, err);
}

static sdxl_status add_operation(sdpa_graph *g, cudnnBackendDescriptor_t op, sdxl_error *err)
{
    if (g->n_ops == SDPA_MAX_OPS)
        return error_set(err, SDXL_ERR_INTERNAL, "cuda backend: too many attention operations");
    g->ops[g->n_ops++] = op;
    return SDXL_OK;
}

/* c = a · b over the last two dimensions, accumulated in fp32. */
static sdxl_status matmul_operation(sdpa_graph *g, const char *what, cudnnBackendDescriptor_t a,
                                    cudnnBackendDescriptor_t b, cudnnBackendDescriptor_t c,
                                    sdxl_error *err)
{
    dnn_plan *p = &g->p->dnn;
    cudnnDataType_t compute = CUDNN_DATA_FLOAT;
    cudnnBackendDescriptor_t desc, op;
    SDXL_TRY(dnn_descriptor(p, CUDNN_BACKEND_MATMUL_DESCRIPTOR, &desc, err));
    DNN(cudnnBackendSetAttribute(desc, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1,
                                 &compute),
        what);
    DNN(cudnnBackendFinalize(desc), what);
    SDXL_TRY(dnn_descriptor(p, CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR, &op, err));
    DNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_MATMUL_ADESC,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &a),
        what);
    DNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_MATMUL_BDESC,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b),
        what);
    DNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_MATMUL_CDESC,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &c),
        what);
    DNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_MATMUL_DESC,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &desc),
        what);
    DNN(cudnnBackendFinalize(op), what);
    return add_operation(g, op, err);
}

/* y = mode(x[, b[, t]]) element by element, computed in `precision`; b and t may be NULL.
 * axis is GEN_INDEX's dimension (ignored by the other modes). */
static sdxl_status pointwise_operation(sdpa_graph *g, const char *what, cudnnPointwiseMode_t mode,
                                       cudnnDataType_t precision, int64_t axis,
                                       cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t b,
                                       cudnnBackendDescriptor_t t, cudnnBackendDescriptor_t y,
                                       sdxl_error *err)
{
    dnn_plan *p = &g->p->dnn;
    cudnnBackendDescriptor_t desc, op;
    SDXL_TRY(dnn_descriptor(p, CUDNN_BACKEND_POINTWISE_DESCRIPTOR, &desc, err));
    DNN(cudnnBackendSetAttribute(desc, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1,
                                 &mode),
        what);
    DNN(cudnnBackendSetAttribute(desc, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1,
                                 &precision),
        what);
    if (mode == CUDNN_POINTWISE_GEN_INDEX)
        DNN(cudnnBackendSetAttribute(desc, CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, 1, &axis),
            what);
    DNN(cudnnBackendFinalize(desc), what);
    SDXL_TRY(dnn_descriptor(p, CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, &op, err));
    DNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &desc),
        what);
    DNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x),
        what);
    if (b)
        DNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC,
                                     CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b),
            what);
    if (t)
        DNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_POINTWISE_TDESC,
                                     CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &t),
            what);
    DNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y),
        what);
    DNN(cudnnBackendFinalize(op), what);
    return add_operation(g, op, err);
}

/* y [1, H, Tq, 1] = the maximum or the sum of x [1, H, Tq, Tk] over the keys, in fp32. */
static sdxl_status reduction_operation(sdpa_graph *g, const char *what,
                                       cudnnReduceTensorOp_t reduce, cudnnBackendDescriptor_t x,
                                       cudnnBackendDescriptor_t y, sdxl_error *err)
{
    dnn_plan *p = &g->p->dnn;
    cudnnDataType_t compute = CUDNN_DATA_FLOAT;
    cudnnBackendDescriptor_t desc, op;
    SDXL_TRY(dnn_descriptor(p, CUDNN_BACKEND_REDUCTION_DESCRIPTOR, &desc, err));
    DNN(cudnnBackendSetAttribute(desc, CUDNN_ATTR_REDUCTION_OPERATOR,
                                 CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &reduce),
        what);
    DNN(cudnnBackendSetAttribute(desc, CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1,
                                 &compute),
        what);
    DNN(cudnnBackendFinalize(desc), what);
    SDXL_TRY(dnn_descriptor(p, CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR, &op, err));
    DNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_REDUCTION_XDESC,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x),
        what);
    DNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_REDUCTION_YDESC,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y),
        what);
    DNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_REDUCTION_DESC,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &desc),
        what);
    DNN(cudnnBackendFinalize(op), what);
    return add_operation(g, op, err);
}

/* S = row >= col ? S : p->mask, each query seeing the keys up to its own position (the
 * top-left diagonal: Tq = Tk, checked by backend.c). */
static sdxl_status causal_mask(sdpa_graph *g, const int64_t scores[4],
                               cudnnBackendDescriptor_t *s, sdxl_error *err)
{
    static const int64_t one[4] = {1, 1, 1, 1};
    cudnnBackendDescriptor_t row, col, keep, mask, masked;
    cudnnDataType_t f32 = CUDNN_DATA_FLOAT, boolean = CUDNN_DATA_BOOLEAN;
    SDXL_TRY(virtual_tensor(g, "row index", CUDNN_DATA_INT32, scores, &row, err));
    SDXL_TRY(virtual_tensor(g, "column index", CUDNN_DATA_INT32, scores, &col, err));
    SDXL_TRY(virtual_tensor(g, "causal mask", boolean, scores, &keep, err));
    SDXL_TRY(real_tensor(g, "mask value", SDPA_UID_MASK, f32, one, one, CUDA_ALIGNMENT_CAP, true,
                         &mask, err));
    SDXL_TRY(virtual_tensor(g, "masked scores", f32, scores, &masked, err));
    SDXL_TRY(pointwise_operation(g, "row index", CUDNN_POINTWISE_GEN_INDEX, f32, 2, *s, NULL, NULL,
                                 row, err));
    SDXL_TRY(pointwise_operation(g, "column index", CUDNN_POINTWISE_GEN_INDEX, f32, 3, *s, NULL,
                                 NULL, col, err));
    SDXL_TRY(pointwise_operation(g, "causal comparison", CUDNN_POINTWISE_CMP_GE, boolean, 0, row,
                                 col, NULL, keep, err));
    SDXL_TRY(pointwise_operation(g, "causal selection", CUDNN_POINTWISE_BINARY_SELECT, f32, 0, *s,
                                 mask, keep, masked, err));
    *s = masked;
    return SDXL_OK;
}

/* The operation graph of p->key (see the top). Its descriptors are p->dnn's. */
static sdxl_status sdpa_graph_build(cuda_backend *cb, sdpa_plan *p,
                                    cudnnBackendDescriptor_t *graph, sdxl_error *err)
{
    const sdpa_key *k = &p->key;
    cudnnDataType_t t = dnn_type((dtype)k->type), f32 = CUDNN_DATA_FLOAT;
    int64_t h = k->heads, d = k->d, tq = k->tq, tk = k->tk;
    const int64_t one[4] = {1, 1, 1, 1};
    const int64_t scores[4] = {1, h, tq, tk}, rows[4] = {1, h, tq, 1};
    const int64_t rows_strides[4] = {h * tq, tq, 1, 1};
    sdpa_graph g = {.p = p, .next_uid = SDPA_UID_VIRTUAL};
    cudnnBackendDescriptor_t q, kt, v, y, stats, scale, s, scaled, max, centred, e, sum, log_sum,
        probs;

    SDXL_TRY(real_tensor(&g, "q", SDPA_UID_Q, t, (int64_t[]){1, h, tq, d},
                         (int64_t[]){tq * k->ld_q, d, k->ld_q, 1}, k->align_q, false, &q, err));
    SDXL_TRY(real_tensor(&g, "k (transposed)", SDPA_UID_K, t, (int64_t[]){1, h, d, tk},
                         (int64_t[]){tk * k->ld_k, d, 1, k->ld_k}, k->align_k, false, &kt, err));
    SDXL_TRY(real_tensor(&g, "v", SDPA_UID_V, t, (int64_t[]){1, h, tk, d},
                         (int64_t[]){tk * k->ld_v, d, k->ld_v, 1}, k->align_v, false, &v, err));
    SDXL_TRY(real_tensor(&g, "y", SDPA_UID_Y, t, (int64_t[]){1, h, tq, d},
                         (int64_t[]){tq * k->ld_y, d, k->ld_y, 1}, k->align_y, false, &y, err));
    SDXL_TRY(real_tensor(&g, "softmax statistics", SDPA_UID_STATS, f32, rows, rows_strides,
                         CUDA_ALIGNMENT_CAP, false, &stats, err));
    SDXL_TRY(real_tensor(&g, "scale", SDPA_UID_SCALE, f32, one, one, CUDA_ALIGNMENT_CAP, true,
                         &scale, err));

    SDXL_TRY(virtual_tensor(&g, "scores", f32, scores, &s, err));
    SDXL_TRY(matmul_operation(&g, "scores product", q, kt, s, err));
    SDXL_TRY(virtual_tensor(&g, "scaled scores", f32, scores, &scaled, err));
    SDXL_TRY(pointwise_operation(&g, "scaling", CUDNN_POINTWISE_MUL, f32, 0, s, scale, NULL,
                                 scaled, err));
    s = scaled;
    if (k->causal)
        SDXL_TRY(causal_mask(&g, scores, &s, err));

    SDXL_TRY(virtual_tensor(&g, "row maxima", f32, rows, &max, err));
    SDXL_TRY(reduction_operation(&g, "row maximum", CUDNN_REDUCE_TENSOR_MAX, s, max, err));
    SDXL_TRY(virtual_tensor(&g, "centred scores", f32, scores, &centred, err));
    SDXL_TRY(pointwise_operation(&g, "centring", CUDNN_POINTWISE_SUB, f32, 0, s, max, NULL,
                                 centred, err));
    SDXL_TRY(virtual_tensor(&g, "exponentials", f32, scores, &e, err));
    SDXL_TRY(pointwise_operation(&g, "exponential", CUDNN_POINTWISE_EXP, f32, 0, centred, NULL,
                                 NULL, e, err));
    SDXL_TRY(virtual_tensor(&g, "row sums", f32, rows, &sum, err));
    SDXL_TRY(reduction_operation(&g, "row sum", CUDNN_REDUCE_TENSOR_ADD, e, sum, err));
    SDXL_TRY(virtual_tensor(&g, "log of row sums", f32, rows, &log_sum, err));
    SDXL_TRY(pointwise_operation(&g, "logarithm", CUDNN_POINTWISE_LOG, f32, 0, sum, NULL, NULL,
                                 log_sum, err));
    SDXL_TRY(pointwise_operation(&g, "statistics", CUDNN_POINTWISE_ADD, f32, 0, max, log_sum, NULL,
                                 stats, err));
    /* P in T: the second product's A operand must be of the input type. */
    SDXL_TRY(virtual_tensor(&g, "probabilities", t, scores, &probs, err));
    SDXL_TRY(pointwise_operation(&g, "normalisation", CUDNN_POINTWISE_DIV, f32, 0, e, sum, NULL,
                                 probs, err));
    SDXL_TRY(matmul_operation(&g, "output product", probs, v, y, err));

    return dnn_graph(cb, &p->dnn, g.ops, g.n_ops, "operation graph (attention)", graph, err);
}

static sdxl_status sdpa_plan_build(cuda_backend *cb, sdpa_plan *p, sdxl_error *err)
{
    const sdpa_key *k = &p->key;
    char what[192];
    snprintf(what, sizeof(what),
             "%s%s attention of %lld queries over %lld keys, %lld heads of %lld (row strides "
             "%lld/%lld/%lld/%lld, alignment %d/%d/%d/%d bytes)",
             k->causal ? "causal " : "", dtype_name((dtype)k->type), (long long)k->tq,
             (long long)k->tk, (long long)k->heads, (long long)k->d, (long long)k->ld_q,
             (long long)k->ld_k, (long long)k->ld_v, (long long)k->ld_y, k->align_q, k->align_k,
             k->align_v, k->align_y);
    p->scale = (float)(1.0 / sqrt((double)k->d));
    /* cudnn-frontend's choice: cuDNN before 9.10 prefers the lowest float for masked scores. */
    p->mask = cudnnGetVersion() >= 91000 ? -INFINITY : -FLT_MAX;
    double start = dnn_clock_ms();
    sdxl_error last;
    error_clear(&last);
    cudnnBackendDescriptor_t graph;
    sdxl_status st = sdpa_graph_build(cb, p, &graph, &last);
    int refused = 0;
    if (!st) {
        refused = dnn_plan_search(cb, &p->dnn, graph, false, &last);
        if (p->dnn.plan) {
            LOG_DEBUG("cuda backend: %s: attention through cuDNN, plan built in %.0f ms "
                      "(workspace %lld bytes)",
                      what, dnn_clock_ms() - start, (long long)p->dnn.workspace);
            return SDXL_OK;
        }
    } else if (st != SDXL_ERR_BACKEND) {
        return error_set(err, st, "%s", last.message);
    }
    if (!last.message[0])
        snprintf(last.message, sizeof(last.message),
                 "cuDNN proposed no engine, or only engines refused as nondeterministic or "
                 "reduced-precision (%d refused)",
                 refused);
    const char *reason = last.message;
    if (strncmp(reason, "cuda backend: ", 14) == 0)
        reason += 14;
    return error_set(err, SDXL_ERR_UNSUPPORTED,
                     "cuda backend: cuDNN's fused attention does not take a %s (with "
                     "SDXLD_CUDA_ATTENTION=flash our kernel runs it): %s",
                     what, reason);
}

/* The plan of *key, built on first use; a refused shape's plan holds the refusal. */
static sdxl_status sdpa_plan_get(cuda_backend *cb, const sdpa_key *key, sdpa_plan **out,
                                 sdxl_error *err)
{
    *out = cuda_plan_cache_find(&cb->sdpa_plans, key, sizeof(*key));
    if (*out)
        return SDXL_OK;
    sdpa_plan *p = calloc(1, sizeof(*p));
    if (!p)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "cuda backend: out of host memory");
    p->key = *key;
    sdxl_status st = sdpa_plan_build(cb, p, &p->refusal);
    if (st == SDXL_ERR_UNSUPPORTED) {
        dnn_plan_clear(&p->dnn);
        if (cb->attention != CUDA_ATTENTION_CUDNN)
            LOG_WARNING("%s; our kernel runs it instead", p->refusal.message);
        st = SDXL_OK;
    } else if (st) {
        error_set(err, st, "%s", p->refusal.message);
    }
    if (!st)
        st = cuda_plan_cache_add(&cb->sdpa_plans, p, err);
    if (st) {
        sdpa_plan_free(p);
        return st;
    }
    *out = p;
    return SDXL_OK;
}

sdxl_status cuda_sdpa_attention(cuda_backend *cb, const tensor *q, const tensor *k, const tensor *v,
                                int heads, bool causal, tensor *y, sdxl_error *err)
{
    size_t es = dtype_size(q->type);
    int64_t images = q->shape[0];
    size_t q_image = (size_t)(q->shape[1] * q->shape[2]) * es;
    size_t k_image = (size_t)(k->shape[1] * k->shape[2]) * es;
    size_t v_image = (size_t)(v->shape[1] * v->shape[2]) * es;
    size_t y_image = (size_t)(y->shape[1] * y->shape[2]) * es;
    bool batched = images > 1;
    sdpa_key key;
    memset(&key, 0, sizeof(key));
    key.type = (int32_t)q->type;
    key.causal = causal;
    key.align_q = cuda_alignment(q->data, batched ? q_image : 0);
    key.align_k = cuda_alignment(k->data, batched ? k_image : 0);
    key.align_v = cuda_alignment(v->data, batched ? v_image : 0);
    key.align_y = cuda_alignment(y->data, batched ? y_image : 0);
    key.tq = q->shape[1];
    key.tk = k->shape[1];
    key.heads = heads;
    key.d = q->shape[2] / heads;
    /* Tensors are dense: a row's stride is its width. */
    key.ld_q = q->shape[2];
    key.ld_k = k->shape[2];
    key.ld_v = v->shape[2];
    key.ld_y = y->shape[2];
    sdpa_plan *plan = NULL;
    SDXL_TRY(sdpa_plan_get(cb, &key, &plan, err));
    if (!plan->dnn.plan)
        return error_set(err, SDXL_ERR_UNSUPPORTED, "%s", plan->refusal.message);
    SDXL_TRY(cuda_buffer_reserve(cb, &cb->conv_workspace, (size_t)plan->dnn.workspace,
                                 "attention workspace", err));
    /* stats [1, H, Tq, 1] fp32: written by the engine, read by nobody. */
    SDXL_TRY(cuda_buffer_reserve(cb, &cb->scratch, (size_t)(heads * key.tq) * sizeof(float),
                                 "attention statistics", err));
    int64_t uids[7] = {SDPA_UID_Q,     SDPA_UID_K,     SDPA_UID_V,   SDPA_UID_Y,
                       SDPA_UID_STATS, SDPA_UID_SCALE, SDPA_UID_MASK};
    for (int64_t i = 0; i < images; i++) {
        void *ptrs[7] = {
            (unsigned char *)q->data + (size_t)i * q_image,
            (unsigned char *)k->data + (size_t)i * k_image,
            (unsigned char *)v->data + (size_t)i * v_image,
            (unsigned char *)y->data + (size_t)i * y_image,
            cb->scratch.data,
            &plan->scale,
            &plan->mask,
        };
        SDXL_TRY(dnn_plan_execute(cb, &plan->dnn, causal ? 7 : 6, uids, ptrs, "cuDNN attention",
                                  err));
    }
    return SDXL_OK;
}
