/*
 * cuda_conv.c — 2-D convolutions, NHWC. 1x1 kernels at stride 1 are matrix products
 * (cuda_gemm.c); the rest go through cuDNN's graph API, the C "backend" API: an operation
 * graph (cuda_conv_graph.c), engine heuristics, execution plans, variant packs. That API takes
 * asymmetric padding, which the VAE encoder's downsamplers need.
 *
 * A plan is built for one image (N = 1) of a shape and kept; a batch runs it image by image,
 * so an image's bits never depend on the batch. The engine configurations come from cuDNN's
 * heuristics (mode A, then its fallback list); the first one that is acceptable and finalizes
 * is kept (cuda_dnn_plan.c, shared with cuDNN's attention). Refused: engines that say they are
 * nondeterministic, that accumulate in less than fp32, FFT and Winograd engines (they change
 * the arithmetic), and for F32 — the checking type, which must stay fp32 — engines that use
 * tensor cores (TF32) or down-convert inputs.
 *
 * A bias is added inside the plan where cuDNN can: the fused graph (convolution, then a
 * pointwise ADD of the bias on the fp32 result) writes y once and rounds conv + bias once.
 * cuDNN's engines for it are mostly compiled at run time (NVRTC) when the plan is built, which
 * makes that build slower, once per shape and process (a debug line per plan gives the time).
 * Where no engine passes the filter above for the fused graph of a shape (fusion engines want
 * channels that fill 16-byte vectors, for one), the plan is the convolution alone and the
 * element-wise add kernel adds the bias afterwards: one more pass over y, two roundings. The
 * plan records which of the two it is; a convolution without a bias has the plain graph.
 */
#include "backend/cuda/cuda_conv_graph.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"

void cuda_conv_weight_layout(const float *src, float *dst, int64_t cout, int64_t cin, int64_t kh,
                             int64_t kw)
{
    for (int64_t co = 0; co < cout; co++)
        for (int64_t ci = 0; ci < cin; ci++)
            for (int64_t ky = 0; ky < kh; ky++)
                for (int64_t kx = 0; kx < kw; kx++)
                    dst[((co * kh + ky) * kw + kx) * cin + ci] =
                        src[((co * cin + ci) * kh + ky) * kw + kx];
}

static void conv_plan_free(conv_plan *p)
{
    dnn_plan_clear(&p->dnn);
    free(p);
}

void cuda_conv_plans_free(cuda_backend *cb)
{
    for (size_t i = 0; i < cb->conv_plans.count; i++)
        conv_plan_free(cb->conv_plans.plans[i]);
    free(cb->conv_plans.plans);
    memset(&cb->conv_plans, 0, sizeof(cb->conv_plans));
}

/* Makes p->dnn.plan from the fused or the plain graph; leaves it NULL, with the last cuDNN
 * failure in err (cleared when every engine was refused by the filter), when no engine works. */
static void plan_search(cuda_backend *cb, conv_plan *p, bool fused, sdxl_error *err)
{
    cudnnBackendDescriptor_t graph;
    if (cuda_conv_graph_build(cb, p, fused, &graph, err))
        return;
    dnn_plan_search(cb, &p->dnn, graph, p->key.type == DTYPE_F32, err);
}

static sdxl_status conv_plan_build(cuda_backend *cb, conv_plan *p, sdxl_error *err)
{
    const conv_key *k = &p->key;
    char what[192];
    snprintf(what, sizeof(what),
             "%lldx%lld convolution of [1, %lld, %lld, %lld] to %lld channels (%s, stride %lld, "
             "alignment %d bytes)",
             (long long)k->kh, (long long)k->kw, (long long)k->h, (long long)k->w,
             (long long)k->cin, (long long)k->cout, dtype_name((dtype)k->type),
             (long long)k->stride, k->align_x);
    sdxl_error last;
    error_clear(&last);
    if (k->bias) {
        double start = dnn_clock_ms();
        plan_search(cb, p, true, &last);
        if (p->dnn.plan) {
            p->fused = true;
            LOG_DEBUG("cuda backend: %s: bias fused, plan built in %.0f ms", what,
                      dnn_clock_ms() - start);
            return SDXL_OK;
        }
        LOG_DEBUG("cuda backend: %s: bias not fused, added by a separate kernel (%s)", what,
                  last.message[0] ? last.message : "every engine refused by the filter");
        dnn_plan_clear(&p->dnn);
        error_clear(&last);
    }
    plan_search(cb, p, false, &last);
    if (p->dnn.plan)
        return SDXL_OK;
    return error_set(err, SDXL_ERR_BACKEND, "cuda backend: cuDNN has no usable engine for a %s%s%s",
                     what, last.message[0] ? "; last failure: " : "", last.message);
}

