/*
 * prompt_encoder.c — SDXL's two tokenizers and text encoders behind one call (see
 * prompt_encoder.h).
 *
 * Every text is encoded once per call into the first of its rows, then copied to the others:
 * a batch row's bits do not depend on the batch, so this equals diffusers' repeat().
 */
#include "engine/prompt_encoder.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/log.h"
#include "engine/clip.h"
#include "engine/tokenizer.h"

struct prompt_encoder {
    backend *be;
    tokenizer *tok1, *tok2;     /* tokenizer/, tokenizer_2/ */
    clip_model *te1, *te2;      /* text_encoder/, text_encoder_2/ */
    int64_t tokens;             /* T */
    int64_t dim1, dim2, pooled; /* D1, D2, P */
    bool force_zeros;           /* model_index.json force_zeros_for_empty_prompt */
    prompt_cache *cache;        /* on be */
};

static sdxl_status read_force_zeros(const char *model_dir, bool *out, sdxl_error *err)
{
    char path[1024];
    if (snprintf(path, sizeof path, "%s/model_index.json", model_dir) >= (int)sizeof path)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "model path too long: %s", model_dir);
    json_doc doc;
    SDXL_TRY(json_doc_load(&doc, path, 0, err));
    sdxl_status st = json_get_bool_opt(&doc, json_doc_root(&doc), "force_zeros_for_empty_prompt",
                                       true, out, err);
    json_doc_free(&doc);
    return st;
}

static sdxl_status load_tokenizer(const char *model_dir, const char *name, tokenizer_kind kind,
                                  const char *shipped_vocab_dir, tokenizer **out,
                                  sdxl_error *err)
{
    char dir[1024];
    if (snprintf(dir, sizeof dir, "%s/%s", model_dir, name) >= (int)sizeof dir)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "model path too long: %s", model_dir);
    sdxl_status st = tokenizer_load(dir, kind, shipped_vocab_dir, out, err);
    return st ? error_prefix(err, st, "%s", dir) : SDXL_OK;
}

/* The parts must fit together as encode_prompt uses them. */
static sdxl_status check_parts(const char *model_dir, prompt_encoder *pe, sdxl_error *err)
{
    size_t t1 = tokenizer_max_length(pe->tok1), t2 = tokenizer_max_length(pe->tok2);
    const clip_config *c1 = &pe->te1->cfg, *c2 = &pe->te2->cfg;
    if (t1 != t2)
        return error_set(err, SDXL_ERR_FORMAT,
                         "%s: tokenizer makes %zu tokens per prompt but tokenizer_2 %zu; their "
                         "embeddings are concatenated token by token, so they must agree",
                         model_dir, t1, t2);
    if (t1 > (size_t)c1->max_position_embeddings || t1 > (size_t)c2->max_position_embeddings)
        return error_set(err, SDXL_ERR_FORMAT,
                         "%s: the tokenizers make %zu tokens per prompt but the text encoders "
                         "have %d and %d positions (max_position_embeddings)",
                         model_dir, t1, c1->max_position_embeddings,
                         c2->max_position_embeddings);
    if (!c2->has_projection)
        return error_set(err, SDXL_ERR_UNSUPPORTED,
                         "%s/text_encoder_2: SDXL's pooled embedding needs a "
                         "CLIPTextModelWithProjection, not a CLIPTextModel",
                         model_dir);
    pe->tokens = (int64_t)t1;
    pe->dim1 = c1->hidden_size;
    pe->dim2 = c2->hidden_size;
    pe->pooled = c2->projection_dim;
    return SDXL_OK;
}

static sdxl_status load_parts(const char *model_dir, const prompt_encoder_params *p,
                              prompt_encoder *pe, sdxl_error *err)
{
    SDXL_TRY(read_force_zeros(model_dir, &pe->force_zeros, err));
    SDXL_TRY(load_tokenizer(model_dir, "tokenizer", TOKENIZER_KIND_CLIP_L, p->shipped_vocab_dir,
                       &pe->tok1, err));
    SDXL_TRY(load_tokenizer(model_dir, "tokenizer_2", TOKENIZER_KIND_OPENCLIP, p->shipped_vocab_dir,
                       &pe->tok2, err));
    SDXL_TRY(clip_load(model_dir, "text_encoder", pe->be, p->progress, &pe->te1, err));
    SDXL_TRY(clip_load(model_dir, "text_encoder_2", pe->be, p->progress, &pe->te2, err));
    SDXL_TRY(check_parts(model_dir, pe, err));
    return prompt_cache_create(pe->be, p->cache_entries, pe->tokens, pe->dim1 + pe->dim2,
                               pe->pooled, &pe->cache, err);
}

