/*
 * backend.c — creating backends by name, and the op wrappers that check every argument
 * before a backend runs an op (see backend.h).
 *
 * The checks live here, once, so that every backend rejects the same mistakes with the same
 * message, and so that a planning pass (outputs without memory) validates a whole forward pass
 * without running anything.
 */
#include "backend/backend.h"

#include <math.h>
#include <string.h>

#include "backend/cpu/cpu_backend.h"
#ifdef SDXL_WITH_CUDA
#include "backend/cuda/cuda_backend.h"
#define BACKENDS_BUILT "cpu, cuda"
#else
#define BACKENDS_BUILT "cpu"
#endif

backend_params backend_default_params(void)
{
    backend_params p;
    memset(&p, 0, sizeof(p));
    p.n_threads = 0;
    p.device = 0;
    p.compute_type = DTYPE_F32;
    return p;
}

sdxl_status backend_create(const char *name, const backend_params *params, backend **out,
                           sdxl_error *err)
{
    *out = NULL;
    backend_params p = params ? *params : backend_default_params();
    if (name && strcmp(name, "cpu") == 0)
        return cpu_backend_create(&p, out, err);
#ifdef SDXL_WITH_CUDA
    if (name && strcmp(name, "cuda") == 0)
        return cuda_backend_create(&p, out, err);
#endif
    return error_set(err, SDXL_ERR_UNSUPPORTED,
                     "backend \"%s\" is not available in this build; available: " BACKENDS_BUILT,
                     name ? name : "(null)");
}

void backend_destroy(backend *b)
{
    if (b)
        b->ops->destroy(b);
}

const char *backend_name(const backend *b)
{
    return b->ops->name;
}

dtype backend_compute_type(const backend *b)
{
    return b->params.compute_type;
}

/* ---- argument checks ------------------------------------------------------------------- */

#define SHAPE(t, buf) tensor_shape_str((t), (buf), sizeof(buf))

static bool is_float_type(dtype t)
{
    return t == DTYPE_F32 || t == DTYPE_F16 || t == DTYPE_BF16;
}

/* A well-formed activation of the given type. */
static sdxl_status check_activation(const char *op, const char *name, const tensor *t,
                                    dtype type, sdxl_error *err)
{
    if (!t)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "%s: %s is missing", op, name);
    if (t->ndim < 1 || t->ndim > TENSOR_MAX_DIMS)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "%s: %s has %d dimensions (1..%d)", op,
                         name, t->ndim, TENSOR_MAX_DIMS);
    if (t->kind != TENSOR_ACTIVATION)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: %s is a weight (kind %d); this argument takes an activation", op,
                         name, (int)t->kind);
    if (t->type != type)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "%s: %s is %s; expected %s", op, name,
                         dtype_name(t->type), dtype_name(type));
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] < 1)
            return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                             "%s: %s has dimension %d of size %lld", op, name, i,
                             (long long)t->shape[i]);
    return SDXL_OK;
}

static sdxl_status check_float_act(const backend *b, const char *op, const char *name,
                                   const tensor *t, sdxl_error *err)
{
    return check_activation(op, name, t, b->params.compute_type, err);
}

/* The first operand of an element-wise op that takes F32 too (backend.h): F32 or the compute
 * type; the op's other operands must then have its type (check_activation with t->type). */
static sdxl_status check_ew_act(const backend *b, const char *op, const char *name,
                                const tensor *t, sdxl_error *err)
{
    if (t && t->type != DTYPE_F32 && t->type != b->params.compute_type)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: %s is %s; this op takes F32 or the backend's compute type %s", op,
                         name, dtype_name(t->type), dtype_name(b->params.compute_type));
    return check_activation(op, name, t, t ? t->type : DTYPE_F32, err);
}

static sdxl_status check_weight(const backend *b, const char *op, const char *name,
                                const tensor *t, tensor_kind kind, int ndim, sdxl_error *err)
{
    static const char *const kind_names[] = {"an activation", "a LINEAR weight",
                                             "a CONV weight", "a VECTOR weight",
                                             "an EMBEDDING weight"};
    if (!t)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "%s: %s is missing", op, name);
    if (t->kind != kind) {
        int k = (int)t->kind;
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "%s: %s is %s; expected %s", op, name,
                         k >= 0 && k <= 4 ? kind_names[k] : "of an unknown kind",
                         kind_names[kind]);
    }
    if (t->ndim != ndim || !t->data)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: %s is not an uploaded weight of %d dimensions", op, name, ndim);
    if (t->type != b->params.compute_type)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: %s is %s but the backend computes in %s (uploaded by another "
                         "backend?)",
                         op, name, dtype_name(t->type), dtype_name(b->params.compute_type));
    return SDXL_OK;
}

/* An optional VECTOR weight of n elements. */
static sdxl_status check_vector(const backend *b, const char *op, const char *name,
                                const tensor *t, int64_t n, sdxl_error *err)
{
    sdxl_status st = check_weight(b, op, name, t, TENSOR_WEIGHT_VECTOR, 1, err);
    if (st)
        return st;
    if (t->shape[0] != n)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "%s: %s has %lld elements; expected %lld",
                         op, name, (long long)t->shape[0], (long long)n);
    return SDXL_OK;
}

static sdxl_status check_same_shape(const char *op, const char *an, const tensor *a,
                                    const char *bn, const tensor *t, sdxl_error *err)
{
    char b1[96], b2[96];
    if (!tensor_same_shape(a, t))
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "%s: %s %s and %s %s differ in shape",
                         op, an, SHAPE(a, b1), bn, SHAPE(t, b2));
    return SDXL_OK;
}

