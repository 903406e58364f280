/*
 * cuda_conv_graph.c — the cuDNN operation graph (C backend API) of one convolution plan, NHWC.
 * Plain: x, w -> convolution -> y. Fused: x, w -> convolution -> a virtual fp32 tensor (never
 * stored) -> pointwise ADD of the bias [1, Cout, 1, 1] -> y, so y is written once and conv +
 * bias is rounded to the compute type once. Which one a plan uses is cuda_conv.c's choice.
 */
#include "backend/cuda/cuda_conv_graph.h"

/* A tensor of dims [N, C, H, W] (cuDNN's order) laid out NHWC. */
static sdxl_status nhwc_tensor(conv_plan *p, const char *name, int64_t uid, cudnnDataType_t type,
                               const int64_t dims[4], int64_t alignment, bool is_virtual,
                               cudnnBackendDescriptor_t *out, sdxl_error *err)
{
    int64_t c = dims[1], h = dims[2], w = dims[3];
    dnn_tensor_spec t = {
        .name = name,
        .uid = uid,
        .type = type,
        .dims = {dims[0], c, h, w},
        .strides = {h * w * c, 1, w * c, c},
        .alignment = alignment,
        .is_virtual = is_virtual,
    };
    return dnn_tensor(&p->dnn, &t, out, err);
}

/* The convolution operation: out = conv(x, w), accumulated in fp32. */
static sdxl_status conv_operation(conv_plan *p, cudnnBackendDescriptor_t x,
                                  cudnnBackendDescriptor_t w, cudnnBackendDescriptor_t out,
                                  cudnnBackendDescriptor_t *op, sdxl_error *err)
{
    const conv_key *k = &p->key;
    cudnnBackendDescriptor_t conv;
    int64_t spatial = 2;
    cudnnDataType_t compute = CUDNN_DATA_FLOAT;
    cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION; /* torch's conv2d */
    int64_t pre[2] = {k->pad_top, k->pad_left}, post[2] = {k->pad_bottom, k->pad_right};
    int64_t dilation[2] = {1, 1}, stride[2] = {k->stride, k->stride};
    SDXL_TRY(dnn_descriptor(&p->dnn, CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR, &conv, err));
    DNN(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1,
                                 &spatial),
        "convolution dimensions");
    DNN(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1,
                                 &compute),
        "convolution compute type");
    DNN(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_CONV_MODE,
                                 CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode),
        "convolution mode");
    DNN(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2,
                                 pre),
        "convolution padding");
    DNN(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2,
                                 post),
        "convolution padding");
    DNN(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 2,
                                 dilation),
        "convolution dilation");
    DNN(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 2,
                                 stride),
        "convolution stride");
    DNN(cudnnBackendFinalize(conv), "convolution descriptor");

    float alpha = 1.0f, beta = 0.0f;
    SDXL_TRY(
        dnn_descriptor(&p->dnn, CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR, op, err));
    DNN(cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x),
        "convolution input");
    DNN(cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &w),
        "convolution weight");
    DNN(cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &out),
        "convolution output");
    DNN(cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &conv),
        "convolution operation");
    DNN(cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA,
                                 CUDNN_TYPE_FLOAT, 1, &alpha),
        "convolution alpha");
    DNN(cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA,
                                 CUDNN_TYPE_FLOAT, 1, &beta),
        "convolution beta");
    DNN(cudnnBackendFinalize(*op), "convolution operation");
    return SDXL_OK;
}

/* The bias operation: y = acc + bias, the bias [1, Cout, 1, 1] broadcast over the positions,
 * added in fp32. */
static sdxl_status bias_operation(conv_plan *p, cudnnBackendDescriptor_t acc,
                                  cudnnBackendDescriptor_t y, cudnnBackendDescriptor_t *op,
                                  sdxl_error *err)
{
    const conv_key *k = &p->key;
    cudnnBackendDescriptor_t bias, add;
    SDXL_TRY(nhwc_tensor(p, "bias", CONV_UID_B, dnn_type((dtype)k->type),
                         (int64_t[]){1, k->cout, 1, 1}, k->align_b, false, &bias, err));
    cudnnPointwiseMode_t mode = CUDNN_POINTWISE_ADD;
    cudnnDataType_t precision = CUDNN_DATA_FLOAT;
    SDXL_TRY(dnn_descriptor(&p->dnn, CUDNN_BACKEND_POINTWISE_DESCRIPTOR, &add, err));
    DNN(cudnnBackendSetAttribute(add, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1,
                                 &mode),
        "bias addition mode");
    DNN(cudnnBackendSetAttribute(add, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1,
                                 &precision),
        "bias addition precision");
    DNN(cudnnBackendFinalize(add), "bias addition descriptor");

    SDXL_TRY(dnn_descriptor(&p->dnn, CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, op, err));
    DNN(cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &add),
        "bias addition operation");
    DNN(cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &acc),
        "bias addition input");
    DNN(cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &bias),
        "bias addition bias");
    DNN(cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y),
        "bias addition output");
    DNN(cudnnBackendFinalize(*op), "bias addition operation");
    return SDXL_OK;
}

sdxl_status cuda_conv_graph_build(cuda_backend *cb, conv_plan *p, bool fused,
                                  cudnnBackendDescriptor_t *graph, sdxl_error *err)
{
    const conv_key *k = &p->key;
    cudnnDataType_t type = dnn_type((dtype)k->type);
    int64_t y_dims[4] = {1, k->cout, k->ho, k->wo};
    cudnnBackendDescriptor_t x, w, y, acc, ops[2];
    SDXL_TRY(nhwc_tensor(p, "input", CONV_UID_X, type, (int64_t[]){1, k->cin, k->h, k->w},
                         k->align_x, false, &x, err));
    SDXL_TRY(nhwc_tensor(p, "weight", CONV_UID_W, type, (int64_t[]){k->cout, k->cin, k->kh, k->kw},
                         k->align_w, false, &w, err));
    SDXL_TRY(nhwc_tensor(p, "output", CONV_UID_Y, type, y_dims, k->align_y, false, &y, err));
    int64_t n_ops = 1;
    if (fused) {
        SDXL_TRY(nhwc_tensor(p, "fp32 convolution result", CONV_UID_ACC, CUDNN_DATA_FLOAT, y_dims,
                             CUDA_ALIGNMENT_CAP, true, &acc, err));
        SDXL_TRY(conv_operation(p, x, w, acc, &ops[0], err));
        SDXL_TRY(bias_operation(p, acc, y, &ops[1], err));
        n_ops = 2;
    } else {
        SDXL_TRY(conv_operation(p, x, w, y, &ops[0], err));
    }

    const char *what =
        fused ? "operation graph (convolution + bias)" : "operation graph (convolution)";
    return dnn_graph(cb, &p->dnn, ops, n_ops, what, graph, err);
}
