/*
 * arena.c — the bump allocator with a planning mode (see arena.h).
 *
 * Offsets, not addresses, are aligned: a planning arena has no base address, and aligning
 * offsets from a base that is itself aligned (ARENA_BLOCK_ALIGN for owned blocks) gives the same
 * addresses, so the plan and the real run place every allocation identically.
 */
#include "base/arena.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Rounds x up to a multiple of align (a power of two); false on overflow. */
static bool align_up(size_t x, size_t align, size_t *out)
{
    if (x > SIZE_MAX - (align - 1))
        return false;
    *out = (x + align - 1) & ~(align - 1);
    return true;
}

sdxl_status arena_init(arena *a, size_t capacity, sdxl_error *err)
{
    memset(a, 0, sizeof *a);
    size_t rounded;
    if (!align_up(capacity == 0 ? 1 : capacity, ARENA_BLOCK_ALIGN, &rounded))
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY,
                         "arena: %zu bytes cannot be allocated (size overflow)", capacity);
    unsigned char *base = aligned_alloc(ARENA_BLOCK_ALIGN, rounded);
    if (!base)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY,
                         "arena: cannot allocate %zu bytes; lower the image size or batch size, "
                         "or free memory",
                         capacity);
    a->base = base;
    a->capacity = capacity;
    a->owns_base = true;
    return SDXL_OK;
}

void arena_init_borrowed(arena *a, void *base, size_t capacity)
{
    memset(a, 0, sizeof *a);
    a->base = base;
    a->capacity = capacity;
}

void arena_init_planning(arena *a)
{
    memset(a, 0, sizeof *a);
    a->capacity = SIZE_MAX;
    a->planning = true;
}

void arena_free(arena *a)
{
    if (a->owns_base)
        free(a->base);
    memset(a, 0, sizeof *a);
}

/* The offsets [start, end) an allocation would take; false when it does not fit. */
static bool arena_place(const arena *a, size_t bytes, size_t align, size_t *start, size_t *end)
{
    if (align == 0)
        align = ARENA_DEFAULT_ALIGN;
    assert((align & (align - 1)) == 0 && align <= ARENA_BLOCK_ALIGN); /* a power of two */
    size_t rounded;
    if (!align_up(a->used, align, start) || !align_up(bytes, align, &rounded) ||
        rounded > SIZE_MAX - *start)
        return false;
    *end = *start + rounded;
    return *end <= a->capacity;
}

void *arena_alloc(arena *a, size_t bytes, size_t align)
{
    size_t start, end;
    if (!arena_place(a, bytes, align, &start, &end)) {
        /* A plan that overflows must not look small: make arena_init of its peak fail. */
        if (a->planning)
            a->peak = SIZE_MAX;
        return NULL;
    }
    a->used = end;
    if (end > a->peak)
        a->peak = end;
    return a->planning ? NULL : a->base + start;
}

bool arena_full(const arena *a, size_t bytes, size_t align)
{
    size_t start, end;
    return !arena_place(a, bytes, align, &start, &end);
}

arena_mark arena_get_mark(const arena *a)
{
    return a->used;
}

void arena_reset_to(arena *a, arena_mark mark)
{
    assert(mark <= a->used);
    a->used = mark;
}

size_t arena_peak(const arena *a)
{
    return a->peak;
}
