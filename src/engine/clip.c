/*
 * clip.c — the CLIP text encoder's forward pass (see clip.h), following transformers 4.46's
 * CLIPTextTransformer.forward with no attention mask (diffusers passes none): only the causal
 * mask, which backend_attention applies itself.
 */
#include "engine/clip.h"

#include <stdint.h>
#include <stdlib.h>

/* The row of prompt `ids` [t] that transformers pools (see clip.h). */
static int64_t pool_position(const clip_config *cfg, const int32_t *ids, int64_t t)
{
    int64_t at = 0;
    if (cfg->eos_token_id == 2) { /* the legacy config: argmax, the first of equal maxima */
        for (int64_t i = 1; i < t; i++)
            if (ids[i] > ids[at])
                at = i;
        return at;
    }
    for (int64_t i = 0; i < t; i++)
        if (ids[i] == cfg->eos_token_id)
            return i;
    return 0;
}

/* x [B, T, D] = token_embedding[ids] + position_embedding[0 .. T-1]. */
static sdxl_status embed(const clip_model *m, arena *a, const clip_inputs *in, tensor *x,
                         sdxl_error *err)
{
    backend *be = m->be;
    int64_t b = x->shape[0], t = x->shape[1], d = x->shape[2];
    tensor pos, rows;
    SDXL_TRY(tensor_alloc(&pos, a, backend_compute_type(be), 2, (int64_t[]){t, d}, err)); // [T, D]
    SDXL_TRY(tensor_reshape(&rows, x, 2, (int64_t[]){b * t, d}, err));                    // [B*T, D]
    SDXL_TRY(backend_gather_rows(be, &m->token_embedding, &in->ids, &rows, err));
    SDXL_TRY(backend_gather_rows(be, &m->position_embedding, &in->positions, &pos, err));
    return backend_add(be, x, &pos, x, err); /* [B, T, D] + [T, D], each prompt alike */
}

/* One pre-LN encoder layer; x [B, T, D] is updated in place. */
static sdxl_status layer_forward(const clip_model *m, const clip_layer *l, arena *a, tensor *x,
                                 sdxl_error *err)
{
    backend *be = m->be;
    const clip_config *cfg = &m->cfg;
    float eps = cfg->layer_norm_eps;
    backend_act act =
        cfg->hidden_act == CLIP_ACTIVATION_GELU ? BACKEND_ACT_GELU : BACKEND_ACT_QUICK_GELU;
    dtype type = backend_compute_type(be);
    int64_t b = x->shape[0], t = x->shape[1], d = x->shape[2];
    tensor h, kvq, q, k, v, mlp;
    SDXL_TRY(tensor_alloc_like(&h, a, x, err)); // [B, T, D]: a sublayer's input; attention's output
    arena_mark mark = arena_get_mark(a);

    SDXL_TRY(tensor_alloc(&kvq, a, type, 4, (int64_t[]){3, b, t, d}, err)); // [3, B, T, D]
    SDXL_TRY(tensor_view_slice(&k, &kvq, CLIP_K, err));
    SDXL_TRY(tensor_view_slice(&v, &kvq, CLIP_V, err));
    SDXL_TRY(tensor_view_slice(&q, &kvq, CLIP_Q, err));
    SDXL_TRY(backend_layer_norm(be, x, eps, &l->ln1_w, &l->ln1_b, &h, err));
    SDXL_TRY(backend_linear_groups(be, &h, &l->kvq_w, &l->kvq_b, 3, &kvq, err));
    SDXL_TRY(backend_attention(be, &q, &k, &v, cfg->num_attention_heads, true, &h, err));
    SDXL_TRY(backend_linear_add(be, &h, &l->out_w, &l->out_b, x, err));
    arena_reset_to(a, mark);

    SDXL_TRY(tensor_alloc(&mlp, a, type, 3, (int64_t[]){b, t, cfg->intermediate_size},
                          err)); // [B, T, F]
    SDXL_TRY(backend_layer_norm(be, x, eps, &l->ln2_w, &l->ln2_b, &h, err));
    SDXL_TRY(backend_linear(be, &h, &l->fc1_w, &l->fc1_b, act, &mlp, err));
    return backend_linear_add(be, &mlp, &l->fc2_w, &l->fc2_b, x, err);
}

/* pooled [B, P or D] from last [B, T, D] at the rows in->pool_rows. */
static sdxl_status pool(const clip_model *m, arena *a, const clip_inputs *in, const tensor *last,
                        tensor *pooled, sdxl_error *err)
{
    backend *be = m->be;
    int64_t b = last->shape[0], t = last->shape[1], d = last->shape[2];
    tensor rows, picked;
    SDXL_TRY(tensor_reshape(&rows, last, 2, (int64_t[]){b * t, d}, err)); // [B*T, D]
    if (!m->cfg.has_projection)
        return backend_gather_rows(be, &rows, &in->pool_rows, pooled, err);
    SDXL_TRY(tensor_alloc(&picked, a, backend_compute_type(be), 2, (int64_t[]){b, d},
                          err)); // [B, D]
    SDXL_TRY(backend_gather_rows(be, &rows, &in->pool_rows, &picked, err));
    return backend_linear(be, &picked, &m->text_projection, NULL, BACKEND_ACT_NONE, pooled, err);
}

