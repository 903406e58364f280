/*
 * unet.h — the SDXL UNet (diffusers' UNet2DConditionModel as SDXL uses it): predicts the noise
 * in a latent, given a timestep, the text embeddings, the pooled text embedding and the time ids.
 *
 * Built from DIR/unet/config.json (unet_config.h) and loaded by diffusers' tensor names from
 * DIR/unet/diffusion_pytorch_model[.fp16].safetensors: a file whose tensors do not match the
 * config exactly is refused, naming the first missing, misshapen or unexpected tensor.
 *
 * The forward pass, as UNet2DConditionModel.forward:
 *   emb = time_embedding(sinusoids(t)) + add_embedding([pooled, sinusoids(time ids)])
 *   h = conv_in(latents); the down blocks (resnets, transformers in the CrossAttn ones, a
 *   stride-2 conv but at the last level) push every output as a skip connection; the mid block
 *   (resnet, transformer, resnet); the up blocks concatenate one skip per resnet and upsample
 *   to the next skip's size; then conv_out(SiLU(group_norm(h))).
 * Every activation is NHWC and comes from the caller's arena; the memory one call needs is
 * known before running it (unet_plan), so a request that does not fit is refused up front.
 *
 *     unet *u;
 *     st = unet_load(model_dir, be, &u, progress, err);
 *     size_t bytes;
 *     st = unet_plan(u, be, batch, h, w, 77, &bytes, err);   // arena space beyond the inputs
 *     ... make latents, timestep, text, pooled, time_ids and out in an arena with that much
 *     room, and write the inputs (backend_tensor_write) ...
 *     st = unet_forward(u, be, arena, &latents, &timestep, &text, &pooled, &time_ids, &out, err);
 *     unet_free(u);
 *
 * A loaded unet is read-only during unet_forward: several sessions (arenas) may share it.
 */
#ifndef SDXL_ENGINE_UNET_H
#define SDXL_ENGINE_UNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "base/arena.h"
#include "engine/resnet.h"
#include "engine/transformer.h"
#include "engine/unet_config.h"
#include "engine/weights.h"

/* Resnets per down block that sdxld accepts (SDXL has 2; the config reader allows more). */
#define UNET_MAX_LAYERS 16

/* DownBlock2D / CrossAttnDownBlock2D, or UpBlock2D / CrossAttnUpBlock2D. */
typedef struct unet_block {
    int n_layers;
    resnet *resnets;          /* n_layers (owned) */
    transformer *attentions;  /* n_layers, or NULL in a block without cross-attention (owned) */
    bool resample;            /* a downsampler (stride 2) or an upsampler (after 2x / to size) */
    tensor resample_w, resample_b; /* its conv: CONV [C, C, 3, 3], VECTOR [C] */
} unet_block;

typedef struct unet {
    unet_config cfg;
    int pooled_dim; /* pooled text embedding width (cfg minus the time ids' sinusoids) */
    tensor conv_in_w, conv_in_b;
    tensor time_1_w, time_1_b, time_2_w, time_2_b; /* time_embedding.linear_1/2 */
    tensor add_1_w, add_1_b, add_2_w, add_2_b;     /* add_embedding.linear_1/2 */
    unet_block down[UNET_MAX_BLOCKS];
    resnet mid_resnets[2];
    transformer mid_attention;
    unet_block up[UNET_MAX_BLOCKS]; /* up block i works at level n_blocks - 1 - i */
    tensor norm_out_w, norm_out_b;  /* conv_norm_out */
    tensor conv_out_w, conv_out_b;
    backend *be; /* the backend the weights live on */
} unet;

/* Reads model_dir/unet/config.json and the weights onto be. progress may be NULL. On failure
 * *out is NULL and nothing stays allocated. */
sdxl_status unet_load(const char *model_dir, backend *be, unet **out, weights_progress *progress,
                      sdxl_error *err);
/* Frees the weights and the unet (NULL is fine). */
void unet_free(unet *u);

/* Checks every shape of a forward pass on latents [batch, height, width, in_channels] with
 * context_tokens text tokens and reports the arena bytes unet_forward needs beyond its inputs
 * and output, wherever they lie in the arena. */
sdxl_status unet_plan(const unet *u, backend *be, int64_t batch, int64_t height, int64_t width,
                      int64_t context_tokens, size_t *bytes, sdxl_error *err);

/* One noise prediction, the same timestep for every image of the batch:
 *   latents [B, h, w, in_channels]   (already scaled by the scheduler's scale_model_input)
 *   timestep [1] F32                 (a tensor, so that a recorded call reads it anew)
 *   text    [B, T, cross_attention_dim]   (prompt embeddings, T = 77 for SDXL)
 *   pooled  [B, pooled_dim]               (text_encoder_2's pooled projection)
 *   time_ids [B, 6]   (original height, width, crop top, left, target height, width)
 *   out     [B, h, w, out_channels]   (already made; not one of the inputs)
 * Temporaries come from a and are released before returning. Any h, w >= 1 (odd sides are
 * handled as diffusers does). When every upsampling doubles the size (h and w divisible by
 * 2^(levels - 1), e.g. 64x64) the call makes no host copy, so a backend can record it
 * (unet_graph.h); other sizes write index tables for the upsampling. */
sdxl_status unet_forward(const unet *u, backend *be, arena *a, const tensor *latents,
                         const tensor *timestep, const tensor *text, const tensor *pooled,
                         const tensor *time_ids, tensor *out, sdxl_error *err);

#endif /* SDXL_ENGINE_UNET_H */
