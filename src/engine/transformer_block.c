/*
 * transformer_block.c — diffusers' BasicTransformerBlock (see transformer_block.h), following
 * attention.py's BasicTransformerBlock.forward with norm_type "layer_norm" and
 * AttnProcessor2_0, the only configuration SDXL's UNet builds.
 */
#include "engine/transformer_block.h"

/* PREFIX.NAME (attn1 or attn2), in the file's order (to_q, to_k, to_v, to_out.0): q, k and v
 * stacked for self-attention; for cross-attention (keys and values from kv_dim-wide text)
 * to_q alone, k and v stacked. */
static sdxl_status load_attention(weights *w, const char *prefix, const char *name, bool cross,
                                  int c, int kv_dim, attention_weights *at, sdxl_error *err)
{
    char module[WEIGHTS_PREFIX_MAX];
    SDXL_TRY(weights_prefix(module, sizeof module, err, "%s.%s", prefix, name));
    if (cross) {
        SDXL_TRY(weights_load_linear(w, c, c, &at->to_q, NULL, err, "%s.to_q", module));
        SDXL_TRY(weights_load_linear_stack(w, module, 2, (const char *const[]){"to_k", "to_v"},
                                           c, kv_dim, &at->stacked, NULL, err));
    } else {
        SDXL_TRY(weights_load_linear_stack(w, module, 3,
                                           (const char *const[]){"to_q", "to_k", "to_v"}, c, c,
                                           &at->stacked, NULL, err));
    }
    return weights_load_linear(w, c, c, &at->to_out, &at->to_out_bias, err, "%s.to_out.0",
                               module);
}

sdxl_status transformer_block_load(weights *w, const char *prefix, int channels, int heads,
                                   int context_dim, transformer_block *blk, sdxl_error *err)
{
    int c = channels, ff = 4 * channels; /* FeedForward(mult=4) */
    blk->channels = channels;
    blk->heads = heads;
    SDXL_TRY(weights_load_norm(w, c, &blk->norm1_w, &blk->norm1_b, err, "%s.norm1", prefix));
    SDXL_TRY(load_attention(w, prefix, "attn1", false, c, c, &blk->attn1, err));
    SDXL_TRY(weights_load_norm(w, c, &blk->norm2_w, &blk->norm2_b, err, "%s.norm2", prefix));
    SDXL_TRY(load_attention(w, prefix, "attn2", true, c, context_dim, &blk->attn2, err));
    SDXL_TRY(weights_load_norm(w, c, &blk->norm3_w, &blk->norm3_b, err, "%s.norm3", prefix));
    SDXL_TRY(weights_load_linear(w, 2 * ff, c, &blk->ff_in, &blk->ff_in_bias, err,
                                 "%s.ff.net.0.proj", prefix));
    return weights_load_linear(w, c, ff, &blk->ff_out, &blk->ff_out_bias, err, "%s.ff.net.2",
                               prefix);
}

static void attention_free(backend *be, attention_weights *at)
{
    backend_weight_free(be, &at->stacked);
    backend_weight_free(be, &at->to_q);
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
    int groups = (int)(at->stacked.shape[0] / c); /* 3: q, k, v; 2: k, v */
    tensor proj, q, k, v, o;
    SDXL_TRY(tensor_alloc(&proj, a, type, 4, (int64_t[]){groups, b, tk, c}, err)); // [G, B, Tk, C]
    SDXL_TRY(tensor_alloc(&o, a, type, 3, (int64_t[]){b, t, c}, err));             // [B, T, C]
    SDXL_TRY(backend_linear_groups(be, kv, &at->stacked, NULL, groups, &proj, err));
    if (groups == 3) {
        SDXL_TRY(tensor_view_slice(&q, &proj, 0, err));
    } else {
        SDXL_TRY(tensor_alloc(&q, a, type, 3, (int64_t[]){b, t, c}, err));
        SDXL_TRY(backend_linear(be, xn, &at->to_q, NULL, BACKEND_ACT_NONE, &q, err));
    }
    SDXL_TRY(tensor_view_slice(&k, &proj, groups - 2, err));
    SDXL_TRY(tensor_view_slice(&v, &proj, groups - 1, err));
    SDXL_TRY(backend_attention(be, &q, &k, &v, heads, false, &o, err));
    return backend_linear_add(be, &o, &at->to_out, &at->to_out_bias, x, err);
}

/* x += ff.net.2(GEGLU(ff.net.0.proj(xn))).  xn, x [B, T, C]. */
static sdxl_status feed_forward_add(const transformer_block *blk, backend *be, arena *a,
                                    const tensor *xn, tensor *x, sdxl_error *err)
{
    dtype type = backend_compute_type(be);
    int64_t b = xn->shape[0], t = xn->shape[1], ff = blk->ff_out.shape[1];
    tensor proj, gated;
    SDXL_TRY(tensor_alloc(&proj, a, type, 3, (int64_t[]){b, t, 2 * ff}, err)); // [B, T, 2F]
    SDXL_TRY(tensor_alloc(&gated, a, type, 3, (int64_t[]){b, t, ff}, err));   // [B, T, F]
    SDXL_TRY(backend_linear(be, xn, &blk->ff_in, &blk->ff_in_bias, BACKEND_ACT_NONE, &proj, err));
    SDXL_TRY(backend_geglu(be, &proj, &gated, err));
    return backend_linear_add(be, &gated, &blk->ff_out, &blk->ff_out_bias, x, err);
}

static sdxl_status block_forward(const transformer_block *blk, backend *be, arena *a, tensor *x,
                                 const tensor *context, sdxl_error *err)
{
    tensor xn; // [B, T, C]: x normalised, before each of the three sublayers
    SDXL_TRY(tensor_alloc_like(&xn, a, x, err));
    arena_mark mark = arena_get_mark(a);

    SDXL_TRY(backend_layer_norm(be, x, TRANSFORMER_BLOCK_NORM_EPS, &blk->norm1_w, &blk->norm1_b,
                                &xn, err));
    SDXL_TRY(attention_add(&blk->attn1, blk->heads, be, a, &xn, &xn, x, err));
    arena_reset_to(a, mark);

    SDXL_TRY(backend_layer_norm(be, x, TRANSFORMER_BLOCK_NORM_EPS, &blk->norm2_w, &blk->norm2_b,
                                &xn, err));
    SDXL_TRY(attention_add(&blk->attn2, blk->heads, be, a, &xn, context, x, err));
    arena_reset_to(a, mark);

    SDXL_TRY(backend_layer_norm(be, x, TRANSFORMER_BLOCK_NORM_EPS, &blk->norm3_w, &blk->norm3_b,
                                &xn, err));
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
