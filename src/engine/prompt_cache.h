/*
 * prompt_cache.h — the embeddings of recently encoded prompts, so that a client sending the
 * same prompt again (with a new image, a new seed) skips the tokenizers and text encoders.
 *
 * A least-recently-used cache of at most `capacity` entries, keyed by the exact bytes of the
 * prompt text. An entry holds what the text encoders made of that text for one batch row:
 * embeds (prompt_embeds [1, T, D]) and pooled (pooled_prompt_embeds [1, P]), as tensors of the
 * backend's compute type in the backend's memory (on a GPU, device memory: a hit or a store is
 * a copy on the device, never a trip through the host). A cache belongs to one loaded model,
 * and a positive and a negative prompt of the same text go through the same tokenizers and
 * encoders, so the text alone is the key. Entries are copied in and out bit for bit: a hit
 * gives exactly the values the encoders gave.
 *
 * The memory for every entry is taken when the cache is made (about 320 KB per entry for
 * sdxl-turbo in fp16, 640 KB in fp32), so a full cache cannot run out of memory later.
 * Capacity 0 disables the cache: every lookup misses, nothing is stored, no memory is taken.
 *
 * All functions are thread-safe: one cache serves every session of a model. Copies are queued
 * on the backend while the cache is locked, so they run in the order the calls were made (a
 * backend has one queue): a hit's copy out of an entry runs before a later store refills it.
 *
 *     prompt_cache *c;
 *     st = prompt_cache_create(be, 16, 77, 2048, 1280, &c, err);
 *     st = prompt_cache_get(c, text, len, &embeds_row, &pooled_row, &hit, err);
 *     if (!st && !hit) {
 *         ... run the encoders into embeds_row, pooled_row ...
 *         st = prompt_cache_put(c, text, len, &embeds_row, &pooled_row, err);
 *     }
 *     prompt_cache_free(c);
 */
#ifndef SDXL_ENGINE_PROMPT_CACHE_H
#define SDXL_ENGINE_PROMPT_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "base/status.h"

/* The largest capacity accepted (far more prompts than a server sees repeated). */
#define PROMPT_CACHE_MAX_ENTRIES 65536

typedef struct prompt_cache prompt_cache;

typedef struct prompt_cache_stats {
    uint64_t hits;      /* prompt_cache_get calls that found their text */
    uint64_t misses;    /* ... that did not (every call, when disabled) */
    uint64_t evictions; /* entries dropped to make room for a new one */
    size_t entries;     /* entries held now */
    size_t capacity;
    size_t bytes;       /* backend memory taken for the entries */
} prompt_cache_stats;

/* An empty cache on be for up to capacity entries of embeds [1, tokens, dim] and
 * pooled [1, pooled] (each size >= 1) in be's compute type. Fails when the entries' memory
 * cannot be had (SDXL_ERR_OUT_OF_MEMORY, saying how much) or a size is out of range. */
sdxl_status prompt_cache_create(backend *be, size_t capacity, int64_t tokens, int64_t dim,
                                int64_t pooled, prompt_cache **out, sdxl_error *err);
void prompt_cache_free(prompt_cache *c); /* NULL is fine */

/* Looks text[0..len) up. On a hit copies the entry into embeds and pooled (the shapes and
 * type above), makes it the most recently used and sets *hit; on a miss touches neither and
 * clears *hit. Fails only when the outputs do not fit the entries or the backend fails. */
sdxl_status prompt_cache_get(prompt_cache *c, const char *text, size_t len, tensor *embeds,
                             tensor *pooled, bool *hit, sdxl_error *err);

/* Stores a copy of text[0..len) with a copy of embeds and pooled as the most recently used
 * entry, replacing the entry of the same text if there is one, else evicting the least
 * recently used one when the cache is full. Does nothing (SDXL_OK) when the capacity is 0.
 * On failure (no memory for the text, tensors that do not fit, a backend error) the text is
 * not cached, and no entry answers with values that were not stored whole. */
sdxl_status prompt_cache_put(prompt_cache *c, const char *text, size_t len, const tensor *embeds,
                             const tensor *pooled, sdxl_error *err);

prompt_cache_stats prompt_cache_get_stats(prompt_cache *c);

#endif /* SDXL_ENGINE_PROMPT_CACHE_H */