static sdxl_status forward(const clip_model *m, arena *a, const clip_inputs *in,
                           const clip_outputs *out, sdxl_error *err)
{
    backend *be = m->be;
    const clip_config *cfg = &m->cfg;
    int n = cfg->num_hidden_layers;
    int64_t b = in->pool_rows.shape[0], t = in->positions.shape[0];
    bool need_last = out->last || out->pooled;
    tensor x; // [B, T, D]: the residual stream
    SDXL_TRY(tensor_alloc(&x, a, backend_compute_type(be), 3, (int64_t[]){b, t, cfg->hidden_size},
                          err));
    SDXL_TRY(embed(m, a, in, &x, err));
    if (out->penultimate && n == 1)
        SDXL_TRY(backend_copy(be, &x, out->penultimate, err));
    for (int i = 0; i < (need_last ? n : n - 1); i++) {
        arena_mark mark = arena_get_mark(a);
        SDXL_TRY(layer_forward(m, &m->layers[i], a, &x, err));
        arena_reset_to(a, mark);
        if (out->penultimate && i == n - 2)
            SDXL_TRY(backend_copy(be, &x, out->penultimate, err));
    }
    if (!need_last)
        return SDXL_OK;
    tensor *last = out->last ? out->last : &x; /* x is not needed after this */
    SDXL_TRY(backend_layer_norm(be, &x, cfg->layer_norm_eps, &m->final_ln_w, &m->final_ln_b, last,
                                err));
    if (!out->pooled)
        return SDXL_OK;
    return pool(m, a, in, last, out->pooled, err);
}

sdxl_status clip_run(const clip_model *m, arena *a, const clip_inputs *in,
                     const clip_outputs *out, sdxl_error *err)
{
    arena_mark mark = arena_get_mark(a);
    sdxl_status st = forward(m, a, in, out, err);
    arena_reset_to(a, mark);
    return st;
}

/* Positions 0 .. T-1, then the B pooled rows, on the host. */
static sdxl_status write_inputs(const clip_model *m, const int32_t *ids, int64_t batch,
                                int64_t n_tokens, clip_inputs *in, sdxl_error *err)
{
    int32_t *host = malloc((size_t)(n_tokens + batch) * sizeof *host);
    if (!host)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "text encoder: out of memory");
    for (int64_t i = 0; i < n_tokens; i++)
        host[i] = (int32_t)i;
    for (int64_t p = 0; p < batch; p++)
        host[n_tokens + p] =
            (int32_t)(p * n_tokens + pool_position(&m->cfg, ids + p * n_tokens, n_tokens));
    backend *be = m->be;
    sdxl_status st =
        backend_tensor_write(be, &in->ids, DTYPE_I32, ids, (size_t)(batch * n_tokens), err);
    if (!st)
        st = backend_tensor_write(be, &in->positions, DTYPE_I32, host, (size_t)n_tokens, err);
    if (!st)
        st = backend_tensor_write(be, &in->pool_rows, DTYPE_I32, host + n_tokens, (size_t)batch,
                                  err);
    free(host);
    return st;
}

sdxl_status clip_inputs_make(const clip_model *m, arena *a, const int32_t *ids, int64_t batch,
                             int64_t n_tokens, clip_inputs *in, sdxl_error *err)
{
    const clip_config *cfg = &m->cfg;
    if (batch < 1 || n_tokens < 1 || n_tokens > cfg->max_position_embeddings ||
        batch > INT32_MAX / n_tokens) /* rows of [B*T, D] are gathered by int32 index */
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "text encoder: %lld prompts of %lld tokens; this encoder takes at least "
                         "one prompt of 1 to %d tokens (max_position_embeddings)",
                         (long long)batch, (long long)n_tokens, cfg->max_position_embeddings);
    if (!ids && !a->planning)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "text encoder: no token ids given");
    if (ids)
        for (int64_t i = 0; i < batch * n_tokens; i++)
            if (ids[i] < 0 || ids[i] >= cfg->vocab_size)
                return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                                 "text encoder: token id %d (prompt %lld, position %lld) is "
                                 "outside its vocabulary of %d; do the tokenizer and the text "
                                 "encoder belong to the same model?",
                                 (int)ids[i], (long long)(i / n_tokens),
                                 (long long)(i % n_tokens), cfg->vocab_size);
    SDXL_TRY(tensor_alloc(&in->ids, a, DTYPE_I32, 1, (int64_t[]){batch * n_tokens}, err));
    SDXL_TRY(tensor_alloc(&in->positions, a, DTYPE_I32, 1, (int64_t[]){n_tokens}, err));
    SDXL_TRY(tensor_alloc(&in->pool_rows, a, DTYPE_I32, 1, (int64_t[]){batch}, err));
    return ids ? write_inputs(m, ids, batch, n_tokens, in, err) : SDXL_OK;
}

sdxl_status clip_forward(const clip_model *m, arena *a, const int32_t *ids, int64_t batch,
                         int64_t n_tokens, const clip_outputs *out, sdxl_error *err)
{
    arena_mark mark = arena_get_mark(a);
    clip_inputs in;
    sdxl_status st = clip_inputs_make(m, a, ids, batch, n_tokens, &in, err);
    if (!st)
        st = clip_run(m, a, &in, out, err);
    arena_reset_to(a, mark);
    return st;
}
