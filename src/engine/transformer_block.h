/*
 * transformer_block.h — diffusers' BasicTransformerBlock as SDXL's UNet uses it, over token rows.
 *
 *     x = x + attn1(norm1(x))             self-attention
 *     x = x + attn2(norm2(x), context)    cross-attention: keys and values from the text
 *     x = x + ff(norm3(x))                GEGLU feed-forward, 4 × C inner width
 *
 * norm1..3 are LayerNorms; each attention is to_q, to_k, to_v (no bias), heads split from the
 * channels, scaled dot-product attention, then to_out.0 (with bias). Dropouts are identities at
 * inference. The block updates x in place, so a stack of blocks needs no memory beyond one
 * block's temporaries.
 *
 * Fewer, fuller products (at 512² a block's products are small, and every launch counts): the
 * projections of one input are stacked into one weight and run as one grouped product
 * (attn1's q, k and v; attn2's k and v of the text), and each residual (to_out.0, ff.net.2) is
 * added in its product's epilogue (backend_linear_add).
 *
 *     transformer_block blk = {0};
 *     st = transformer_block_load(&w, "down_blocks.1.attentions.0.transformer_blocks.0",
 *                                 640, 10, 2048, &blk, err);
 *     st = transformer_block_forward(&blk, be, arena, &x, &context, err);  // x [B, T, 640]
 *     transformer_block_free(be, &blk);
 */
#ifndef SDXL_ENGINE_TRANSFORMER_BLOCK_H
#define SDXL_ENGINE_TRANSFORMER_BLOCK_H

#include "backend/backend.h"
#include "base/arena.h"
#include "engine/weights.h"

/* diffusers' Transformer2DModel default norm_eps, which SDXL's UNet blocks never override
 * (the config's norm_eps goes to the resnets only). */
#define TRANSFORMER_BLOCK_NORM_EPS 1e-5f

typedef struct attention_weights {
    /* The projections of one input, stacked (weights_load_linear_stack): LINEAR [G·C, Dk].
     * Self-attention: to_q, to_k, to_v (G = 3, Dk = C); cross-attention: to_k, to_v of the
     * text (G = 2, Dk the context width). */
    tensor stacked;
    tensor to_q;        /* cross-attention's to_q: LINEAR [C, C] (zeroed for self-attention) */
    tensor to_out;      /* to_out.0: LINEAR [C, C] */
    tensor to_out_bias; /* VECTOR [C] */
} attention_weights;

typedef struct transformer_block {
    int channels; /* C = heads × head size */
    int heads;
    tensor norm1_w, norm1_b; /* VECTOR [C] each */
    attention_weights attn1;
    tensor norm2_w, norm2_b;
    attention_weights attn2;
    tensor norm3_w, norm3_b;
    tensor ff_in, ff_in_bias;   /* ff.net.0.proj: LINEAR [8C, C] (GEGLU value and gate) */
    tensor ff_out, ff_out_bias; /* ff.net.2: LINEAR [C, 4C] */
} transformer_block;

/* Loads the tensors named PREFIX.norm1.weight ... PREFIX.ff.net.2.bias. blk must be zeroed
 * (transformer_block_free accepts it half loaded after a failure). */
sdxl_status transformer_block_load(weights *w, const char *prefix, int channels, int heads,
                                   int context_dim, transformer_block *blk, sdxl_error *err);
void transformer_block_free(backend *be, transformer_block *blk);

/* x [B, T, C], updated in place; context [B, Tc, context_dim]. Temporaries come from a and
 * are released before returning (the arena is back at its entry mark). */
sdxl_status transformer_block_forward(const transformer_block *blk, backend *be, arena *a,
                                      tensor *x, const tensor *context, sdxl_error *err);

#endif /* SDXL_ENGINE_TRANSFORMER_BLOCK_H */
