/*
 * cuda_dnn_plan.h — what every cuDNN graph (backend API) user of the cuda backend shares: the
 * descriptors a plan is made of and kept alive with, tensor descriptors, the operation graph,
 * the choice of an engine (heuristics, then the filter below) and running a plan.
 * Users: cuda_conv.c (with cuda_conv_graph.c) and cuda_sdpa.c.
 *
 * The engine filter: refused are engines that say they are nondeterministic, that accumulate
 * in less than fp32, FFT and Winograd engines (they change the arithmetic), and where exact
 * fp32 is asked for (F32, the checking type), engines that use tensor cores (TF32) or
 * down-convert inputs.
 */
#ifndef SDXL_BACKEND_CUDA_CUDA_DNN_PLAN_H
#define SDXL_BACKEND_CUDA_CUDA_DNN_PLAN_H

#include "backend/cuda/cuda_internal.h"

/* Enough for the largest graph: causal attention's 19 tensors and 26 operation descriptors, its
 * graph and the engine configuration. */
#define DNN_MAX_DESCRIPTORS 64

/* A failed cuDNN call returns its error, saying which step failed (`what`). */
#define DNN(call, what) SDXL_TRY(cuda_check_dnn((call), (what), err))

typedef struct dnn_plan {
    /* Every descriptor the plan was made from, kept alive as long as the plan. */
    cudnnBackendDescriptor_t desc[DNN_MAX_DESCRIPTORS];
    int n_desc;
    cudnnBackendDescriptor_t plan; /* NULL until an engine was found */
    int64_t workspace;             /* bytes of device workspace the plan needs */
} dnn_plan;

/* A tensor of a graph, 4-D. A virtual one lives only inside the fused kernel: it has no
 * address and no place in the variant pack. A by-value one is a scalar read from host memory
 * when the plan is launched. */
typedef struct dnn_tensor_spec {
    const char *name; /* for messages */
    int64_t uid;
    cudnnDataType_t type;
    int64_t dims[4], strides[4];
    int64_t alignment; /* bytes */
    bool is_virtual, by_value;
} dnn_tensor_spec;

cudnnDataType_t dnn_type(dtype t);

/* A descriptor owned by the plan (freed with it, whatever fails later). */
sdxl_status dnn_descriptor(dnn_plan *p, cudnnBackendDescriptorType_t type,
                           cudnnBackendDescriptor_t *out, sdxl_error *err);

/* A finalized tensor descriptor owned by the plan. */
sdxl_status dnn_tensor(dnn_plan *p, const dnn_tensor_spec *t, cudnnBackendDescriptor_t *out,
                       sdxl_error *err);

/* The finalized operation graph of ops, owned by the plan; `what` names it in messages. */
sdxl_status dnn_graph(cuda_backend *cb, dnn_plan *p, cudnnBackendDescriptor_t *ops, int64_t n_ops,
                      const char *what, cudnnBackendDescriptor_t *graph, sdxl_error *err);

/* Sets p->plan (and p->workspace) from the first engine configuration of cuDNN's heuristics
 * for the graph — mode A, then its fallback list — that the filter above accepts and that
 * finalizes. Leaves p->plan NULL when none does, with the last cuDNN failure in err (untouched
 * when every engine was refused by the filter). Returns how many the filter refused. */
int dnn_plan_search(cuda_backend *cb, dnn_plan *p, cudnnBackendDescriptor_t graph, bool exact_f32,
                    sdxl_error *err);

/* A monotonic clock, milliseconds: plan builds say in a debug line how long they took. */
double dnn_clock_ms(void);

/* Destroys the plan's descriptors: the plan is empty again, as before its build. */
void dnn_plan_clear(dnn_plan *p);

/* Queues the plan on the backend's stream with the n tensors' addresses (by uid) and the
 * workspace cb->conv_workspace, which must already hold p->workspace bytes; `what` names the
 * operation in messages. */
sdxl_status dnn_plan_execute(cuda_backend *cb, const dnn_plan *p, int64_t n, const int64_t *uids,
                             void **ptrs, const char *what, sdxl_error *err);

#endif /* SDXL_BACKEND_CUDA_CUDA_DNN_PLAN_H */