static bool ranges_overlap(const tensor *a, const tensor *t)
{
    if (!a->data || !t->data)
        return false;
    const unsigned char *a0 = a->data, *t0 = t->data;
    return a0 < t0 + tensor_nbytes(t) && t0 < a0 + tensor_nbytes(a);
}

/* Output y must not overlap input x at all (not in place). */
static sdxl_status check_disjoint(const char *op, const char *yn, const tensor *y,
                                  const char *xn, const tensor *x, sdxl_error *err)
{
    if (ranges_overlap(x, y))
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: output %s overlaps input %s; this op cannot run in place", op, yn,
                         xn);
    return SDXL_OK;
}

/* Output y may be exactly input x (in place) but must not partly overlap it. */
static sdxl_status check_in_place(const char *op, const char *yn, const tensor *y,
                                  const char *xn, const tensor *x, sdxl_error *err)
{
    if (ranges_overlap(x, y) && !(x->data == y->data && tensor_nbytes(x) == tensor_nbytes(y)))
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: output %s partly overlaps input %s; use the same tensor or "
                         "separate memory",
                         op, yn, xn);
    return SDXL_OK;
}

/* Whether the op should run: false for a planned output (shape check only). A real output
 * with a planned input is a mix-up of arenas. */
static sdxl_status check_memory(const char *op, const tensor *y, const tensor *const *in,
                                int n_in, bool *run, sdxl_error *err)
{
    *run = y->data != NULL;
    if (!*run)
        return SDXL_OK;
    for (int i = 0; i < n_in; i++)
        if (in[i] && !in[i]->data)
            return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                             "%s: input %d has no memory (planned) but the output has; "
                             "allocate both from the same real arena",
                             op, i);
    return SDXL_OK;
}

#define RUN_OR_PLAN(op, y, ...)                                                               \
    do {                                                                                      \
        bool run_;                                                                            \
        const tensor *const in_[] = {__VA_ARGS__};                                            \
        sdxl_status st_ = check_memory(op, y, in_, (int)(sizeof(in_) / sizeof(in_[0])), &run_, \
                                       err);                                                  \
        if (st_ || !run_)                                                                     \
            return st_;                                                                       \
    } while (0)

/* ---- memory ---------------------------------------------------------------------------- */

sdxl_status backend_buffer_alloc(backend *b, size_t bytes, void **out, sdxl_error *err)
{
    *out = NULL;
    return b->ops->buffer_alloc(b, bytes ? bytes : 1, out, err);
}

void backend_buffer_free(backend *b, void *buffer)
{
    if (buffer)
        b->ops->buffer_free(b, buffer);
}

sdxl_status backend_weight_upload(backend *b, tensor_kind kind, int ndim, const int64_t *shape,
                                  dtype src_type, const void *src, tensor *out, sdxl_error *err)
{
    static const int kind_ndim[] = {0, 2, 4, 1, 2};
    memset(out, 0, sizeof(*out));
    if ((int)kind < TENSOR_WEIGHT_LINEAR || (int)kind > TENSOR_WEIGHT_EMBEDDING)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "weight upload: kind %d is not a weight kind", (int)kind);
    if (ndim != kind_ndim[kind])
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "weight upload: a weight of kind %d has %d dimensions, not %d",
                         (int)kind, kind_ndim[kind], ndim);
    if (!(is_float_type(src_type) || src_type == DTYPE_F64))
        return error_set(err, SDXL_ERR_UNSUPPORTED,
                         "weight upload: source type %s is not a float type (F32, F16, BF16, F64)",
                         dtype_name(src_type));
    if (!src)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "weight upload: no source data");
    tensor t;
    memset(&t, 0, sizeof(t));
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 1 || shape[i] > (INT64_MAX / 16) / n)
            return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                             "weight upload: dimension %d has a bad size %lld", i,
                             (long long)shape[i]);
        n *= shape[i];
        t.shape[i] = shape[i];
    }
    t.kind = kind;
    t.ndim = ndim;
    t.type = b->params.compute_type;
    SDXL_TRY(b->ops->weight_upload(b, &t, src_type, src, err));
    *out = t;
    return SDXL_OK;
}

void backend_weight_free(backend *b, tensor *t)
{
    if (t->data)
        b->ops->weight_free(b, t);
    memset(t, 0, sizeof(*t));
}

static sdxl_status check_host_type(const char *op, const tensor *t, dtype host_type,
                                   size_t count, sdxl_error *err)
{
    char buf[96];
    if (t->kind != TENSOR_ACTIVATION)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: %s is a weight; only activations are copied to and from the host",
                         op, SHAPE(t, buf));
    if (host_type != t->type && !(host_type == DTYPE_F32 && is_float_type(t->type)))
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: host data is %s but the tensor is %s; pass %s (or F32 for a "
                         "float tensor)",
                         op, dtype_name(host_type), dtype_name(t->type), dtype_name(t->type));
    if (count != (size_t)tensor_numel(t))
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: %zu host elements for tensor %s of %lld elements", op, count,
                         SHAPE(t, buf), (long long)tensor_numel(t));
    return SDXL_OK;
}

/* Host copies and waits cannot be part of a recorded graph (see backend_record_begin). */
static sdxl_status check_not_recording(const backend *b, const char *what, sdxl_error *err)
{
    if (!b->recording)
        return SDXL_OK;
    return error_set(err, SDXL_ERR_UNSUPPORTED,
                     "%s: the %s backend is recording a graph, which cannot hold host copies or "
                     "waits; do them before backend_record_begin or after backend_record_end",
                     what, b->ops->name);
}

