/*
 * unet_upsample.c — nearest upsampling to any size (see unet_upsample.h): the 2x op, or a row
 * gather whose indices reproduce torch's nearest_idx.
 */
#include "engine/unet_upsample.h"

#include <math.h>

/* Index table entries written per backend_tensor_write (a stack buffer: no allocation). */
#define UPSAMPLE_CHUNK 1024

/* torch's nearest_idx: the special cases avoid float rounding; the general case computes the
 * scale in float, as torch does for a given output size. */
static int64_t nearest_source(int64_t out_index, int64_t in_size, int64_t out_size)
{
    if (out_size == in_size)
        return out_index;
    if (out_size == 2 * in_size)
        return out_index >> 1;
    float scale = (float)in_size / (float)out_size;
    int64_t src = (int64_t)floorf((float)out_index * scale);
    return src < in_size - 1 ? src : in_size - 1;
}

/* Row of x (viewed as [N*H*W, C]) that output row r (of [N*Ho*Wo, C]) copies. */
static int32_t source_row(const tensor *x, const tensor *y, int64_t r)
{
    int64_t h = x->shape[1], w = x->shape[2], ho = y->shape[1], wo = y->shape[2];
    int64_t n = r / (ho * wo), i = r / wo % ho, j = r % wo;
    return (int32_t)((n * h + nearest_source(i, h, ho)) * w + nearest_source(j, w, wo));
}

static sdxl_status gather(backend *be, arena *a, const tensor *x, const tensor *y,
                          sdxl_error *err)
{
    int64_t c = x->shape[3], rows_in = tensor_rows(x), rows_out = tensor_rows(y);
    if (rows_in > INT32_MAX)
        return error_set(err, SDXL_ERR_LIMIT,
                         "upsample: %lld source pixels exceed the 32-bit index table; use a "
                         "smaller batch or image",
                         (long long)rows_in);
    tensor ids, table, rows;
    SDXL_TRY(tensor_alloc(&ids, a, DTYPE_I32, 1, &rows_out, err));
    int32_t chunk[UPSAMPLE_CHUNK];
    for (int64_t first = 0; first < rows_out; first += UPSAMPLE_CHUNK) {
        int64_t count = rows_out - first < UPSAMPLE_CHUNK ? rows_out - first : UPSAMPLE_CHUNK;
        for (int64_t k = 0; k < count; k++)
            chunk[k] = source_row(x, y, first + k);
        tensor part;
        SDXL_TRY(tensor_view_outer(&part, &ids, first, count, err));
        SDXL_TRY(backend_tensor_write(be, &part, DTYPE_I32, chunk, (size_t)count, err));
    }
    SDXL_TRY(tensor_reshape(&table, x, 2, (int64_t[]){rows_in, c}, err));
    SDXL_TRY(tensor_reshape(&rows, y, 2, (int64_t[]){rows_out, c}, err));
    return backend_gather_rows(be, &table, &ids, &rows, err);
}

sdxl_status unet_upsample_nearest(backend *be, arena *a, const tensor *x, tensor *y,
                                  sdxl_error *err)
{
    if (x->ndim != 4 || y->ndim != 4 || x->shape[0] != y->shape[0] ||
        x->shape[3] != y->shape[3]) {
        char xs[96], ys[96];
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "upsample: x %s and y %s must be [N, H, W, C] and [N, Ho, Wo, C]",
                         tensor_shape_str(x, xs, sizeof xs), tensor_shape_str(y, ys, sizeof ys));
    }
    if (y->shape[1] == 2 * x->shape[1] && y->shape[2] == 2 * x->shape[2])
        return backend_upsample_nearest2x(be, x, y, err);
    arena_mark mark = arena_get_mark(a);
    sdxl_status st = gather(be, a, x, y, err);
    arena_reset_to(a, mark);
    return st;
}
