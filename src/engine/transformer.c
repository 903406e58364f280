/*
 * transformer.c — diffusers' Transformer2DModel with linear projections (see transformer.h),
 * following transformer_2d.py's _operate_on_continuous_inputs and
 * _get_output_for_continuous_inputs.
 */
#include "engine/transformer.h"

#include <stdlib.h>

sdxl_status transformer_load(weights *w, const char *prefix, int channels, int heads, int depth,
                             int context_dim, int groups, transformer *t, sdxl_error *err)
{
    int64_t c = channels;
    t->channels = channels;
    t->groups = groups;
    SDXL_TRY(weights_load_norm(w, c, &t->norm_w, &t->norm_b, err, "%s.norm", prefix));
    SDXL_TRY(weights_load_linear(w, c, c, &t->proj_in, &t->proj_in_bias, err, "%s.proj_in",
                                 prefix));
    t->blocks = calloc((size_t)depth, sizeof *t->blocks);
    if (!t->blocks)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "%s: out of memory for %d blocks", prefix,
                         depth);
    t->depth = depth;
    for (int k = 0; k < depth; k++) {
        char p[WEIGHTS_PREFIX_MAX];
        SDXL_TRY(weights_prefix(p, sizeof p, err, "%s.transformer_blocks.%d", prefix, k));
        SDXL_TRY(transformer_block_load(w, p, channels, heads, context_dim, &t->blocks[k], err));
    }
    return weights_load_linear(w, c, c, &t->proj_out, &t->proj_out_bias, err, "%s.proj_out",
                               prefix);
}

void transformer_free(backend *be, transformer *t)
{
    backend_weight_free(be, &t->norm_w);
    backend_weight_free(be, &t->norm_b);
    backend_weight_free(be, &t->proj_in);
    backend_weight_free(be, &t->proj_in_bias);
    backend_weight_free(be, &t->proj_out);
    backend_weight_free(be, &t->proj_out_bias);
    for (int k = 0; k < t->depth; k++)
        transformer_block_free(be, &t->blocks[k]);
    free(t->blocks);
    t->blocks = NULL;
    t->depth = 0;
}

static sdxl_status forward(const transformer *t, backend *be, arena *a, const tensor *x,
                           const tensor *context, tensor *y, sdxl_error *err)
{
    int64_t n = x->shape[0], hw = x->shape[1] * x->shape[2], c = x->shape[3];
    tensor normed, h, rows_y;
    SDXL_TRY(tensor_alloc_like(&normed, a, x, err)); // [N, H, W, C]
    SDXL_TRY(backend_group_norm(be, x, t->groups, TRANSFORMER_GROUP_NORM_EPS, &t->norm_w,
                                &t->norm_b, false, &normed, err));
    SDXL_TRY(tensor_reshape(&normed, &normed, 3, (int64_t[]){n, hw, c}, err));
    SDXL_TRY(tensor_alloc_like(&h, a, &normed, err)); // [N, H*W, C] token rows
    SDXL_TRY(backend_linear(be, &normed, &t->proj_in, &t->proj_in_bias, BACKEND_ACT_NONE, &h, err));
    for (int k = 0; k < t->depth; k++)
        SDXL_TRY(transformer_block_forward(&t->blocks[k], be, a, &h, context, err));
    SDXL_TRY(tensor_reshape(&rows_y, y, 3, (int64_t[]){n, hw, c}, err));
    SDXL_TRY(backend_linear(be, &h, &t->proj_out, &t->proj_out_bias, BACKEND_ACT_NONE, &rows_y,
                            err));
    return backend_add(be, y, x, y, err);
}

sdxl_status transformer_forward(const transformer *t, backend *be, arena *a, const tensor *x,
                                const tensor *context, tensor *y, sdxl_error *err)
{
    if (x->ndim != 4 || !tensor_same_shape(x, y) || x->shape[3] != t->channels) {
        char xs[96], ys[96];
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "transformer: x %s and y %s must both be [N, H, W, %d]",
                         tensor_shape_str(x, xs, sizeof xs), tensor_shape_str(y, ys, sizeof ys),
                         t->channels);
    }
    if (x->data != NULL && x->data == y->data)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "transformer: y must not be x (x is needed for the residual)");
    arena_mark mark = arena_get_mark(a);
    sdxl_status st = forward(t, be, a, x, context, y, err);
    arena_reset_to(a, mark);
    return st;
}