sdxl_status backend_tensor_write(backend *b, tensor *t, dtype host_type, const void *src,
                                 size_t count, sdxl_error *err)
{
    SDXL_TRY(check_host_type("tensor write", t, host_type, count, err));
    SDXL_TRY(check_not_recording(b, "tensor write", err));
    if (!t->data)
        return SDXL_OK;
    return b->ops->tensor_write(b, t, host_type, src, err);
}

sdxl_status backend_tensor_read(backend *b, const tensor *t, dtype host_type, void *dst,
                                size_t count, sdxl_error *err)
{
    SDXL_TRY(check_host_type("tensor read", t, host_type, count, err));
    SDXL_TRY(check_not_recording(b, "tensor read", err));
    if (!t->data)
        return SDXL_OK;
    return b->ops->tensor_read(b, t, host_type, dst, err);
}

sdxl_status backend_synchronize(backend *b, sdxl_error *err)
{
    SDXL_TRY(check_not_recording(b, "synchronize", err));
    return b->ops->synchronize(b, err);
}

sdxl_status backend_wait_for(backend *b, backend *other, sdxl_error *err)
{
    if (other->ops != b->ops || other->params.device != b->params.device)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "wait_for: the %s backend on device %d cannot wait for the %s backend "
                         "on device %d; only backends of one kind on one device share work",
                         b->ops->name, b->params.device, other->ops->name,
                         other->params.device);
    SDXL_TRY(check_not_recording(b, "wait_for", err));
    SDXL_TRY(check_not_recording(other, "wait_for", err));
    if (b == other)
        return SDXL_OK;
    return b->ops->wait_for(b, other, err);
}

/* ---- operations ------------------------------------------------------------------------ */

/* The operands of a linear product: x [..., K] and y activations; w a LINEAR [G·N, K] of
 * `groups` G weights stacked along the output dimension; bias VECTOR [G·N] or NULL. Sets *n. */
static sdxl_status check_linear_operands(const backend *b, const char *op, const tensor *x,
                                         const tensor *w, const tensor *bias, int groups,
                                         const tensor *y, int64_t *n, sdxl_error *err)
{
    char b1[96], b2[96];
    SDXL_TRY(check_float_act(b, op, "x", x, err));
    SDXL_TRY(check_float_act(b, op, "y", y, err));
    SDXL_TRY(check_weight(b, op, "w", w, TENSOR_WEIGHT_LINEAR, 2, err));
    if (groups < 1 || w->shape[0] % groups != 0)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: %d groups do not split the weight %s into equal stacked weights",
                         op, groups, SHAPE(w, b1));
    if (bias)
        SDXL_TRY(check_vector(b, op, "bias", bias, w->shape[0], err));
    if (tensor_last_dim(x) != w->shape[1])
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: x %s has %lld features but the weight %s takes %lld", op,
                         SHAPE(x, b1), (long long)tensor_last_dim(x), SHAPE(w, b2),
                         (long long)w->shape[1]);
    *n = w->shape[0] / groups;
    return SDXL_OK;
}

/* Whether y is [outer..., x's leading dimensions..., n]: `outer` dimensions of its own first. */
static bool linear_output_fits(const tensor *x, const tensor *y, int outer, int64_t n)
{
    bool ok = y->ndim == x->ndim + outer && tensor_last_dim(y) == n;
    for (int i = 0; ok && i + 1 < x->ndim; i++)
        ok = y->shape[outer + i] == x->shape[i];
    return ok;
}

static sdxl_status linear_output_error(const char *op, const tensor *x, const tensor *w,
                                       const tensor *y, const char *expected, int64_t n,
                                       sdxl_error *err)
{
    char b1[96], b2[96], b3[96];
    return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                     "%s: y is %s; expected %sx's leading dimensions and %lld features "
                     "(x %s, w %s)",
                     op, SHAPE(y, b1), expected, (long long)n, SHAPE(x, b2), SHAPE(w, b3));
}

sdxl_status backend_linear(backend *b, const tensor *x, const tensor *w, const tensor *bias,
                           backend_act act, tensor *y, sdxl_error *err)
{
    const char *op = "linear";
    int64_t n = 0;
    SDXL_TRY(check_linear_operands(b, op, x, w, bias, 1, y, &n, err));
    if ((int)act < BACKEND_ACT_NONE || (int)act > BACKEND_ACT_SILU)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "%s: unknown activation %d", op,
                         (int)act);
    if (!linear_output_fits(x, y, 0, n))
        return linear_output_error(op, x, w, y, "", n, err);
    SDXL_TRY(check_disjoint(op, "y", y, "x", x, err));
    RUN_OR_PLAN(op, y, x);
    return b->ops->linear(b, x, w, bias, act, y, err);
}

sdxl_status backend_linear_add(backend *b, const tensor *x, const tensor *w, const tensor *bias,
                               tensor *y, sdxl_error *err)
{
    const char *op = "linear_add";
    int64_t n = 0;
    SDXL_TRY(check_linear_operands(b, op, x, w, bias, 1, y, &n, err));
    if (!linear_output_fits(x, y, 0, n))
        return linear_output_error(op, x, w, y, "", n, err);
    SDXL_TRY(check_disjoint(op, "y", y, "x", x, err));
    RUN_OR_PLAN(op, y, x, y);
    return b->ops->linear_add(b, x, w, bias, y, err);
}

