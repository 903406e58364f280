/*
 * pipeline_layout.h — what a run keeps in its session's arena, stage by stage, and the plan
 * that sizes the arena before the run.
 *
 * The arena holds, in order: the latents (F32, the scheduler's sample from the first stage to
 * decoding) and the run's one upload of its inputs, then the text conditioning and time ids
 * (needed by every UNet step), then the current stage's tensors — the VAE encoder's, the
 * UNet's, then (after everything above the latents is released) the VAE decoder's. The run
 * and pipeline_plan make their allocations with the same *_alloc functions, in the same order,
 * and pipeline_plan runs every component over them on a planning arena, so the plan's peak is
 * the run's. Every size depends on the shape alone, not on the steps (the upload has room for
 * the most random draws any step count makes), so every request of one shape gets the same
 * addresses: what the recorded graphs' keys need (graph_cache.h).
 */
#ifndef SDXL_ENGINE_PIPELINE_LAYOUT_H
#define SDXL_ENGINE_PIPELINE_LAYOUT_H

#include "engine/pipeline.h"

/* SDXL's added time ids: original size (H, W), crop top-left (0, 0), target size (H, W). */
#define PIPELINE_TIME_IDS 6

/* Where each input of a run lies in run_tensors.inputs: offsets in floats. */
typedef struct input_layout {
    int64_t time_ids;  /* [R, 6] */
    int64_t timesteps; /* [max_timesteps] the UNet's t by schedule index */
    int64_t draws;     /* [max_draws, B, h, w, C]: row k holds each image's k-th random draw;
                        * TENSOR_ALIGN-aligned */
    int64_t max_timesteps, max_draws;
    int64_t draw_size; /* B·h·w·C: one row of draws */
    int64_t total;
} input_layout;

typedef struct run_tensors {
    tensor latents;          /* [B, h, w, C] F32 */
    arena_mark decode_from;  /* the arena's mark just above the latents */
    tensor inputs;           /* [input_layout.total] F32 */
} run_tensors;

typedef struct text_tensors {
    prompt_embeddings embeds; /* [R, T, D], [R, P]; R = pipeline_unet_rows */
    tensor time_ids;          /* [R, 6] F32 */
} text_tensors;

typedef struct encode_tensors {
    tensor pixels;   /* [1, H, W, 3] U8 the picture at the size asked for */
    tensor image;    /* [1, H, W, 3] the same in [-1, 1]; the VAE's type */
    tensor mean;     /* [1, h, w, C] the VAE's type */
    tensor logvar;   /* [1, h, w, C] */
    tensor mean32;   /* [1, h, w, C] F32, on the UNet's backend beside the latents */
    tensor logvar32; /* [1, h, w, C] F32 */
} encode_tensors;

typedef struct denoise_tensors {
    tensor timestep; /* [1] F32 */
    tensor latents;  /* [R, h, w, C] the UNet's (scaled) input */
    tensor pred;     /* [R, h, w, C] noise prediction */
    tensor scaled;   /* [B, h, w, C] F32: the scaled input, then the step's scratch */
    tensor pred32;   /* [R, h, w, C] F32: the prediction, guided in place */
} denoise_tensors;

typedef struct decode_tensors {
    tensor scaled;  /* [1, h, w, C] F32: one image's latents ÷ scaling factor */
    tensor latents; /* [1, h, w, C] the same in the VAE's type */
    tensor image;   /* [1, H, W, 3] the decoder's output, about [-1, 1] */
    tensor pixels;  /* [1, H, W, 3] U8 the decoded picture */
} decode_tensors;

/* UNet rows: the batch, or twice it with guidance (negative rows first). */
int pipeline_unet_rows(const pipeline_shape *sh);

input_layout pipeline_input_layout(const sdxl_model *m, const pipeline_shape *sh);
/* Elements first .. first + numel(shape) − 1 of t->inputs as a tensor of that shape. */
sdxl_status pipeline_input_view(const run_tensors *t, int64_t first, int ndim,
                                const int64_t *shape, tensor *view, sdxl_error *err);

sdxl_status pipeline_run_alloc(const sdxl_model *m, arena *a, const pipeline_shape *sh,
                               run_tensors *t, sdxl_error *err);
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
