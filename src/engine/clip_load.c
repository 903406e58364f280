/*
 * clip_load.c — building a clip_model from a text encoder folder (see clip.h).
 *
 * Tensors are asked for in the order CLIPTextModel registers them (the order of clip_tensors.c
 * and of model.state_dict(); CLIPAttention registers k, v, q, out), so the first bad tensor an
 * error names is the first one in the file's own listing.
 */
#include "engine/clip.h"

#include <stdio.h>
#include <stdlib.h>

/* The name of encoder layer i's module NAME: LAYER "NAME", i. */
#define LAYER "text_model.encoder.layers.%d."

static sdxl_status load_layer(weights *w, const clip_config *cfg, int i, clip_layer *l,
                              sdxl_error *err)
{
    int64_t d = cfg->hidden_size, f = cfg->intermediate_size;
    char attn[WEIGHTS_PREFIX_MAX];
    SDXL_TRY(weights_prefix(attn, sizeof attn, err, LAYER "self_attn", i));
    SDXL_TRY(weights_load_linear_stack(w, attn, 3,
                                       (const char *const[]){[CLIP_K] = "k_proj",
                                                             [CLIP_V] = "v_proj",
                                                             [CLIP_Q] = "q_proj"},
                                       d, d, &l->kvq_w, &l->kvq_b, err));
    SDXL_TRY(weights_load_linear(w, d, d, &l->out_w, &l->out_b, err, LAYER "self_attn.out_proj",
                                 i));
    SDXL_TRY(weights_load_norm(w, d, &l->ln1_w, &l->ln1_b, err, LAYER "layer_norm1", i));
    SDXL_TRY(weights_load_linear(w, f, d, &l->fc1_w, &l->fc1_b, err, LAYER "mlp.fc1", i));
    SDXL_TRY(weights_load_linear(w, d, f, &l->fc2_w, &l->fc2_b, err, LAYER "mlp.fc2", i));
    return weights_load_norm(w, d, &l->ln2_w, &l->ln2_b, err, LAYER "layer_norm2", i);
}

static sdxl_status load_all(weights *w, clip_model *m, sdxl_error *err)
{
    const clip_config *cfg = &m->cfg;
    int64_t d = cfg->hidden_size;
    SDXL_TRY(weights_load(w, TENSOR_WEIGHT_EMBEDDING, 2, (int64_t[]){cfg->vocab_size, d},
                          &m->token_embedding, err,
                          "text_model.embeddings.token_embedding.weight"));
    SDXL_TRY(weights_load(w, TENSOR_WEIGHT_EMBEDDING, 2,
                          (int64_t[]){cfg->max_position_embeddings, d}, &m->position_embedding,
                          err, "text_model.embeddings.position_embedding.weight"));
    for (int i = 0; i < cfg->num_hidden_layers; i++)
        SDXL_TRY(load_layer(w, cfg, i, &m->layers[i], err));
    SDXL_TRY(weights_load_norm(w, d, &m->final_ln_w, &m->final_ln_b, err,
                               "text_model.final_layer_norm"));
    if (cfg->has_projection)
        SDXL_TRY(weights_load_linear(w, cfg->projection_dim, d, &m->text_projection, NULL, err,
                                     "text_projection"));
    return weights_finish(w, err);
}

sdxl_status clip_load(const char *model_dir, const char *component, backend *be,
                      weights_progress *progress, clip_model **out, sdxl_error *err)
{
    *out = NULL;
    char dir[1024];
    if (snprintf(dir, sizeof dir, "%s/%s", model_dir, component) >= (int)sizeof dir)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "model path too long: %s", model_dir);
    clip_model *m = calloc(1, sizeof *m);
    if (!m)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "%s: out of memory", dir);
    m->be = be;
    sdxl_status st = clip_config_load(dir, &m->cfg, err);
    if (st == SDXL_OK) {
        m->layers = calloc((size_t)m->cfg.num_hidden_layers, sizeof *m->layers);
        if (!m->layers)
            st = error_set(err, SDXL_ERR_OUT_OF_MEMORY, "%s: out of memory for %d layers", dir,
                           m->cfg.num_hidden_layers);
    }
    weights w;
    if (st == SDXL_OK)
        st = weights_open(&w, model_dir, component, "model", be, progress, err);
    if (st == SDXL_OK) {
        st = load_all(&w, m, err);
        weights_close(&w);
    }
    if (st != SDXL_OK) {
        clip_free(m);
        return st;
    }
    *out = m;
    return SDXL_OK;
}

static void layer_free(backend *be, clip_layer *l)
{
    tensor *own[] = {&l->ln1_w, &l->ln1_b, &l->kvq_w, &l->kvq_b, &l->out_w, &l->out_b,
                     &l->ln2_w, &l->ln2_b, &l->fc1_w, &l->fc1_b, &l->fc2_w, &l->fc2_b};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        backend_weight_free(be, own[i]);
}

void clip_free(clip_model *m)
{
    if (!m)
        return;
    backend *be = m->be;
    backend_weight_free(be, &m->token_embedding);
    backend_weight_free(be, &m->position_embedding);
    if (m->layers)
        for (int i = 0; i < m->cfg.num_hidden_layers; i++)
            layer_free(be, &m->layers[i]);
    free(m->layers);
    backend_weight_free(be, &m->final_ln_w);
    backend_weight_free(be, &m->final_ln_b);
    backend_weight_free(be, &m->text_projection);
    free(m);
}