sdxl_status backend_linear_groups(backend *b, const tensor *x, const tensor *w,
                                  const tensor *bias, int groups, tensor *y, sdxl_error *err)
{
    const char *op = "linear_groups";
    int64_t n = 0;
    SDXL_TRY(check_linear_operands(b, op, x, w, bias, groups, y, &n, err));
    if (!linear_output_fits(x, y, 1, n) || y->shape[0] != groups)
        return linear_output_error(op, x, w, y, "[groups] then ", n, err);
    SDXL_TRY(check_disjoint(op, "y", y, "x", x, err));
    RUN_OR_PLAN(op, y, x);
    return b->ops->linear_groups(b, x, w, bias, groups, y, err);
}

sdxl_status backend_matmul(backend *b, const tensor *a, const tensor *bm, bool trans_b,
                           float alpha, tensor *c, sdxl_error *err)
{
    const char *op = "matmul";
    char b1[96], b2[96], b3[96];
    SDXL_TRY(check_float_act(b, op, "a", a, err));
    SDXL_TRY(check_float_act(b, op, "b", bm, err));
    SDXL_TRY(check_float_act(b, op, "c", c, err));
    if (a->ndim != 3 || bm->ndim != 3 || c->ndim != 3)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: a, b and c must be 3-D [batch, rows, cols]; got %s, %s, %s", op,
                         SHAPE(a, b1), SHAPE(bm, b2), SHAPE(c, b3));
    int64_t batch = a->shape[0], m = a->shape[1], k = a->shape[2];
    int64_t bk = trans_b ? bm->shape[2] : bm->shape[1];
    int64_t n = trans_b ? bm->shape[1] : bm->shape[2];
    if (bm->shape[0] != batch || bk != k || c->shape[0] != batch || c->shape[1] != m ||
        c->shape[2] != n)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: shapes do not chain: a %s, b %s%s, c %s (a [B, M, K], b [B, K, "
                         "N] or transposed [B, N, K], c [B, M, N])",
                         op, SHAPE(a, b1), SHAPE(bm, b2), trans_b ? " (transposed)" : "",
                         SHAPE(c, b3));
    SDXL_TRY(check_disjoint(op, "c", c, "a", a, err));
    SDXL_TRY(check_disjoint(op, "c", c, "b", bm, err));
    RUN_OR_PLAN(op, c, a, bm);
    return b->ops->matmul(b, a, bm, trans_b, alpha, c, err);
}

sdxl_status backend_conv2d(backend *b, const tensor *x, const tensor *w, const tensor *bias,
                           const conv2d_params *p, tensor *y, sdxl_error *err)
{
    const char *op = "conv2d";
    char b1[96], b2[96], b3[96];
    SDXL_TRY(check_float_act(b, op, "x", x, err));
    SDXL_TRY(check_float_act(b, op, "y", y, err));
    SDXL_TRY(check_weight(b, op, "w", w, TENSOR_WEIGHT_CONV, 4, err));
    if (!p)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "%s: parameters are missing", op);
    int64_t cout = w->shape[0], cin = w->shape[1], kh = w->shape[2], kw = w->shape[3];
    if (bias)
        SDXL_TRY(check_vector(b, op, "bias", bias, cout, err));
    if (p->stride < 1 || p->pad_top < 0 || p->pad_left < 0 || p->pad_bottom < 0 ||
        p->pad_right < 0 || p->pad_top >= kh || p->pad_bottom >= kh || p->pad_left >= kw ||
        p->pad_right >= kw)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: stride %d and padding (top %d, left %d, bottom %d, right %d) are "
                         "not valid for a %lldx%lld kernel (stride >= 1, 0 <= padding < kernel)",
                         op, p->stride, p->pad_top, p->pad_left, p->pad_bottom, p->pad_right,
                         (long long)kh, (long long)kw);
    if (x->ndim != 4 || x->shape[3] != cin)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: x %s must be [N, H, W, Cin] with Cin = %lld (weight %s)", op,
                         SHAPE(x, b1), (long long)cin, SHAPE(w, b2));
    int64_t hp = x->shape[1] + p->pad_top + p->pad_bottom;
    int64_t wp = x->shape[2] + p->pad_left + p->pad_right;
    if (hp < kh || wp < kw)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: input %s with its padding is smaller than the %lldx%lld kernel", op,
                         SHAPE(x, b1), (long long)kh, (long long)kw);
    int64_t ho = (hp - kh) / p->stride + 1, wo = (wp - kw) / p->stride + 1;
    if (y->ndim != 4 || y->shape[0] != x->shape[0] || y->shape[1] != ho || y->shape[2] != wo ||
        y->shape[3] != cout)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: y is %s; expected [%lld, %lld, %lld, %lld] (x %s, w %s, stride %d)",
                         op, SHAPE(y, b1), (long long)x->shape[0], (long long)ho, (long long)wo,
                         (long long)cout, SHAPE(x, b2), SHAPE(w, b3), p->stride);
    SDXL_TRY(check_disjoint(op, "y", y, "x", x, err));
    RUN_OR_PLAN(op, y, x);
    return b->ops->conv2d(b, x, w, bias, p, y, err);
}