sdxl_status prompt_encoder_load(const char *model_dir, backend *be,
                                const prompt_encoder_params *params, prompt_encoder **out,
                                sdxl_error *err)
{
    *out = NULL;
    prompt_encoder *pe = calloc(1, sizeof *pe);
    if (!pe)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "prompt encoder: out of memory");
    pe->be = be;
    sdxl_status st = load_parts(model_dir, params, pe, err);
    if (st != SDXL_OK) {
        prompt_encoder_free(pe);
        return st;
    }
    *out = pe;
    return SDXL_OK;
}

void prompt_encoder_free(prompt_encoder *pe)
{
    if (!pe)
        return;
    tokenizer_free(pe->tok1);
    tokenizer_free(pe->tok2);
    clip_free(pe->te1);
    clip_free(pe->te2);
    prompt_cache_free(pe->cache);
    free(pe);
}

int64_t prompt_encoder_tokens(const prompt_encoder *pe)
{
    return pe->tokens;
}

int64_t prompt_encoder_embed_dim(const prompt_encoder *pe)
{
    return pe->dim1 + pe->dim2;
}

int64_t prompt_encoder_pooled_dim(const prompt_encoder *pe)
{
    return pe->pooled;
}

prompt_cache_stats prompt_encoder_cache_stats(const prompt_encoder *pe)
{
    return prompt_cache_get_stats(pe->cache);
}

/* Both encoders on inputs already written, into embeds [1, T, D] and pooled [1, P]: no host
 * copy, so it can be recorded. */
typedef struct encoders_call {
    prompt_encoder *pe;
    arena *a;
    clip_inputs in1, in2;
    tensor h1, h2; // [1, T, D1], [1, T, D2]: each encoder's hidden_states[-2]
    tensor *embeds, *pooled;
} encoders_call;

typedef struct encoders_key {
    const prompt_encoder *pe;
    const void *ids1, *ids2, *h1, *h2, *embeds, *pooled;
} encoders_key;

static sdxl_status run_encoders_call(void *ctx, sdxl_error *err)
{
    encoders_call *c = ctx;
    sdxl_status st =
        clip_run(c->pe->te1, c->a, &c->in1, &(clip_outputs){.penultimate = &c->h1}, err);
    if (st)
        return error_prefix(err, st, "text_encoder");
    st = clip_run(c->pe->te2, c->a, &c->in2,
                  &(clip_outputs){.penultimate = &c->h2, .pooled = c->pooled}, err);
    if (st)
        return error_prefix(err, st, "text_encoder_2");
    return backend_concat_channels(c->pe->be, &c->h1, &c->h2, c->embeds, err);
}

/* Both encoders on ids1, ids2 [T] (NULL on a planning arena): embeds [1, T, D] and
 * pooled [1, P]. */
static sdxl_status run_encoders(prompt_encoder *pe, graph_cache *graphs, arena *a,
                                const int32_t *ids1, const int32_t *ids2, tensor *embeds,
                                tensor *pooled, sdxl_error *err)
{
    dtype type = backend_compute_type(pe->be);
    encoders_call c = {.pe = pe, .a = a, .embeds = embeds, .pooled = pooled};
    SDXL_TRY(tensor_alloc(&c.h1, a, type, 3, (int64_t[]){1, pe->tokens, pe->dim1}, err));
    SDXL_TRY(tensor_alloc(&c.h2, a, type, 3, (int64_t[]){1, pe->tokens, pe->dim2}, err));
    sdxl_status st = clip_inputs_make(pe->te1, a, ids1, 1, pe->tokens, &c.in1, err);
    if (st)
        return error_prefix(err, st, "text_encoder");
    st = clip_inputs_make(pe->te2, a, ids2, 1, pe->tokens, &c.in2, err);
    if (st)
        return error_prefix(err, st, "text_encoder_2");
    if (a->planning)
        return run_encoders_call(&c, err);
    encoders_key k;
    memset(&k, 0, sizeof k); /* compared as bytes: no stray padding */
    k.pe = pe;
    k.ids1 = c.in1.ids.data;
    k.ids2 = c.in2.ids.data;
    k.h1 = c.h1.data;
    k.h2 = c.h2.data;
    k.embeds = embeds->data;
    k.pooled = pooled->data;
    return graph_cache_run(graphs, pe->be, a, run_encoders_call, &c, &k, sizeof k,
                           "the text encoders", err);
}

