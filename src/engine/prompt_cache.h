/*
 * prompt_cache.h — the embeddings of recently encoded prompts, so that a client sending the
 * same prompt again (with a new image, a new seed) skips the tokenizers and text encoders.
 *
 * A least-recently-used cache of at most `capacity` entries, keyed by the exact bytes of the
 * prompt text. An entry holds what the text encoders made of that text for one batch row, as
 * host floats: embeds (prompt_embeds [T, D], T·D values) and pooled (pooled_prompt_embeds [P]).
 * A cache belongs to one loaded model, and a positive and a negative prompt of the same text
 * go through the same tokenizers and encoders, so the text alone is the key. Entries are copied
 * in and out bit for bit: a hit gives exactly the floats the encoders gave.
 *
 * Capacity 0 disables the cache: every lookup misses and nothing is stored. Memory is taken
 * as entries are added (about 630 KB each for sdxl-turbo), never more than capacity of them.
 * All functions are thread-safe: one cache serves every session of a model.
 *
 *     prompt_cache *c;
 *     st = prompt_cache_create(16, 77 * 2048, 1280, &c, err);
 *     if (!prompt_cache_get(c, text, len, embeds, pooled)) {
 *         ... run the encoders into embeds, pooled ...
 *         prompt_cache_put(c, text, len, embeds, pooled, err);
 *     }
 *     prompt_cache_free(c);
 */
#ifndef SDXL_ENGINE_PROMPT_CACHE_H
#define SDXL_ENGINE_PROMPT_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
} prompt_cache_stats;

/* An empty cache for up to capacity entries of embeds_count + pooled_count floats each
 * (both counts >= 1). */
sdxl_status prompt_cache_create(size_t capacity, size_t embeds_count, size_t pooled_count,
                                prompt_cache **out, sdxl_error *err);
void prompt_cache_free(prompt_cache *c); /* NULL is fine */

/* On a hit copies the entry for text[0..len) into embeds[embeds_count] and
 * pooled[pooled_count], makes it the most recently used, and returns true. On a miss touches
 * neither array and returns false. */
bool prompt_cache_get(prompt_cache *c, const char *text, size_t len, float *embeds,
                      float *pooled);

/* Stores a copy of text[0..len) with its embeds and pooled as the most recently used entry,
 * replacing the entry of the same text if there is one, else evicting the least recently used
 * one when the cache is full. Does nothing (SDXL_OK) when the capacity is 0. Fails only when
 * memory runs out; the cache then holds what it held before. */
sdxl_status prompt_cache_put(prompt_cache *c, const char *text, size_t len, const float *embeds,
                             const float *pooled, sdxl_error *err);

prompt_cache_stats prompt_cache_get_stats(prompt_cache *c);

#endif /* SDXL_ENGINE_PROMPT_CACHE_H */