sdxl_status backend_group_norm(backend *b, const tensor *x, int groups, float eps,
                               const tensor *gamma, const tensor *beta, bool silu, tensor *y,
                               sdxl_error *err)
{
    const char *op = "group_norm";
    char b1[96];
    SDXL_TRY(check_float_act(b, op, "x", x, err));
    SDXL_TRY(check_float_act(b, op, "y", y, err));
    SDXL_TRY(check_same_shape(op, "x", x, "y", y, err));
    int64_t c = tensor_last_dim(x);
    if (x->ndim < 2)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: x %s must be [N, ..., C] with at least 2 dimensions", op,
                         SHAPE(x, b1));
    if (groups < 1 || c % groups != 0)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: %d groups do not divide %lld channels (x %s)", op, groups,
                         (long long)c, SHAPE(x, b1));
    if (!(eps > 0.0f))
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "%s: eps must be > 0", op);
    SDXL_TRY(check_vector(b, op, "gamma", gamma, c, err));
    SDXL_TRY(check_vector(b, op, "beta", beta, c, err));
    SDXL_TRY(check_in_place(op, "y", y, "x", x, err));
    RUN_OR_PLAN(op, y, x);
    return b->ops->group_norm(b, x, groups, eps, gamma, beta, silu, y, err);
}

sdxl_status backend_layer_norm(backend *b, const tensor *x, float eps, const tensor *gamma,
                               const tensor *beta, tensor *y, sdxl_error *err)
{
    const char *op = "layer_norm";
    SDXL_TRY(check_float_act(b, op, "x", x, err));
    SDXL_TRY(check_float_act(b, op, "y", y, err));
    SDXL_TRY(check_same_shape(op, "x", x, "y", y, err));
    if (!(eps > 0.0f))
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "%s: eps must be > 0", op);
    SDXL_TRY(check_vector(b, op, "gamma", gamma, tensor_last_dim(x), err));
    SDXL_TRY(check_vector(b, op, "beta", beta, tensor_last_dim(x), err));
    SDXL_TRY(check_in_place(op, "y", y, "x", x, err));
    RUN_OR_PLAN(op, y, x);
    return b->ops->layer_norm(b, x, eps, gamma, beta, y, err);
}

sdxl_status backend_softmax(backend *b, const tensor *x, tensor *y, sdxl_error *err)
{
    const char *op = "softmax";
    SDXL_TRY(check_float_act(b, op, "x", x, err));
    SDXL_TRY(check_float_act(b, op, "y", y, err));
    SDXL_TRY(check_same_shape(op, "x", x, "y", y, err));
    SDXL_TRY(check_in_place(op, "y", y, "x", x, err));
    RUN_OR_PLAN(op, y, x);
    return b->ops->softmax(b, x, y, err);
}

sdxl_status backend_attention(backend *b, const tensor *q, const tensor *k, const tensor *v,
                              int heads, bool causal, tensor *y, sdxl_error *err)
{
    const char *op = "attention";
    char b1[96], b2[96], b3[96];
    SDXL_TRY(check_float_act(b, op, "q", q, err));
    SDXL_TRY(check_float_act(b, op, "k", k, err));
    SDXL_TRY(check_float_act(b, op, "v", v, err));
    SDXL_TRY(check_float_act(b, op, "y", y, err));
    if (q->ndim != 3 || k->ndim != 3 || v->ndim != 3)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: q %s, k %s, v %s must be 3-D [B, T, heads*D]", op, SHAPE(q, b1),
                         SHAPE(k, b2), SHAPE(v, b3));
    int64_t width = q->shape[2];
    if (!tensor_same_shape(k, v) || k->shape[0] != q->shape[0] || k->shape[2] != width)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: k %s and v %s must both be [%lld, Tk, %lld] to match q %s", op,
                         SHAPE(k, b1), SHAPE(v, b2), (long long)q->shape[0], (long long)width,
                         SHAPE(q, b3));
    SDXL_TRY(check_same_shape(op, "q", q, "y", y, err));
    if (heads < 1 || width % heads != 0 || width / heads > 512)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: %d heads do not split width %lld into heads of at most 512", op,
                         heads, (long long)width);
    if (causal && k->shape[1] != q->shape[1])
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: a causal mask needs as many keys as queries (q %s, k %s)", op,
                         SHAPE(q, b1), SHAPE(k, b2));
    SDXL_TRY(check_disjoint(op, "y", y, "q", q, err));
    SDXL_TRY(check_disjoint(op, "y", y, "k", k, err));
    SDXL_TRY(check_disjoint(op, "y", y, "v", v, err));
    RUN_OR_PLAN(op, y, q, k, v);
    return b->ops->attention(b, q, k, v, heads, causal, y, err);
}

sdxl_status backend_activation(backend *b, backend_act act, const tensor *x, tensor *y,
                               sdxl_error *err)
{
    const char *op = "activation";
    SDXL_TRY(check_float_act(b, op, "x", x, err));
    SDXL_TRY(check_float_act(b, op, "y", y, err));
    SDXL_TRY(check_same_shape(op, "x", x, "y", y, err));
    if ((int)act < BACKEND_ACT_GELU || (int)act > BACKEND_ACT_SILU)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: %d is not gelu, quick_gelu or silu", op, (int)act);
    SDXL_TRY(check_in_place(op, "y", y, "x", x, err));
    RUN_OR_PLAN(op, y, x);
    return b->ops->unary(b, (backend_unary_op)act, x, y, err);
}

sdxl_status backend_gelu(backend *b, const tensor *x, tensor *y, sdxl_error *err)
{
    return backend_activation(b, BACKEND_ACT_GELU, x, y, err);
}

sdxl_status backend_quick_gelu(backend *b, const tensor *x, tensor *y, sdxl_error *err)
{
    return backend_activation(b, BACKEND_ACT_QUICK_GELU, x, y, err);
}

