/*
 * transformer_block.c — diffusers' BasicTransformerBlock (see transformer_block.h), following
 * attention.py's BasicTransformerBlock.forward with norm_type "layer_norm" and
 * AttnProcessor2_0, the only configuration SDXL's UNet builds.
 */
#include "engine/transformer_block.h"

#include <stdio.h>

#define TRY(call)                                                                                \
    do {                                                                                         \
        sdxl_status try_st_ = (call);                                                            \
        if (try_st_ != SDXL_OK)                                                                  \
            return try_st_;                                                                      \
    } while (0)

/* PREFIX.NAME.weight [out, in] and, when bias is not NULL, PREFIX.NAME.bias [out]. */
static sdxl_status load_linear(weights *w, const char *prefix, const char *name, int out, int in,
                               tensor *weight, tensor *bias, sdxl_error *err)
{
    TRY(weights_load(w, TENSOR_WEIGHT_LINEAR, 2, (int64_t[]){out, in}, weight, err,
                     "%s.%s.weight", prefix, name));
    if (bias)
        TRY(weights_load(w, TENSOR_WEIGHT_VECTOR, 1, (int64_t[]){out}, bias, err, "%s.%s.bias",
                         prefix, name));
    return SDXL_OK;
}

static sdxl_status load_norm(weights *w, const char *prefix, const char *name, int c,
                             tensor *gamma, tensor *beta, sdxl_error *err)
{
    TRY(weights_load(w, TENSOR_WEIGHT_VECTOR, 1, (int64_t[]){c}, gamma, err, "%s.%s.weight",
                     prefix, name));
    return weights_load(w, TENSOR_WEIGHT_VECTOR, 1, (int64_t[]){c}, beta, err, "%s.%s.bias",
                        prefix, name);
}

/* attn1 / attn2: keys and values from kv_dim-wide inputs. */
static sdxl_status load_attention(weights *w, const char *prefix, const char *name, int c,
                                  int kv_dim, attention_weights *at, sdxl_error *err)
{
    char p[256];
    if (snprintf(p, sizeof p, "%s.%s", prefix, name) >= (int)sizeof p)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "tensor prefix too long: %s", prefix);
    TRY(load_linear(w, p, "to_q", c, c, &at->to_q, NULL, err));
    TRY(load_linear(w, p, "to_k", c, kv_dim, &at->to_k, NULL, err));
    TRY(load_linear(w, p, "to_v", c, kv_dim, &at->to_v, NULL, err));
    return load_linear(w, p, "to_out.0", c, c, &at->to_out, &at->to_out_bias, err);
}

sdxl_status transformer_block_load(weights *w, const char *prefix, int channels, int heads,
                                   int context_dim, transformer_block *blk, sdxl_error *err)
{
    int c = channels, ff = 4 * channels; /* FeedForward(mult=4) */
    blk->channels = channels;
    blk->heads = heads;
    TRY(load_norm(w, prefix, "norm1", c, &blk->norm1_w, &blk->norm1_b, err));
    TRY(load_attention(w, prefix, "attn1", c, c, &blk->attn1, err));
    TRY(load_norm(w, prefix, "norm2", c, &blk->norm2_w, &blk->norm2_b, err));
    TRY(load_attention(w, prefix, "attn2", c, context_dim, &blk->attn2, err));
    TRY(load_norm(w, prefix, "norm3", c, &blk->norm3_w, &blk->norm3_b, err));
    TRY(load_linear(w, prefix, "ff.net.0.proj", 2 * ff, c, &blk->ff_in, &blk->ff_in_bias, err));
    return load_linear(w, prefix, "ff.net.2", c, ff, &blk->ff_out, &blk->ff_out_bias, err);
}

static void attention_free(backend *be, attention_weights *at)
{
    backend_weight_free(be, &at->to_q);
    backend_weight_free(be, &at->to_k);
    backend_weight_free(be, &at->to_v);
    backend_weight_free(be, &at->to_out);
    backend_weight_free(be, &at->to_out_bias);
}

void transformer_block_free(backend *be, transformer_block *blk)
{
    tensor *own[] = {&blk->norm1_w, &blk->norm1_b, &blk->norm2_w, &blk->norm2_b,
                     &blk->norm3_w, &blk->norm3_b, &blk->ff_in,   &blk->ff_in_bias,
                     &blk->ff_out,  &blk->ff_out_bias};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        backend_weight_free(be, own[i]);
    attention_free(be, &blk->attn1);
    attention_free(be, &blk->attn2);
}

