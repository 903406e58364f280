/*
 * prompt_cache.c — the LRU cache of prompt embeddings (see prompt_cache.h).
 *
 * Entries live in a fixed array of `capacity` slots, found by a linear scan that compares a
 * 64-bit hash before the text: capacities are small (a lookup is nothing next to running the
 * text encoders it saves), so a scan beats keeping a hash table and a linked list in step.
 * Recency is a counter stamped on an entry at each use; the victim is the smallest stamp.
 * Each slot's two tensors are cut once, at creation, from one block of backend memory.
 */
#include "engine/prompt_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"

typedef struct cache_entry {
    char *text; /* owned copy of the key (not NUL-terminated: prompts may hold NUL) */
    size_t len;
    uint64_t hash;
    uint64_t last_used; /* 0: the slot is empty */
    tensor embeds;      /* [1, T, D] in the block */
    tensor pooled;      /* [1, P] in the block */
} cache_entry;

struct prompt_cache {
    pthread_mutex_t lock;
    backend *be;
    size_t capacity;
    void *block; /* backend memory under every slot's tensors; NULL when capacity is 0 */
    cache_entry *entries; /* capacity slots */
    uint64_t clock;       /* the last stamp given */
    prompt_cache_stats stats;
};

/* FNV-1a, 64-bit. */
static uint64_t text_hash(const char *text, size_t len)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)text[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Every slot's tensors from a (a planning arena measures the block). */
static sdxl_status cut_entries(prompt_cache *c, arena *a, int64_t tokens, int64_t dim,
                               int64_t pooled, sdxl_error *err)
{
    dtype type = backend_compute_type(c->be);
    for (size_t i = 0; i < c->capacity; i++) {
        cache_entry *e = &c->entries[i];
        SDXL_TRY(tensor_alloc(&e->embeds, a, type, 3, (int64_t[]){1, tokens, dim}, err));
        SDXL_TRY(tensor_alloc(&e->pooled, a, type, 2, (int64_t[]){1, pooled}, err));
    }
    return SDXL_OK;
}

/* The block and the slots' tensors in it. */
static sdxl_status take_memory(prompt_cache *c, int64_t tokens, int64_t dim, int64_t pooled,
                               sdxl_error *err)
{
    arena plan;
    arena_init_planning(&plan);
    SDXL_TRY(cut_entries(c, &plan, tokens, dim, pooled, err));
    size_t bytes = arena_peak(&plan);
    sdxl_status st = backend_buffer_alloc(c->be, bytes, &c->block, err);
    if (st)
        return error_prefix(err, st,
                            "prompt cache: %zu entries take %.1f MiB of %s memory; use fewer",
                            c->capacity, (double)bytes / (1 << 20), backend_name(c->be));
    arena a;
    arena_init_borrowed(&a, c->block, bytes);
    c->stats.bytes = bytes;
    return cut_entries(c, &a, tokens, dim, pooled, err);
}

sdxl_status prompt_cache_create(backend *be, size_t capacity, int64_t tokens, int64_t dim,
                                int64_t pooled, prompt_cache **out, sdxl_error *err)
{
    *out = NULL;
    if (capacity > PROMPT_CACHE_MAX_ENTRIES)
        return error_set(err, SDXL_ERR_LIMIT,
                         "prompt cache: %zu entries is over the limit of %d; use fewer",
                         capacity, PROMPT_CACHE_MAX_ENTRIES);
    if (tokens < 1 || dim < 1 || pooled < 1)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "prompt cache: entries of [1, %lld, %lld] and [1, %lld]",
                         (long long)tokens, (long long)dim, (long long)pooled);
    prompt_cache *c = calloc(1, sizeof *c);
    if (!c)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "prompt cache: out of memory");
    c->entries = calloc(capacity ? capacity : 1, sizeof *c->entries);
    if (!c->entries || pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c->entries);
        free(c);
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "prompt cache: out of memory");
    }
    c->be = be;
    c->capacity = capacity;
    c->stats.capacity = capacity;
    sdxl_status st = capacity ? take_memory(c, tokens, dim, pooled, err) : SDXL_OK;
    if (st) {
        prompt_cache_free(c);
        return st;
    }
    *out = c;
    return SDXL_OK;
}

void prompt_cache_free(prompt_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->capacity; i++)
        free(c->entries[i].text);
    free(c->entries);
    if (c->block)
        backend_buffer_free(c->be, c->block);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* The slot holding text, or NULL. Called under the lock. */
static cache_entry *find(prompt_cache *c, const char *text, size_t len, uint64_t hash)
{
    for (size_t i = 0; i < c->capacity; i++) {
        cache_entry *e = &c->entries[i];
        if (e->last_used && e->hash == hash && e->len == len && memcmp(e->text, text, len) == 0)
            return e;
    }
    return NULL;
}