sdxl_status backend_silu(backend *b, const tensor *x, tensor *y, sdxl_error *err)
{
    return backend_activation(b, BACKEND_ACT_SILU, x, y, err);
}

sdxl_status backend_geglu(backend *b, const tensor *x, tensor *y, sdxl_error *err)
{
    const char *op = "geglu";
    char b1[96], b2[96];
    SDXL_TRY(check_float_act(b, op, "x", x, err));
    SDXL_TRY(check_float_act(b, op, "y", y, err));
    bool ok = x->ndim == y->ndim && tensor_last_dim(x) == 2 * tensor_last_dim(y);
    for (int i = 0; ok && i + 1 < x->ndim; i++)
        ok = x->shape[i] == y->shape[i];
    if (!ok)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: x %s must be y %s with the last dimension doubled", op,
                         SHAPE(x, b1), SHAPE(y, b2));
    SDXL_TRY(check_disjoint(op, "y", y, "x", x, err));
    RUN_OR_PLAN(op, y, x);
    return b->ops->geglu(b, x, y, err);
}

/* z is x's shape or x's trailing dimensions. */
static sdxl_status check_broadcast(const char *op, const tensor *x, const tensor *z,
                                   sdxl_error *err)
{
    char b1[96], b2[96];
    bool ok = z->ndim <= x->ndim;
    for (int i = 0; ok && i < z->ndim; i++)
        ok = z->shape[z->ndim - 1 - i] == x->shape[x->ndim - 1 - i];
    if (!ok)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: z %s is neither x's shape %s nor its trailing dimensions", op,
                         SHAPE(z, b1), SHAPE(x, b2));
    return SDXL_OK;
}

static sdxl_status binary(backend *b, const char *op, backend_binary_op which, const tensor *x,
                          const tensor *z, tensor *y, sdxl_error *err)
{
    SDXL_TRY(check_ew_act(b, op, "x", x, err));
    SDXL_TRY(check_activation(op, "z", z, x->type, err));
    SDXL_TRY(check_activation(op, "y", y, x->type, err));
    SDXL_TRY(check_broadcast(op, x, z, err));
    SDXL_TRY(check_same_shape(op, "x", x, "y", y, err));
    SDXL_TRY(check_in_place(op, "y", y, "x", x, err));
    if (tensor_same_shape(x, z))
        SDXL_TRY(check_in_place(op, "y", y, "z", z, err));
    else
        SDXL_TRY(check_disjoint(op, "y", y, "z", z, err));
    RUN_OR_PLAN(op, y, x, z);
    return b->ops->binary(b, which, x, z, y, err);
}

sdxl_status backend_add(backend *b, const tensor *x, const tensor *z, tensor *y,
                        sdxl_error *err)
{
    return binary(b, "add", BACKEND_BINARY_ADD, x, z, y, err);
}

sdxl_status backend_mul(backend *b, const tensor *x, const tensor *z, tensor *y,
                        sdxl_error *err)
{
    return binary(b, "mul", BACKEND_BINARY_MUL, x, z, y, err);
}

sdxl_status backend_add_scaled(backend *b, float alpha, const tensor *x, float beta,
                               const tensor *z, tensor *y, sdxl_error *err)
{
    const char *op = "add_scaled";
    SDXL_TRY(check_ew_act(b, op, "x", x, err));
    SDXL_TRY(check_activation(op, "z", z, x->type, err));
    SDXL_TRY(check_activation(op, "y", y, x->type, err));
    SDXL_TRY(check_same_shape(op, "x", x, "z", z, err));
    SDXL_TRY(check_same_shape(op, "x", x, "y", y, err));
    SDXL_TRY(check_in_place(op, "y", y, "x", x, err));
    SDXL_TRY(check_in_place(op, "y", y, "z", z, err));
    RUN_OR_PLAN(op, y, x, z);
    return b->ops->add_scaled(b, alpha, x, beta, z, y, err);
}

/* y = f(x) element by element, F32 too: x and y of one type and shape, in place allowed. */
static sdxl_status check_ew_unary(const backend *b, const char *op, const tensor *x,
                                  const tensor *y, sdxl_error *err)
{
    SDXL_TRY(check_ew_act(b, op, "x", x, err));
    SDXL_TRY(check_activation(op, "y", y, x->type, err));
    SDXL_TRY(check_same_shape(op, "x", x, "y", y, err));
    return check_in_place(op, "y", y, "x", x, err);
}

sdxl_status backend_scale(backend *b, const tensor *x, float alpha, float beta, tensor *y,
                          sdxl_error *err)
{
    SDXL_TRY(check_ew_unary(b, "scale", x, y, err));
    RUN_OR_PLAN("scale", y, x);
    return b->ops->scale(b, x, alpha, beta, y, err);
}

sdxl_status backend_div_scalar(backend *b, const tensor *x, float divisor, tensor *y,
                               sdxl_error *err)
{
    const char *op = "div_scalar";
    SDXL_TRY(check_ew_unary(b, op, x, y, err));
    if (!isfinite(divisor) || divisor == 0.0f)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: divisor %g must be finite and nonzero", op, (double)divisor);
    RUN_OR_PLAN(op, y, x);
    return b->ops->div_scalar(b, x, divisor, y, err);
}