/* x += to_out(attention(to_q(xn), to_k(kv), to_v(kv))).
 * xn [B, T, C] (x normalised); kv [B, Tk, Dk] (xn itself for self-attention); x [B, T, C]. */
static sdxl_status attention_add(const attention_weights *at, int heads, backend *be, arena *a,
                                 const tensor *xn, const tensor *kv, tensor *x, sdxl_error *err)
{
    dtype type = backend_compute_type(be);
    int64_t b = xn->shape[0], t = xn->shape[1], c = xn->shape[2], tk = kv->shape[1];
    tensor q, k, v, o;
    TRY(tensor_alloc(&q, a, type, 3, (int64_t[]){b, t, c}, err));
    TRY(tensor_alloc(&k, a, type, 3, (int64_t[]){b, tk, c}, err));
    TRY(tensor_alloc(&v, a, type, 3, (int64_t[]){b, tk, c}, err));
    TRY(tensor_alloc(&o, a, type, 3, (int64_t[]){b, t, c}, err));
    TRY(backend_linear(be, xn, &at->to_q, NULL, BACKEND_ACT_NONE, &q, err));
    TRY(backend_linear(be, kv, &at->to_k, NULL, BACKEND_ACT_NONE, &k, err));
    TRY(backend_linear(be, kv, &at->to_v, NULL, BACKEND_ACT_NONE, &v, err));
    TRY(backend_attention(be, &q, &k, &v, heads, false, &o, err));
    /* q is dead once attention has run: it takes the projected output */
    TRY(backend_linear(be, &o, &at->to_out, &at->to_out_bias, BACKEND_ACT_NONE, &q, err));
    return backend_add(be, x, &q, x, err);
}

/* x += ff.net.2(GEGLU(ff.net.0.proj(xn))).  xn, x [B, T, C]. */
static sdxl_status feed_forward_add(const transformer_block *blk, backend *be, arena *a,
                                    const tensor *xn, tensor *x, sdxl_error *err)
{
    dtype type = backend_compute_type(be);
    int64_t b = xn->shape[0], t = xn->shape[1], ff = blk->ff_out.shape[1];
    tensor proj, gated, y;
    TRY(tensor_alloc(&proj, a, type, 3, (int64_t[]){b, t, 2 * ff}, err)); // [B, T, 2F]
    TRY(tensor_alloc(&gated, a, type, 3, (int64_t[]){b, t, ff}, err));   // [B, T, F]
    TRY(tensor_alloc_like(&y, a, x, err));                                // [B, T, C]
    TRY(backend_linear(be, xn, &blk->ff_in, &blk->ff_in_bias, BACKEND_ACT_NONE, &proj, err));
    TRY(backend_geglu(be, &proj, &gated, err));
    TRY(backend_linear(be, &gated, &blk->ff_out, &blk->ff_out_bias, BACKEND_ACT_NONE, &y, err));
    return backend_add(be, x, &y, x, err);
}

static sdxl_status block_forward(const transformer_block *blk, backend *be, arena *a, tensor *x,
                                 const tensor *context, sdxl_error *err)
{
    tensor xn; // [B, T, C]: x normalised, before each of the three sublayers
    TRY(tensor_alloc_like(&xn, a, x, err));
    arena_mark mark = arena_get_mark(a);

    TRY(backend_layer_norm(be, x, TRANSFORMER_BLOCK_NORM_EPS, &blk->norm1_w, &blk->norm1_b, &xn,
                           err));
    TRY(attention_add(&blk->attn1, blk->heads, be, a, &xn, &xn, x, err));
    arena_reset_to(a, mark);

    TRY(backend_layer_norm(be, x, TRANSFORMER_BLOCK_NORM_EPS, &blk->norm2_w, &blk->norm2_b, &xn,
                           err));
    TRY(attention_add(&blk->attn2, blk->heads, be, a, &xn, context, x, err));
    arena_reset_to(a, mark);

    TRY(backend_layer_norm(be, x, TRANSFORMER_BLOCK_NORM_EPS, &blk->norm3_w, &blk->norm3_b, &xn,
                           err));
    return feed_forward_add(blk, be, a, &xn, x, err);
}

sdxl_status transformer_block_forward(const transformer_block *blk, backend *be, arena *a,
                                      tensor *x, const tensor *context, sdxl_error *err)
{
    arena_mark mark = arena_get_mark(a);
    sdxl_status st = block_forward(blk, be, a, x, context, err);
    arena_reset_to(a, mark);
    return st;
}
