/*
 * prompt_encoder.h — SDXL's text conditioning: a prompt (and a negative prompt) in, the UNet's
 * encoder_hidden_states and pooled text_embeds out, as diffusers 0.31's
 * StableDiffusionXLImg2ImgPipeline.encode_prompt (and StableDiffusionXLPipeline's, the same):
 *
 *   ids1 = tokenizer(text), ids2 = tokenizer_2(text)                  77 ids each (tokenizer.h)
 *   embeds = concat(text_encoder(ids1).hidden_states[-2],
 *                   text_encoder_2(ids2).hidden_states[-2])          [77, D1 + D2] = [77, 2048]
 *   pooled = text_encoder_2(ids2).text_embeds                        [P] = [1280]
 *
 * With classifier-free guidance the negative prompt goes the same way, except that with no
 * negative prompt at all (NULL) and model_index.json's force_zeros_for_empty_prompt (true for
 * SDXL) both negative embeddings are zeros. An empty negative prompt "" is encoded, as in
 * diffusers. A batch of B images repeats each row B times.
 *
 * Results are backend tensors in the caller's arena, laid out as the UNet takes them: no
 * copies between here and the UNet on the same backend. Recently encoded texts are kept in a
 * prompt cache (prompt_cache.h) when enabled: a repeated prompt skips the tokenizers and
 * encoders and gives bit-identical embeddings.
 *
 *     prompt_encoder *pe;
 *     st = prompt_encoder_load(model_dir, be, &(prompt_encoder_params){
 *                                  .shipped_vocab_dir = "models/vocab", .cache_entries = 16},
 *                              &pe, err);
 *     prompt_embeddings pr;
 *     st = prompt_encoder_encode(pe, graphs, arena, "a cat", NULL, guidance_scale > 1, batch,
 *                                &pr, err);
 *     ... unet_forward(..., &pr.embeds, &pr.pooled, ...) ...
 *     prompt_encoder_free(pe);
 *
 * The encoders run through the session's graph cache when one is given (graph_cache.h:
 * recorded once per arena layout, replayed after), directly when graphs is NULL.
 *
 * A loaded prompt encoder may be shared by several sessions (each with its own arena) at once:
 * its weights are read-only and its cache is locked.
 */
#ifndef SDXL_ENGINE_PROMPT_ENCODER_H
#define SDXL_ENGINE_PROMPT_ENCODER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "base/arena.h"
#include "engine/graph_cache.h"
#include "engine/prompt_cache.h"
#include "engine/weights.h"

typedef struct prompt_encoder prompt_encoder;

typedef struct prompt_encoder_params {
    /* The vocabulary (vocab.json, merges.txt) for tokenizer folders that have none, e.g. the
     * project's models/vocab; NULL: the folders must have theirs. */
    const char *shipped_vocab_dir;
    size_t cache_entries;       /* prompt cache size (texts); 0 disables it */
    weights_progress *progress; /* may be NULL */
} prompt_encoder_params;

/* Loads tokenizer/, tokenizer_2/, text_encoder/ and text_encoder_2/ of a diffusers SDXL
 * directory onto be, and reads force_zeros_for_empty_prompt from its model_index.json
 * (default true, as diffusers). Refuses a model whose parts do not fit together (token
 * lengths, a text_encoder_2 without text_projection). On failure *out is NULL. */
sdxl_status prompt_encoder_load(const char *model_dir, backend *be,
                                const prompt_encoder_params *params, prompt_encoder **out,
                                sdxl_error *err);
void prompt_encoder_free(prompt_encoder *pe); /* NULL is fine */

/* T (tokens per prompt, 77), D (embedding width, D1 + D2 = 2048) and P (pooled width, 1280):
 * the shapes below, and the UNet's cross_attention_dim and pooled input. */
int64_t prompt_encoder_tokens(const prompt_encoder *pe);
int64_t prompt_encoder_embed_dim(const prompt_encoder *pe);
int64_t prompt_encoder_pooled_dim(const prompt_encoder *pe);

/* The UNet's conditioning for one request, R = B rows (no guidance) or 2B rows with guidance:
 * B negative rows, then B positive rows (diffusers' torch.cat([negative, prompt])). */
typedef struct prompt_embeddings {
    tensor embeds; /* [R, T, D]: encoder_hidden_states */
    tensor pooled; /* [R, P]: added_cond_kwargs["text_embeds"] */
} prompt_embeddings;

/* Makes out's two tensors in a (they stay there, below the arena's mark on return) and fills
 * them for prompt (UTF-8, NUL-terminated; may be empty) and, when cfg, negative (NULL: none).
 * batch >= 1. On a planning arena the texts may be NULL and nothing runs: the arena records
 * the memory a real call takes (which does not depend on the texts). On failure the arena is
 * back where it was. */
sdxl_status prompt_encoder_encode(prompt_encoder *pe, graph_cache *graphs, arena *a,
                                  const char *prompt,
                                  const char *negative, bool cfg, int64_t batch,
                                  prompt_embeddings *out, sdxl_error *err);

/* The building block of prompt_encoder_encode, for callers that assemble their own batch
 * (e.g. different prompts per row): fills every row of embeds [n, T, D] and pooled [n, P]
 * (made by the caller, same n, of the backend's compute type) with text's embeddings.
 * Temporaries come from a and are released. On a planning arena text may be NULL. */
sdxl_status prompt_encoder_encode_rows(prompt_encoder *pe, graph_cache *graphs, arena *a,
                                       const char *text, tensor *embeds, tensor *pooled,
                                       sdxl_error *err);

/* Hits, misses and size of the prompt cache (for status and metrics). */
prompt_cache_stats prompt_encoder_cache_stats(const prompt_encoder *pe);

#endif /* SDXL_ENGINE_PROMPT_ENCODER_H */