sdxl_status backend_clamp(backend *b, const tensor *x, float lo, float hi, tensor *y,
                          sdxl_error *err)
{
    const char *op = "clamp";
    SDXL_TRY(check_ew_unary(b, op, x, y, err));
    if (!(lo <= hi))
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: bounds [%g, %g] must be numbers with lo <= hi", op, (double)lo,
                         (double)hi);
    RUN_OR_PLAN(op, y, x);
    return b->ops->clamp(b, x, lo, hi, y, err);
}

sdxl_status backend_gaussian_sample(backend *b, const tensor *mean, const tensor *logvar,
                                    const tensor *noise, tensor *y, sdxl_error *err)
{
    const char *op = "gaussian_sample";
    SDXL_TRY(check_ew_act(b, op, "mean", mean, err));
    SDXL_TRY(check_activation(op, "logvar", logvar, mean->type, err));
    SDXL_TRY(check_activation(op, "noise", noise, mean->type, err));
    SDXL_TRY(check_activation(op, "y", y, mean->type, err));
    SDXL_TRY(check_same_shape(op, "mean", mean, "logvar", logvar, err));
    SDXL_TRY(check_same_shape(op, "mean", mean, "noise", noise, err));
    SDXL_TRY(check_same_shape(op, "mean", mean, "y", y, err));
    SDXL_TRY(check_in_place(op, "y", y, "mean", mean, err));
    SDXL_TRY(check_in_place(op, "y", y, "logvar", logvar, err));
    SDXL_TRY(check_in_place(op, "y", y, "noise", noise, err));
    RUN_OR_PLAN(op, y, mean, logvar, noise);
    return b->ops->gaussian_sample(b, mean, logvar, noise, y, err);
}

sdxl_status backend_convert(backend *b, const tensor *x, tensor *y, sdxl_error *err)
{
    const char *op = "convert";
    SDXL_TRY(check_activation(op, "x", x, x ? x->type : DTYPE_F32, err));
    if (!is_float_type(x->type))
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: x is %s; only float tensors (F32, F16, BF16) are converted", op,
                         dtype_name(x->type));
    SDXL_TRY(check_ew_act(b, op, "y", y, err));
    SDXL_TRY(check_same_shape(op, "x", x, "y", y, err));
    SDXL_TRY(check_disjoint(op, "y", y, "x", x, err));
    RUN_OR_PLAN(op, y, x);
    return b->ops->convert(b, x, y, err);
}

sdxl_status backend_normalize_pixels(backend *b, const tensor *x, tensor *y, sdxl_error *err)
{
    const char *op = "normalize_pixels";
    SDXL_TRY(check_activation(op, "x", x, DTYPE_U8, err));
    SDXL_TRY(check_ew_act(b, op, "y", y, err));
    SDXL_TRY(check_same_shape(op, "x", x, "y", y, err));
    SDXL_TRY(check_disjoint(op, "y", y, "x", x, err));
    RUN_OR_PLAN(op, y, x);
    return b->ops->normalize_pixels(b, x, y, err);
}

sdxl_status backend_denormalize_pixels(backend *b, const tensor *x, tensor *y, sdxl_error *err)
{
    const char *op = "denormalize_pixels";
    SDXL_TRY(check_ew_act(b, op, "x", x, err));
    SDXL_TRY(check_activation(op, "y", y, DTYPE_U8, err));
    SDXL_TRY(check_same_shape(op, "x", x, "y", y, err));
    SDXL_TRY(check_disjoint(op, "y", y, "x", x, err));
    RUN_OR_PLAN(op, y, x);
    return b->ops->denormalize_pixels(b, x, y, err);
}

sdxl_status backend_add_channels(backend *b, const tensor *x, const tensor *e, tensor *y,
                                 sdxl_error *err)
{
    const char *op = "add_channels";
    char b1[96], b2[96];
    SDXL_TRY(check_float_act(b, op, "x", x, err));
    SDXL_TRY(check_float_act(b, op, "e", e, err));
    SDXL_TRY(check_float_act(b, op, "y", y, err));
    SDXL_TRY(check_same_shape(op, "x", x, "y", y, err));
    if (x->ndim < 2 || e->ndim != 2 || e->shape[0] != x->shape[0] ||
        e->shape[1] != tensor_last_dim(x))
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: e %s must be [N, C] for x %s = [N, ..., C]", op, SHAPE(e, b1),
                         SHAPE(x, b2));
    SDXL_TRY(check_in_place(op, "y", y, "x", x, err));
    SDXL_TRY(check_disjoint(op, "y", y, "e", e, err));
    RUN_OR_PLAN(op, y, x, e);
    return b->ops->add_channels(b, x, e, y, err);
}

sdxl_status backend_upsample_nearest2x(backend *b, const tensor *x, tensor *y,
                                       sdxl_error *err)
{
    const char *op = "upsample_nearest2x";
    char b1[96], b2[96];
    SDXL_TRY(check_float_act(b, op, "x", x, err));
    SDXL_TRY(check_float_act(b, op, "y", y, err));
    if (x->ndim != 4 || y->ndim != 4 || y->shape[0] != x->shape[0] ||
        y->shape[1] != 2 * x->shape[1] || y->shape[2] != 2 * x->shape[2] ||
        y->shape[3] != x->shape[3])
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: x %s must be [N, H, W, C] and y %s [N, 2H, 2W, C]", op,
                         SHAPE(x, b1), SHAPE(y, b2));
    SDXL_TRY(check_disjoint(op, "y", y, "x", x, err));
    RUN_OR_PLAN(op, y, x);
    return b->ops->upsample_nearest2x(b, x, y, err);
}

