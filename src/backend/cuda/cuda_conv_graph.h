/*
 * cuda_conv_graph.h — what cuda_conv.c and cuda_conv_graph.c share: a convolution plan (its key,
 * the cuDNN descriptors it is made of) and the operation graph built for it.
 */
#ifndef SDXL_BACKEND_CUDA_CUDA_CONV_GRAPH_H
#define SDXL_BACKEND_CUDA_CUDA_CONV_GRAPH_H

#include "backend/cuda/cuda_dnn_plan.h"

/* The tensors' unique ids in the graph; x, w, y and b are the variant pack's. */
enum { CONV_UID_X = 'x', CONV_UID_W = 'w', CONV_UID_B = 'b', CONV_UID_Y = 'y', CONV_UID_ACC = 'a' };

/* Everything that decides the plan (one image). Zeroed before it is filled. */
typedef struct conv_key {
    int32_t type, align_x, align_w, align_y;
    int32_t bias, align_b; /* bias: 1 when the op has one (fused into the plan if cuDNN can) */
    int64_t h, w, cin, cout, kh, kw, ho, wo;
    int64_t stride, pad_top, pad_left, pad_bottom, pad_right;
} conv_key;

typedef struct conv_plan {
    conv_key key;
    bool fused; /* the plan adds the bias; otherwise the add kernel does, after it */
    dnn_plan dnn;
} conv_plan;

/* The operation graph of y = conv(x, w), or, fused, of y = conv(x, w) + bias, for p->key.
 * Its descriptors are added to p->dnn's (freed with the plan, also when this fails). */
sdxl_status cuda_conv_graph_build(cuda_backend *cb, conv_plan *p, bool fused,
                                  cudnnBackendDescriptor_t *graph, sdxl_error *err);

#endif /* SDXL_BACKEND_CUDA_CUDA_CONV_GRAPH_H */