/* ids [2T] (ids1 [T], then ids2 [T]; the caller frees) for text, by both tokenizers. */
static sdxl_status tokenize(const prompt_encoder *pe, const char *text, int32_t **ids,
                            sdxl_error *err)
{
    size_t t = (size_t)pe->tokens, len = strlen(text);
    *ids = malloc(2 * t * sizeof **ids);
    if (!*ids)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "prompt encoder: out of memory");
    tokenizer_encoding enc;
    SDXL_TRY(tokenizer_encode(pe->tok1, text, len, *ids, t, &enc, err));
    if (enc.truncated)
        LOG_WARNING("a prompt is longer than %zu tokens; the rest is ignored, as CLIP can "
                    "only handle sequences up to %zu tokens",
                    t - 2, t);
    return tokenizer_encode(pe->tok2, text, len, *ids + t, t, NULL, err);
}

/* Both tokenizers and encoders on text into embeds [1, T, D] and pooled [1, P]; on a planning
 * arena only the encoders' shapes and memory (text may be NULL). */
static sdxl_status encode_text(prompt_encoder *pe, graph_cache *graphs, arena *a,
                               const char *text, tensor *embeds, tensor *pooled, sdxl_error *err)
{
    int32_t *ids = NULL;
    sdxl_status st = a->planning ? SDXL_OK : tokenize(pe, text, &ids, err);
    if (st == SDXL_OK) {
        arena_mark mark = arena_get_mark(a);
        st = run_encoders(pe, graphs, a, ids, ids ? ids + pe->tokens : NULL, embeds, pooled,
                          err);
        arena_reset_to(a, mark);
    }
    free(ids);
    return st;
}

/* Copies row 0 of embeds [n, T, D] and pooled [n, P] to rows 1 .. n-1. */
static sdxl_status repeat_first_row(backend *be, const tensor *embeds, const tensor *pooled,
                                    sdxl_error *err)
{
    tensor e0, p0, e, p;
    SDXL_TRY(tensor_view_outer(&e0, embeds, 0, 1, err));
    SDXL_TRY(tensor_view_outer(&p0, pooled, 0, 1, err));
    for (int64_t r = 1; r < embeds->shape[0]; r++) {
        SDXL_TRY(tensor_view_outer(&e, embeds, r, 1, err));
        SDXL_TRY(tensor_view_outer(&p, pooled, r, 1, err));
        SDXL_TRY(backend_copy(be, &e0, &e, err));
        SDXL_TRY(backend_copy(be, &p0, &p, err));
    }
    return SDXL_OK;
}

/* Row 0 of embeds and pooled for text: from the cache, or from the encoders (then cached). */
static sdxl_status fill_first_row(prompt_encoder *pe, graph_cache *graphs, arena *a,
                                  const char *text, const tensor *embeds, const tensor *pooled,
                                  sdxl_error *err)
{
    tensor e0, p0;
    SDXL_TRY(tensor_view_outer(&e0, embeds, 0, 1, err));
    SDXL_TRY(tensor_view_outer(&p0, pooled, 0, 1, err));
    if (a->planning)
        return encode_text(pe, graphs, a, text, &e0, &p0, err);
    size_t len = strlen(text);
    bool hit;
    SDXL_TRY(prompt_cache_get(pe->cache, text, len, &e0, &p0, &hit, err));
    if (hit)
        return SDXL_OK;
    SDXL_TRY(encode_text(pe, graphs, a, text, &e0, &p0, err));
    sdxl_error cache_err;
    if (prompt_cache_put(pe->cache, text, len, &e0, &p0, &cache_err))
        LOG_WARNING("prompt cache: %s; the prompt was encoded but is not cached",
                    cache_err.message);
    return SDXL_OK;
}

