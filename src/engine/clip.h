/*
 * clip.h — a CLIP text encoder: transformers' CLIPTextModel (SDXL's text_encoder, CLIP ViT-L,
 * quick_gelu) and CLIPTextModelWithProjection (text_encoder_2, OpenCLIP ViT-bigG, gelu), built
 * from the component's config.json (clip_config.h) and loaded by transformers' tensor names.
 *
 * The forward pass, as transformers 4.46's CLIPTextTransformer, over token rows [B, T, D]:
 *   x = token_embedding[ids] + position_embedding[0 .. T-1]
 *   per layer (pre-LN):  x = x + out_proj(attention(q, k, v of layer_norm1(x)))  causal,
 *                                                      heads split from D, scale 1/sqrt(D/heads)
 *                        x = x + fc2(act(fc1(layer_norm2(x))))
 *   (q, k and v come from one grouped product, and each residual is added in its product's
 *   epilogue: backend_linear_groups, backend_linear_add)
 *   last = final_layer_norm(x)
 *   pooled = last[b, p_b]: p_b is the first position of the largest id (configs with the legacy
 *            eos_token_id 2, SDXL's: the first <|endoftext|>), else the first position of
 *            eos_token_id (0 when there is none, as torch's argmax of all zeros)
 *   text_embeds = pooled · text_projectionᵀ (CLIPTextModelWithProjection only)
 * hidden_states[-2], what SDXL conditions on, is x after the second-to-last layer (the
 * embeddings when there is one layer) WITHOUT final_layer_norm, as diffusers' encode_prompt
 * takes it. When only that is asked for, the last layer does not run.
 *
 *     clip_model *m;
 *     st = clip_load(model_dir, "text_encoder_2", be, NULL, &m, err);
 *     tensor hidden, pooled;   // [1, 77, 1280], [1, 1280], made from the arena
 *     st = clip_forward(m, arena, ids, 1, 77, &(clip_outputs){&hidden, NULL, &pooled}, err);
 *     clip_free(m);
 *
 * Every weight of the file is loaded (weights_finish refuses a file with more or other tensors
 * than the config implies), including the ones SDXL's text_encoder never uses (its last layer
 * and final_layer_norm: about 6% of its weights). A loaded model is read-only during
 * clip_forward: several sessions (arenas) may share it.
 */
#ifndef SDXL_ENGINE_CLIP_H
#define SDXL_ENGINE_CLIP_H

#include <stdint.h>

#include "backend/backend.h"
#include "base/arena.h"
#include "engine/clip_config.h"
#include "engine/weights.h"

/* The order of the projections stacked in clip_layer.kvq_w (the file's order). */
enum { CLIP_K = 0, CLIP_V = 1, CLIP_Q = 2 };

typedef struct clip_layer {
    tensor ln1_w, ln1_b;                    /* layer_norm1: VECTOR [D] */
    tensor kvq_w, kvq_b;                    /* self_attn.{k,v,q}_proj stacked, for one grouped
                                               product: LINEAR [3D, D], VECTOR [3D] */
    tensor out_w, out_b;                    /* self_attn.out_proj: LINEAR [D, D], VECTOR [D] */
    tensor ln2_w, ln2_b;                    /* layer_norm2: VECTOR [D] */
    tensor fc1_w, fc1_b;                    /* mlp.fc1: LINEAR [F, D], VECTOR [F] */
    tensor fc2_w, fc2_b;                    /* mlp.fc2: LINEAR [D, F], VECTOR [D] */
} clip_layer;

typedef struct clip_model {
    clip_config cfg;
    tensor token_embedding;    /* EMBEDDING [vocab_size, D] */
    tensor position_embedding; /* EMBEDDING [max_position_embeddings, D] */
    clip_layer *layers;        /* num_hidden_layers (owned) */
    tensor final_ln_w, final_ln_b;
    tensor text_projection;    /* LINEAR [projection_dim, D] (no bias); zeroed without one */
    backend *be;               /* the backend the weights live on */
} clip_model;

/* Where clip_forward puts its results; NULL for a result not wanted. The tensors are made by
 * the caller (they outlive the call's temporaries), shapes for B prompts of T tokens: */
typedef struct clip_outputs {
    tensor *penultimate; /* [B, T, D]: hidden_states[-2] */
    tensor *last;        /* [B, T, D]: last_hidden_state (after final_layer_norm) */
    tensor *pooled;      /* [B, projection_dim] text_embeds with a projection, else
                            [B, D] pooler_output */
} clip_outputs;

/* Reads model_dir/component/config.json and model_dir/component/model[.fp16].safetensors onto
 * be. progress may be NULL. On failure *out is NULL and nothing stays allocated. */
sdxl_status clip_load(const char *model_dir, const char *component, backend *be,
                      weights_progress *progress, clip_model **out, sdxl_error *err);
/* Frees the weights and the model (NULL is fine). */
void clip_free(clip_model *m);

/* The text encoder on B prompts of T tokens: ids [B * T] host token ids, each in
 * [0, vocab_size); T at most max_position_embeddings. On a planning arena (a->planning) ids may
 * be NULL: only shapes are checked and the arena records the memory. Temporaries come from a
 * and are released before returning. The same as clip_inputs_make, then clip_run. */
sdxl_status clip_forward(const clip_model *m, arena *a, const int32_t *ids, int64_t batch,
                         int64_t n_tokens, const clip_outputs *out, sdxl_error *err);

/* What the encoder reads from the host, on the backend: the token ids, the positions and the
 * rows pooled. Written once, before clip_run, so that clip_run makes no host copy and can be
 * recorded (graph_cache.h). */
typedef struct clip_inputs {
    tensor ids;       /* [B * T] I32 */
    tensor positions; /* [T] I32: 0 .. T-1 */
    tensor pool_rows; /* [B] I32: b * T + p_b */
} clip_inputs;

/* Makes the inputs in a (they stay until the caller releases them) and writes them from ids
 * (as clip_forward takes them; NULL on a planning arena), checking every id. */
sdxl_status clip_inputs_make(const clip_model *m, arena *a, const int32_t *ids, int64_t batch,
                             int64_t n_tokens, clip_inputs *in, sdxl_error *err);

/* The forward pass on inputs made by clip_inputs_make; no host copy. */
sdxl_status clip_run(const clip_model *m, arena *a, const clip_inputs *in,
                     const clip_outputs *out, sdxl_error *err);

#endif /* SDXL_ENGINE_CLIP_H */
