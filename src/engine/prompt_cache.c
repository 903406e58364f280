/*
 * prompt_cache.c — the LRU cache of prompt embeddings (see prompt_cache.h).
 *
 * Entries live in a fixed array of `capacity` slots, found by a linear scan that compares a
 * 64-bit hash before the text: capacities are small (a lookup is nothing next to running the
 * text encoders it saves), so a scan beats keeping a hash table and a linked list in step.
 * Recency is a counter stamped on an entry at each use; the victim is the smallest stamp.
 */
#include "engine/prompt_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct cache_entry {
    char *text; /* owned copy of the key (not NUL-terminated: prompts may hold NUL) */
    size_t len;
    uint64_t hash;
    uint64_t last_used; /* 0: the slot is empty */
    float *values;      /* embeds_count + pooled_count floats (owned) */
} cache_entry;

struct prompt_cache {
    pthread_mutex_t lock;
    size_t capacity, embeds_count, pooled_count;
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

sdxl_status prompt_cache_create(size_t capacity, size_t embeds_count, size_t pooled_count,
                                prompt_cache **out, sdxl_error *err)
{
    *out = NULL;
    if (capacity > PROMPT_CACHE_MAX_ENTRIES)
        return error_set(err, SDXL_ERR_LIMIT,
                         "prompt cache: %zu entries is over the limit of %d; use fewer",
                         capacity, PROMPT_CACHE_MAX_ENTRIES);
    if (embeds_count == 0 || pooled_count == 0 ||
        embeds_count > SIZE_MAX / sizeof(float) / 2 - pooled_count)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "prompt cache: entries of %zu + %zu floats", embeds_count,
                         pooled_count);
    prompt_cache *c = calloc(1, sizeof *c);
    if (!c)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "prompt cache: out of memory");
    c->entries = calloc(capacity ? capacity : 1, sizeof *c->entries);
    if (!c->entries || pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c->entries);
        free(c);
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "prompt cache: out of memory");
    }
    c->capacity = capacity;
    c->embeds_count = embeds_count;
    c->pooled_count = pooled_count;
    c->stats.capacity = capacity;
    *out = c;
    return SDXL_OK;
}

void prompt_cache_free(prompt_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->capacity; i++) {
        free(c->entries[i].text);
        free(c->entries[i].values);
    }
    free(c->entries);
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

bool prompt_cache_get(prompt_cache *c, const char *text, size_t len, float *embeds,
                      float *pooled)
{
    uint64_t hash = text_hash(text, len);
    pthread_mutex_lock(&c->lock);
    cache_entry *e = find(c, text, len, hash);
    if (e) {
        memcpy(embeds, e->values, c->embeds_count * sizeof(float));
        memcpy(pooled, e->values + c->embeds_count, c->pooled_count * sizeof(float));
        e->last_used = ++c->clock;
        c->stats.hits++;
    } else {
        c->stats.misses++;
    }
    pthread_mutex_unlock(&c->lock);
    return e != NULL;
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

sdxl_status prompt_cache_put(prompt_cache *c, const char *text, size_t len, const float *embeds,
                             const float *pooled, sdxl_error *err)
{
    if (c->capacity == 0)
        return SDXL_OK;
    uint64_t hash = text_hash(text, len);
    sdxl_status st = SDXL_OK;
    pthread_mutex_lock(&c->lock);
    cache_entry *e = find(c, text, len, hash);
    if (!e) {
        e = victim(c);
        /* Every slot's values have the same size: an evicted entry's buffer is reused. */
        float *values = e->values
                            ? e->values
                            : malloc((c->embeds_count + c->pooled_count) * sizeof(float));
        char *copy = malloc(len ? len : 1);
        if (!values || !copy) {
            if (values != e->values)
                free(values);
            free(copy);
            st = error_set(err, SDXL_ERR_OUT_OF_MEMORY, "prompt cache: out of memory");
            goto done;
        }
        if (e->last_used) {
            c->stats.evictions++;
            c->stats.entries--;
        }
        free(e->text);
        memcpy(copy, text, len);
        *e = (cache_entry){.text = copy, .len = len, .hash = hash, .values = values};
        c->stats.entries++;
    }
    memcpy(e->values, embeds, c->embeds_count * sizeof(float));
    memcpy(e->values + c->embeds_count, pooled, c->pooled_count * sizeof(float));
    e->last_used = ++c->clock;
done:
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
