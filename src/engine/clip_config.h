/*
 * clip_config.h — a CLIP text encoder's architecture, read from a transformers
 * text_encoder/config.json or text_encoder_2/config.json (CLIPTextConfig).
 *
 * SDXL has two: CLIP ViT-L (CLIPTextModel: 768 wide, 12 layers, quick_gelu) and OpenCLIP
 * ViT-bigG (CLIPTextModelWithProjection: 1280 wide, 32 layers, gelu, and a 1280×1280
 * text_projection whose output is the pooled embedding). Which of the two classes a config is
 * comes from its "architectures" list, since that decides whether text_projection exists.
 */
#ifndef SDXL_ENGINE_CLIP_CONFIG_H
#define SDXL_ENGINE_CLIP_CONFIG_H

#include <stdbool.h>

#include "base/status.h"

typedef enum clip_activation {
    CLIP_ACTIVATION_QUICK_GELU = 0, /* x · sigmoid(1.702 x) (OpenAI CLIP) */
    CLIP_ACTIVATION_GELU = 1,       /* exact erf GELU (OpenCLIP bigG) */
} clip_activation;

typedef struct clip_config {
    int vocab_size;              /* 49408 */
    int max_position_embeddings; /* 77: tokens per prompt, start and end included */
    int hidden_size;
    int intermediate_size; /* MLP width */
    int num_hidden_layers;
    int num_attention_heads;
    clip_activation hidden_act;
    float layer_norm_eps;
    bool has_projection; /* CLIPTextModelWithProjection: text_projection [projection_dim, hidden] */
    int projection_dim;  /* meaningful only with has_projection */
    /* The pooled output is taken at the first eos_token_id in the ids, except for configs
     * written before transformers fixed it (eos_token_id == 2, SDXL's), where it is taken at
     * the largest id — which is the first <|endoftext|> (49407) all the same. */
    int bos_token_id;
    int eos_token_id;
    int pad_token_id;
} clip_config;

/* Reads DIR/config.json. */
sdxl_status clip_config_load(const char *dir, clip_config *cfg, sdxl_error *err);

#endif /* SDXL_ENGINE_CLIP_CONFIG_H */
