/*
 * vae_chain.c — two alternating activation buffers (see vae_chain.h).
 */
#include "engine/vae_chain.h"

sdxl_status vae_chain_init(vae_chain *c, arena *a, dtype type, int64_t capacity,
                           sdxl_error *err)
{
    for (int i = 0; i < 2; i++) {
        sdxl_status st = tensor_alloc(&c->buf[i], a, type, 1, &capacity, err);
        if (st != SDXL_OK)
            return st;
    }
    c->cur = 1; /* so that the first target is buf[0] */
    c->x = c->buf[1];
    return SDXL_OK;
}

sdxl_status vae_chain_target(const vae_chain *c, const int64_t shape[4], tensor *y,
                             sdxl_error *err)
{
    const tensor *free_buf = &c->buf[1 - c->cur];
    int64_t numel = shape[0] * shape[1] * shape[2] * shape[3];
    if (numel > free_buf->shape[0])
        return error_set(err, SDXL_ERR_INTERNAL,
                         "vae: activation [%lld, %lld, %lld, %lld] is larger than the %lld "
                         "elements planned for it",
                         (long long)shape[0], (long long)shape[1], (long long)shape[2],
                         (long long)shape[3], (long long)free_buf->shape[0]);
    tensor prefix;
    sdxl_status st = tensor_view_outer(&prefix, free_buf, 0, numel, err);
    if (st != SDXL_OK)
        return st;
    return tensor_reshape(y, &prefix, 4, shape, err);
}

void vae_chain_advance(vae_chain *c, const tensor *y)
{
    c->cur = 1 - c->cur;
    c->x = *y;
}