sdxl_status prompt_encoder_encode_rows(prompt_encoder *pe, graph_cache *graphs, arena *a,
                                       const char *text, tensor *embeds, tensor *pooled,
                                       sdxl_error *err)
{
    char b1[64], b2[64];
    if (embeds->ndim != 3 || embeds->shape[1] != pe->tokens ||
        embeds->shape[2] != pe->dim1 + pe->dim2 || pooled->ndim != 2 ||
        pooled->shape[0] != embeds->shape[0] || pooled->shape[1] != pe->pooled)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "prompt encoder: outputs %s and %s; expected [n, %lld, %lld] and "
                         "[n, %lld]",
                         tensor_shape_str(embeds, b1, sizeof b1),
                         tensor_shape_str(pooled, b2, sizeof b2), (long long)pe->tokens,
                         (long long)(pe->dim1 + pe->dim2), (long long)pe->pooled);
    if (!text && !a->planning)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "prompt encoder: no prompt given");
    SDXL_TRY(fill_first_row(pe, graphs, a, text, embeds, pooled, err));
    return repeat_first_row(pe->be, embeds, pooled, err);
}

/* Rows of zeros: diffusers' zeros_like for an absent negative prompt. */
static sdxl_status zero_rows(prompt_encoder *pe, tensor *embeds, tensor *pooled,
                             sdxl_error *err)
{
    SDXL_TRY(backend_zero(pe->be, embeds, err));
    return backend_zero(pe->be, pooled, err);
}

static sdxl_status encode_request(prompt_encoder *pe, graph_cache *graphs, arena *a,
                                  const char *prompt, const char *negative, bool cfg,
                                  int64_t batch, prompt_embeddings *out, sdxl_error *err)
{
    dtype type = backend_compute_type(pe->be);
    int64_t rows = cfg ? 2 * batch : batch;
    SDXL_TRY(tensor_alloc(&out->embeds, a, type, 3,
                     (int64_t[]){rows, pe->tokens, pe->dim1 + pe->dim2}, err));
    SDXL_TRY(tensor_alloc(&out->pooled, a, type, 2, (int64_t[]){rows, pe->pooled}, err));
    tensor pos_e, pos_p, neg_e, neg_p; // the positive rows [B, ...] and the negative ones
    SDXL_TRY(tensor_view_outer(&pos_e, &out->embeds, rows - batch, batch, err));
    SDXL_TRY(tensor_view_outer(&pos_p, &out->pooled, rows - batch, batch, err));
    SDXL_TRY(prompt_encoder_encode_rows(pe, graphs, a, prompt, &pos_e, &pos_p, err));
    if (!cfg)
        return SDXL_OK;
    SDXL_TRY(tensor_view_outer(&neg_e, &out->embeds, 0, batch, err));
    SDXL_TRY(tensor_view_outer(&neg_p, &out->pooled, 0, batch, err));
    if (!negative && pe->force_zeros)
        return zero_rows(pe, &neg_e, &neg_p, err);
    return prompt_encoder_encode_rows(pe, graphs, a, negative ? negative : "", &neg_e, &neg_p,
                                      err);
}

sdxl_status prompt_encoder_encode(prompt_encoder *pe, graph_cache *graphs, arena *a,
                                  const char *prompt, const char *negative, bool cfg,
                                  int64_t batch, prompt_embeddings *out, sdxl_error *err)
{
    if (batch < 1 || batch > INT32_MAX / 2)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "prompt encoder: batch of %lld",
                         (long long)batch);
    arena_mark mark = arena_get_mark(a);
    sdxl_status st = encode_request(pe, graphs, a, prompt, negative, cfg, batch, out, err);
    if (st != SDXL_OK)
        arena_reset_to(a, mark);
    return st;
}