sdxl_status backend_concat_channels(backend *b, const tensor *a, const tensor *c, tensor *y,
                                    sdxl_error *err)
{
    const char *op = "concat_channels";
    char b1[96], b2[96], b3[96];
    SDXL_TRY(check_float_act(b, op, "a", a, err));
    SDXL_TRY(check_float_act(b, op, "b", c, err));
    SDXL_TRY(check_float_act(b, op, "y", y, err));
    bool ok = a->ndim == c->ndim && a->ndim == y->ndim &&
              tensor_last_dim(y) == tensor_last_dim(a) + tensor_last_dim(c);
    for (int i = 0; ok && i + 1 < a->ndim; i++)
        ok = a->shape[i] == c->shape[i] && a->shape[i] == y->shape[i];
    if (!ok)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: a %s and b %s must share leading dimensions and y %s have the "
                         "sum of their channels",
                         op, SHAPE(a, b1), SHAPE(c, b2), SHAPE(y, b3));
    SDXL_TRY(check_disjoint(op, "y", y, "a", a, err));
    SDXL_TRY(check_disjoint(op, "y", y, "b", c, err));
    RUN_OR_PLAN(op, y, a, c);
    return b->ops->concat_channels(b, a, c, y, err);
}

sdxl_status backend_slice_channels(backend *b, const tensor *x, int64_t first, tensor *y,
                                   sdxl_error *err)
{
    const char *op = "slice_channels";
    char b1[96], b2[96];
    SDXL_TRY(check_float_act(b, op, "x", x, err));
    SDXL_TRY(check_float_act(b, op, "y", y, err));
    bool ok = x->ndim == y->ndim && first >= 0 &&
              first <= tensor_last_dim(x) - tensor_last_dim(y);
    for (int i = 0; ok && i + 1 < x->ndim; i++)
        ok = x->shape[i] == y->shape[i];
    if (!ok)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: channels %lld.. of y %s do not fit in x %s", op, (long long)first,
                         SHAPE(y, b1), SHAPE(x, b2));
    SDXL_TRY(check_disjoint(op, "y", y, "x", x, err));
    RUN_OR_PLAN(op, y, x);
    return b->ops->slice_channels(b, x, first, y, err);
}

sdxl_status backend_timestep_embedding(backend *b, const tensor *t, bool flip_sin_to_cos,
                                       float downscale_freq_shift, float max_period, tensor *y,
                                       sdxl_error *err)
{
    const char *op = "timestep_embedding";
    char b1[96], b2[96];
    SDXL_TRY(check_activation(op, "t", t, DTYPE_F32, err));
    SDXL_TRY(check_float_act(b, op, "y", y, err));
    if (t->ndim != 1 || y->ndim != 2 || y->shape[0] != t->shape[0] || y->shape[1] < 2)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: t %s must be [n] and y %s [n, dim] with dim >= 2", op,
                         SHAPE(t, b1), SHAPE(y, b2));
    if ((float)(y->shape[1] / 2) == downscale_freq_shift || !(max_period > 0.0f))
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: max_period must be > 0 and downscale_freq_shift != dim/2", op);
    SDXL_TRY(check_disjoint(op, "y", y, "t", t, err));
    RUN_OR_PLAN(op, y, t);
    return b->ops->timestep_embedding(b, t, flip_sin_to_cos, downscale_freq_shift, max_period,
                                      y, err);
}

sdxl_status backend_gather_rows(backend *b, const tensor *table, const tensor *ids, tensor *y,
                                sdxl_error *err)
{
    const char *op = "gather_rows";
    char b1[96], b2[96], b3[96];
    if (table && table->kind == TENSOR_WEIGHT_EMBEDDING)
        SDXL_TRY(check_weight(b, op, "table", table, TENSOR_WEIGHT_EMBEDDING, 2, err));
    else
        SDXL_TRY(check_float_act(b, op, "table", table, err));
    SDXL_TRY(check_activation(op, "ids", ids, DTYPE_I32, err));
    SDXL_TRY(check_float_act(b, op, "y", y, err));
    if (table->ndim != 2 || ids->ndim != 1 || y->ndim != 2 || y->shape[0] != ids->shape[0] ||
        y->shape[1] != table->shape[1])
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: table %s must be [R, C], ids %s [n] and y %s [n, C]", op,
                         SHAPE(table, b1), SHAPE(ids, b2), SHAPE(y, b3));
    SDXL_TRY(check_disjoint(op, "y", y, "table", table, err));
    SDXL_TRY(check_disjoint(op, "y", y, "ids", ids, err));
    RUN_OR_PLAN(op, y, table, ids);
    return b->ops->gather_rows(b, table, ids, y, err);
}

sdxl_status backend_copy(backend *b, const tensor *x, tensor *y, sdxl_error *err)
{
    const char *op = "copy";
    SDXL_TRY(check_activation(op, "x", x, x ? x->type : DTYPE_F32, err));
    SDXL_TRY(check_activation(op, "y", y, x->type, err));
    SDXL_TRY(check_same_shape(op, "x", x, "y", y, err));
    SDXL_TRY(check_disjoint(op, "y", y, "x", x, err));
    RUN_OR_PLAN(op, y, x);
    return b->ops->copy(b, x, y, err);
}

sdxl_status backend_zero(backend *b, tensor *y, sdxl_error *err)
{
    SDXL_TRY(check_activation("zero", "y", y, y ? y->type : DTYPE_F32, err));
    if (!y->data) /* planned */
        return SDXL_OK;
    return b->ops->zero(b, y, err);
}
