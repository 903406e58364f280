/*
 * pipeline_layout.h — what a run keeps in its session's arena, stage by stage, and the plan
 * that sizes the arena before the run.
 *
 * The arena holds, in order: the text conditioning and time ids (needed by every UNet step),
 * then the current stage's tensors — the VAE encoder's, the UNet's, then (after everything
 * above is released) the VAE decoder's. The run and pipeline_plan make their allocations with
 * the same *_alloc functions, in the same order, and pipeline_plan runs every component over
 * them on a planning arena, so the plan's peak is the run's.
 */
#ifndef SDXL_ENGINE_PIPELINE_LAYOUT_H
#define SDXL_ENGINE_PIPELINE_LAYOUT_H

#include "engine/pipeline.h"

/* SDXL's added time ids: original size (H, W), crop top-left (0, 0), target size (H, W). */
#define PIPELINE_TIME_IDS 6

typedef struct text_tensors {
    prompt_embeddings embeds; /* [R, T, D], [R, P]; R = pipeline_unet_rows */
    tensor time_ids;          /* [R, 6] F32 */
} text_tensors;

typedef struct encode_tensors {
    tensor image;  /* [1, H, W, 3] the preprocessed picture */
    tensor mean;   /* [1, h, w, C] */
    tensor logvar; /* [1, h, w, C] */
    tensor noise;  /* [1, h, w, C] one image's ε */
    tensor sample; /* [1, h, w, C] mean + exp(logvar / 2) · ε */
} encode_tensors;

typedef struct denoise_tensors {
    tensor timestep; /* [1] F32 */
    tensor latents; /* [R, h, w, C] scaled UNet input */
    tensor pred;    /* [R, h, w, C] noise prediction */
} denoise_tensors;

typedef struct decode_tensors {
    tensor latents; /* [1, h, w, C] one image's latents ÷ scaling factor */
    tensor image;   /* [1, H, W, 3] */
} decode_tensors;

/* UNet rows: the batch, or twice it with guidance (negative rows first). */
int pipeline_unet_rows(const pipeline_shape *sh);

/* Encodes the texts into the arena (prompt and negative may be NULL on a planning arena),
 * through graphs (NULL: directly), and makes the time ids (not written). */
sdxl_status pipeline_text_alloc(const sdxl_model *m, graph_cache *graphs, arena *a,
                                const pipeline_shape *sh,
                                const char *prompt, const char *negative, text_tensors *t,
                                sdxl_error *err);
sdxl_status pipeline_encode_alloc(const sdxl_model *m, arena *a, const pipeline_shape *sh,
                                  encode_tensors *t, sdxl_error *err);
sdxl_status pipeline_denoise_alloc(const sdxl_model *m, arena *a, const pipeline_shape *sh,
                                   denoise_tensors *t, sdxl_error *err);
sdxl_status pipeline_decode_alloc(const sdxl_model *m, arena *a, const pipeline_shape *sh,
                                  decode_tensors *t, sdxl_error *err);

#endif /* SDXL_ENGINE_PIPELINE_LAYOUT_H */
