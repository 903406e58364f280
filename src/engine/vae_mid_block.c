/*
 * vae_mid_block.c — the VAE's mid block (see vae_mid_block.h), following diffusers'
 * UNetMidBlock2D.forward and AttnProcessor2_0 for an Attention with residual_connection and
 * group norm over a 4-D input.
 */
#include "engine/vae_mid_block.h"

static sdxl_status attention_load(weights *w, const char *prefix, int channels, int groups,
                                  float eps, vae_attention *at, sdxl_error *err)
{
    int64_t c = channels;
    at->channels = channels;
    at->groups = groups;
    at->eps = eps;
    SDXL_TRY(weights_load_norm(w, c, &at->norm_w, &at->norm_b, err, "%s.group_norm", prefix));
    SDXL_TRY(weights_load_linear(w, c, c, &at->q_w, &at->q_b, err, "%s.to_q", prefix));
    SDXL_TRY(weights_load_linear(w, c, c, &at->k_w, &at->k_b, err, "%s.to_k", prefix));
    SDXL_TRY(weights_load_linear(w, c, c, &at->v_w, &at->v_b, err, "%s.to_v", prefix));
    return weights_load_linear(w, c, c, &at->out_w, &at->out_b, err, "%s.to_out.0", prefix);
}

sdxl_status vae_mid_block_load(weights *w, const char *prefix, int channels, int groups,
                               float eps, vae_mid_block *m, sdxl_error *err)
{
    char p[WEIGHTS_PREFIX_MAX];
    for (int i = 0; i < 2; i++) {
        SDXL_TRY(weights_prefix(p, sizeof p, err, "%s.resnets.%d", prefix, i));
        SDXL_TRY(resnet_load(w, p, channels, channels, 0, groups, eps, 1.0f, &m->resnets[i], err));
    }
    SDXL_TRY(weights_prefix(p, sizeof p, err, "%s.attentions.0", prefix));
    return attention_load(w, p, channels, groups, eps, &m->attention, err);
}

void vae_mid_block_free(backend *be, vae_mid_block *m)
{
    for (int i = 0; i < 2; i++)
        resnet_free(be, &m->resnets[i]);
    vae_attention *at = &m->attention;
    tensor *all[] = {&at->norm_w, &at->norm_b, &at->q_w, &at->q_b,   &at->k_w,
                     &at->k_b,    &at->v_w,    &at->v_b, &at->out_w, &at->out_b};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        backend_weight_free(be, all[i]);
}

/* x [N, H, W, C] -> y [N, H, W, C] = x + to_out(attention(to_q/k/v(group_norm(x)))). */
static sdxl_status attention_forward(const vae_attention *at, backend *be, arena *a,
                                     const tensor *x, tensor *y, sdxl_error *err)
{
    int64_t n = x->shape[0], t = x->shape[1] * x->shape[2], c = x->shape[3];
    const int64_t rows_shape[3] = {n, t, c};
    tensor q, k, v, att, normed, rows_y;
    SDXL_TRY(tensor_alloc(&q, a, x->type, 3, rows_shape, err)); // [N, H*W, C] each
    SDXL_TRY(tensor_alloc(&k, a, x->type, 3, rows_shape, err));
    SDXL_TRY(tensor_alloc(&v, a, x->type, 3, rows_shape, err));
    arena_mark above_qkv = arena_get_mark(a);
    SDXL_TRY(tensor_alloc_like(&normed, a, x, err)); // [N, H, W, C]
    SDXL_TRY(backend_group_norm(be, x, at->groups, at->eps, &at->norm_w, &at->norm_b, false,
                                &normed, err));
    SDXL_TRY(tensor_reshape(&normed, &normed, 3, rows_shape, err));
    SDXL_TRY(backend_linear(be, &normed, &at->q_w, &at->q_b, BACKEND_ACT_NONE, &q, err));
    SDXL_TRY(backend_linear(be, &normed, &at->k_w, &at->k_b, BACKEND_ACT_NONE, &k, err));
    SDXL_TRY(backend_linear(be, &normed, &at->v_w, &at->v_b, BACKEND_ACT_NONE, &v, err));
    arena_reset_to(a, above_qkv);
    SDXL_TRY(tensor_alloc(&att, a, x->type, 3, rows_shape, err));
    SDXL_TRY(backend_attention(be, &q, &k, &v, 1, false, &att, err));
    SDXL_TRY(tensor_reshape(&rows_y, y, 3, rows_shape, err));
    SDXL_TRY(backend_linear(be, &att, &at->out_w, &at->out_b, BACKEND_ACT_NONE, &rows_y, err));
    return backend_add(be, y, x, y, err);
}

static sdxl_status forward(const vae_mid_block *m, backend *be, arena *a, vae_chain *chain,
                           sdxl_error *err)
{
    tensor y;
    SDXL_TRY(vae_chain_target(chain, chain->x.shape, &y, err));
    SDXL_TRY(resnet_forward(&m->resnets[0], be, a, &chain->x, NULL, &y, err));
    vae_chain_advance(chain, &y);
    SDXL_TRY(vae_chain_target(chain, chain->x.shape, &y, err));
    SDXL_TRY(attention_forward(&m->attention, be, a, &chain->x, &y, err));
    vae_chain_advance(chain, &y);
    SDXL_TRY(vae_chain_target(chain, chain->x.shape, &y, err));
    SDXL_TRY(resnet_forward(&m->resnets[1], be, a, &chain->x, NULL, &y, err));
    vae_chain_advance(chain, &y);
    return SDXL_OK;
}

sdxl_status vae_mid_block_forward(const vae_mid_block *m, backend *be, arena *a, vae_chain *chain,
                                  sdxl_error *err)
{
    arena_mark mark = arena_get_mark(a);
    sdxl_status st = forward(m, be, a, chain, err);
    arena_reset_to(a, mark);
    return st;
}