static sdxl_status conv_plan_get(cuda_backend *cb, const conv_key *key, conv_plan **out,
                                 sdxl_error *err)
{
    *out = cuda_plan_cache_find(&cb->conv_plans, key, sizeof(*key));
    if (*out)
        return SDXL_OK;
    conv_plan *p = calloc(1, sizeof(*p));
    if (!p)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "cuda backend: out of host memory");
    p->key = *key;
    sdxl_status st = conv_plan_build(cb, p, err);
    if (!st)
        st = cuda_plan_cache_add(&cb->conv_plans, p, err);
    if (st) {
        conv_plan_free(p);
        return st;
    }
    *out = p;
    return SDXL_OK;
}

/* Runs the plan on one image; bias is read only by a fused plan. */
static sdxl_status conv_execute(cuda_backend *cb, const conv_plan *p, void *x, void *w, void *bias,
                                void *y, sdxl_error *err)
{
    void *ptrs[4] = {x, w, y, bias};
    int64_t uids[4] = {CONV_UID_X, CONV_UID_W, CONV_UID_Y, CONV_UID_B};
    return dnn_plan_execute(cb, &p->dnn, p->fused ? 4 : 3, uids, ptrs, "convolution", err);
}

sdxl_status cuda_conv2d(backend *b, const tensor *x, const tensor *w, const tensor *bias,
                        const conv2d_params *p, tensor *y, sdxl_error *err)
{
    cuda_backend *cb = cuda_of(b);
    int64_t kh = w->shape[2], kw = w->shape[3];
    /* The checks in backend.c allow no padding on a 1x1 kernel: it is a matrix product. */
    if (kh == 1 && kw == 1 && p->stride == 1)
        return cuda_linear_rows(cb, x, w->data, w->shape[0], bias, BACKEND_ACT_NONE, y, err);

    size_t es = dtype_size(x->type);
    size_t x_image = (size_t)(x->shape[1] * x->shape[2] * x->shape[3]) * es;
    size_t y_image = (size_t)(y->shape[1] * y->shape[2] * y->shape[3]) * es;
    bool batched = x->shape[0] > 1;
    conv_key key;
    memset(&key, 0, sizeof(key));
    key.type = (int32_t)x->type;
    key.align_x = cuda_alignment(x->data, batched ? x_image : 0);
    key.align_w = cuda_alignment(w->data, 0);
    key.align_y = cuda_alignment(y->data, batched ? y_image : 0);
    key.bias = bias != NULL;
    key.align_b = bias ? cuda_alignment(bias->data, 0) : 0;
    key.h = x->shape[1];
    key.w = x->shape[2];
    key.cin = x->shape[3];
    key.cout = w->shape[0];
    key.kh = kh;
    key.kw = kw;
    key.ho = y->shape[1];
    key.wo = y->shape[2];
    key.stride = p->stride;
    key.pad_top = p->pad_top;
    key.pad_left = p->pad_left;
    key.pad_bottom = p->pad_bottom;
    key.pad_right = p->pad_right;
    conv_plan *plan = NULL;
    SDXL_TRY(conv_plan_get(cb, &key, &plan, err));
    SDXL_TRY(cuda_buffer_reserve(cb, &cb->conv_workspace, (size_t)plan->dnn.workspace,
                                 "convolution workspace", err));
    for (int64_t i = 0; i < x->shape[0]; i++)
        SDXL_TRY(conv_execute(cb, plan, (unsigned char *)x->data + (size_t)i * x_image, w->data,
                              bias ? bias->data : NULL,
                              (unsigned char *)y->data + (size_t)i * y_image, err));
    if (!bias || plan->fused)
        return SDXL_OK;
    return cuda_binary(b, BACKEND_BINARY_ADD, y, bias, y, err);
}
