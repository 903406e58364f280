/*
 * clip_tensors.c — the CLIP text encoder's tensor list (see clip_tensors.h), following
 * transformers' CLIPTextTransformer in registration order (CLIPAttention registers k, v, q,
 * out).
 */
#include "engine/clip_tensors.h"

#include <stdio.h>

sdxl_status clip_tensors_for_each(const clip_config *cfg, model_tensor_fn fn, void *ctx,
                                  sdxl_error *err)
{
    model_tensor_sink s;
    model_tensor_sink_init(&s, fn, ctx, err);
    int d = cfg->hidden_size, ff = cfg->intermediate_size;
    model_tensor_emit(&s, MODEL_TENSOR_EMBEDDING, 2, (int64_t[]){cfg->vocab_size, d},
                      "text_model.embeddings.token_embedding.weight");
    model_tensor_emit(&s, MODEL_TENSOR_EMBEDDING, 2, (int64_t[]){cfg->max_position_embeddings, d},
                      "text_model.embeddings.position_embedding.weight");
    for (int i = 0; i < cfg->num_hidden_layers; i++) {
        char layer[MODEL_TENSOR_MAX_NAME];
        snprintf(layer, sizeof layer, "text_model.encoder.layers.%d", i);
        model_tensor_emit_linear(&s, d, d, true, "%s.self_attn.k_proj", layer);
        model_tensor_emit_linear(&s, d, d, true, "%s.self_attn.v_proj", layer);
        model_tensor_emit_linear(&s, d, d, true, "%s.self_attn.q_proj", layer);
        model_tensor_emit_linear(&s, d, d, true, "%s.self_attn.out_proj", layer);
        model_tensor_emit_norm(&s, d, "%s.layer_norm1", layer);
        model_tensor_emit_linear(&s, ff, d, true, "%s.mlp.fc1", layer);
        model_tensor_emit_linear(&s, d, ff, true, "%s.mlp.fc2", layer);
        model_tensor_emit_norm(&s, d, "%s.layer_norm2", layer);
    }
    model_tensor_emit_norm(&s, d, "text_model.final_layer_norm");
    if (cfg->has_projection)
        model_tensor_emit_linear(&s, cfg->projection_dim, d, false, "text_projection");
    return s.status;
}