/* Whether embeds and pooled have an entry's shapes and type (capacity >= 1). */
static sdxl_status check_fit(const prompt_cache *c, const tensor *embeds, const tensor *pooled,
                             sdxl_error *err)
{
    const cache_entry *e = &c->entries[0];
    if (embeds->type == e->embeds.type && pooled->type == e->pooled.type &&
        tensor_same_shape(embeds, &e->embeds) && tensor_same_shape(pooled, &e->pooled))
        return SDXL_OK;
    char b1[64], b2[64], b3[64], b4[64];
    return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                     "prompt cache: embeddings %s %s and %s %s; entries are %s %s and %s %s",
                     dtype_name(embeds->type), tensor_shape_str(embeds, b1, sizeof b1),
                     dtype_name(pooled->type), tensor_shape_str(pooled, b2, sizeof b2),
                     dtype_name(e->embeds.type), tensor_shape_str(&e->embeds, b3, sizeof b3),
                     dtype_name(e->pooled.type), tensor_shape_str(&e->pooled, b4, sizeof b4));
}

/* Both copies of an entry's values, from (embeds, pooled) to (embeds_to, pooled_to). */
static sdxl_status copy_values(backend *be, const tensor *embeds, const tensor *pooled,
                               tensor *embeds_to, tensor *pooled_to, sdxl_error *err)
{
    sdxl_status st = backend_copy(be, embeds, embeds_to, err);
    if (!st)
        st = backend_copy(be, pooled, pooled_to, err);
    return st ? error_prefix(err, st, "prompt cache") : SDXL_OK;
}

sdxl_status prompt_cache_get(prompt_cache *c, const char *text, size_t len, tensor *embeds,
                             tensor *pooled, bool *hit, sdxl_error *err)
{
    *hit = false;
    if (c->capacity)
        SDXL_TRY(check_fit(c, embeds, pooled, err));
    uint64_t hash = text_hash(text, len);
    sdxl_status st = SDXL_OK;
    pthread_mutex_lock(&c->lock);
    cache_entry *e = find(c, text, len, hash);
    *hit = e != NULL;
    if (e) {
        st = copy_values(c->be, &e->embeds, &e->pooled, embeds, pooled, err);
        e->last_used = ++c->clock;
        c->stats.hits++;
    } else {
        c->stats.misses++;
    }
    pthread_mutex_unlock(&c->lock);
    return st;
}

/* The slot a new entry goes to: an empty one, else the least recently used. Under the lock;
 * capacity >= 1. */
static cache_entry *victim(prompt_cache *c)
{
    cache_entry *v = &c->entries[0];
    for (size_t i = 0; i < c->capacity && v->last_used; i++)
        if (c->entries[i].last_used < v->last_used)
            v = &c->entries[i];
    return v;
}

/* Empties a slot (its tensors stay, for the next entry). Under the lock. */
static void drop(prompt_cache *c, cache_entry *e)
{
    if (e->last_used)
        c->stats.entries--;
    free(e->text);
    e->text = NULL;
    e->len = 0;
    e->last_used = 0;
}

/* The slot for text: its own, else a victim emptied and given a copy of text. Under the lock;
 * NULL when the copy cannot be made. */
static cache_entry *slot_for(prompt_cache *c, const char *text, size_t len, uint64_t hash)
{
    cache_entry *e = find(c, text, len, hash);
    if (e)
        return e;
    char *copy = malloc(len ? len : 1);
    if (!copy)
        return NULL;
    memcpy(copy, text, len);
    e = victim(c);
    if (e->last_used)
        c->stats.evictions++;
    drop(c, e);
    e->text = copy;
    e->len = len;
    e->hash = hash;
    return e;
}

sdxl_status prompt_cache_put(prompt_cache *c, const char *text, size_t len, const tensor *embeds,
                             const tensor *pooled, sdxl_error *err)
{
    if (c->capacity == 0)
        return SDXL_OK;
    SDXL_TRY(check_fit(c, embeds, pooled, err));
    uint64_t hash = text_hash(text, len);
    sdxl_status st = SDXL_OK;
    pthread_mutex_lock(&c->lock);
    cache_entry *e = slot_for(c, text, len, hash);
    if (!e) {
        st = error_set(err, SDXL_ERR_OUT_OF_MEMORY, "prompt cache: out of memory");
    } else {
        bool held = e->last_used != 0;
        st = copy_values(c->be, embeds, pooled, &e->embeds, &e->pooled, err);
        if (st) {
            drop(c, e); /* its values may be half overwritten */
        } else {
            if (!held)
                c->stats.entries++;
            e->last_used = ++c->clock;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return st;
}

prompt_cache_stats prompt_cache_get_stats(prompt_cache *c)
{
    pthread_mutex_lock(&c->lock);
    prompt_cache_stats s = c->stats;
    pthread_mutex_unlock(&c->lock);
    return s;
}
