/*
 * tensor.h — the tensor type every backend op works on, and how tensors are made.
 *
 * A tensor is a shape, an element type and a pointer to memory owned by a backend (host memory
 * on the cpu backend, device memory on a GPU). Model code builds tensors and hands them to ops;
 * it never reads or writes tensor memory itself (use backend_tensor_read/write for that).
 *
 * Shapes are outermost first and storage is row-major and contiguous: activations are NHWC
 * ([N, H, W, C]) or token rows ([B, T, C]), so the last dimension is always channels.
 *
 * Two kinds of tensors:
 *  - activations (TENSOR_ACTIVATION), carved from an arena (tensor_alloc). The arena may be a
 *    planning arena: the tensor then gets its shape but no memory (data == NULL), and every op
 *    given such an output only checks shapes. So a forward pass run once over a planning arena
 *    both validates every shape and measures the activation memory a (width, height, batch)
 *    needs; the same code then runs over a real arena.
 *  - weights (TENSOR_WEIGHT_*), uploaded once by backend_weight_upload. Their shape is the
 *    logical PyTorch shape (linear [out, in], conv [Cout, Cin, kh, kw]) but their memory layout
 *    is the backend's own choice (e.g. a conv weight pre-arranged for its GEMM), so weights are
 *    only ever passed to the op arguments documented to take them.
 */
#ifndef SDXL_BACKEND_TENSOR_H
#define SDXL_BACKEND_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/dtype.h"
#include "base/status.h"

#define TENSOR_MAX_DIMS 4
/* Alignment of activations carved from an arena (enough for AVX-512 rows and GPU loads). */
#define TENSOR_ALIGN 256

typedef enum tensor_kind {
    TENSOR_ACTIVATION = 0,       /* row-major, contiguous; from an arena */
    TENSOR_WEIGHT_LINEAR = 1,    /* a linear layer's weight, given as PyTorch [out, in] */
    TENSOR_WEIGHT_CONV = 2,      /* a conv2d weight, given as PyTorch [Cout, Cin, kh, kw] */
    TENSOR_WEIGHT_VECTOR = 3,    /* [n]: a bias, a norm's scale or shift */
    TENSOR_WEIGHT_EMBEDDING = 4, /* [rows, width]: a table read by backend_gather_rows */
} tensor_kind;

typedef struct tensor {
    dtype type;
    tensor_kind kind;
    int ndim; /* 1..TENSOR_MAX_DIMS */
    int64_t shape[TENSOR_MAX_DIMS];
    void *data; /* backend memory; NULL for an activation planned but not allocated */
} tensor;

int64_t tensor_numel(const tensor *t);
size_t tensor_nbytes(const tensor *t);
bool tensor_same_shape(const tensor *a, const tensor *b);
/* The size of the last dimension (channels / features). */
int64_t tensor_last_dim(const tensor *t);
/* The product of all dimensions but the last (rows when viewed as a matrix). */
int64_t tensor_rows(const tensor *t);
/* Writes "[2, 64, 64, 320]" into buf (always NUL-terminated); returns buf. For messages. */
const char *tensor_shape_str(const tensor *t, char *buf, size_t n);

/* An activation of the given type and shape from the arena (TENSOR_ALIGN-aligned). On a
 * planning arena t->data is NULL and the arena records the space. Fails with
 * SDXL_ERR_OUT_OF_MEMORY when a real arena is full, SDXL_ERR_INVALID_ARGUMENT on a bad shape.
 *
 *     tensor h;
 *     st = tensor_alloc(&h, arena, DTYPE_F32, 4, (int64_t[]){n, 64, 64, 320}, err);
 */
sdxl_status tensor_alloc(tensor *t, arena *a, dtype type, int ndim, const int64_t *shape,
                         sdxl_error *err);
/* An activation with the type and shape of like. */
sdxl_status tensor_alloc_like(tensor *t, arena *a, const tensor *like, sdxl_error *err);

/* Views share the memory of an activation (no copy; any backend's pointers). */

/* Rows first .. first+count-1 of the outermost dimension, e.g. one image of a batch. */
sdxl_status tensor_view_outer(tensor *view, const tensor *t, int64_t first, int64_t count,
                              sdxl_error *err);
/* Entry `index` of the outermost dimension, without that dimension: [G, B, T, C] ->
 * [B, T, C] (one of the G outputs of backend_linear_groups). t has at least 2 dimensions. */
sdxl_status tensor_view_slice(tensor *view, const tensor *t, int64_t index, sdxl_error *err);
/* The same elements under another shape with the same element count, e.g. [N, H, W, C] as
 * [N, H*W, C]. */
sdxl_status tensor_reshape(tensor *view, const tensor *t, int ndim, const int64_t *shape,
                           sdxl_error *err);

#endif /* SDXL_BACKEND_TENSOR_H */
