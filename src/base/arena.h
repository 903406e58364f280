/*
 * arena.h — a bump allocator over one block, with a planning mode.
 *
 * Activation memory for a forward pass is carved from one arena: allocation is a pointer bump,
 * freeing is resetting to a mark. To size the block, run the same allocation sequence on a
 * planning arena (arena_init_planning): it hands out no memory (returns NULL) but records the
 * high-water mark, which arena_peak() then reports. Alignment is honoured in both modes, so the
 * plan is exact.
 *
 *     arena plan; arena_init_planning(&plan);
 *     run_allocations(&plan);                      // same calls, no memory touched
 *     arena real; arena_init(&real, arena_peak(&plan), err);
 */
#ifndef SDXL_BASE_ARENA_H
#define SDXL_BASE_ARENA_H

#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"

#define ARENA_DEFAULT_ALIGN 64
/* Owned blocks are aligned to this, the largest alignment arena_alloc accepts; a borrowed base
 * should be too (CUDA allocations are 256-byte aligned: pass at most 256 there). */
#define ARENA_BLOCK_ALIGN 4096

typedef struct arena {
    unsigned char *base; /* NULL in planning mode */
    size_t capacity;     /* SIZE_MAX in planning mode */
    size_t used;
    size_t peak;
    bool planning;
    bool owns_base;
} arena;

/* Allocates a block of capacity bytes (ARENA_BLOCK_ALIGN-aligned). */
sdxl_status arena_init(arena *a, size_t capacity, sdxl_error *err);
/* Uses caller-owned memory (e.g. device memory handed out by a backend); not freed. */
void arena_init_borrowed(arena *a, void *base, size_t capacity);
void arena_init_planning(arena *a);
void arena_free(arena *a);

/* bytes rounded up to align (a power of two up to ARENA_BLOCK_ALIGN; 0 means
 * ARENA_DEFAULT_ALIGN); NULL when full (or always, in planning mode —
 * use arena_full() to tell the two apart). */
void *arena_alloc(arena *a, size_t bytes, size_t align);
bool arena_full(const arena *a, size_t bytes, size_t align);

typedef size_t arena_mark;
arena_mark arena_get_mark(const arena *a);
void arena_reset_to(arena *a, arena_mark mark);
size_t arena_peak(const arena *a);

#endif /* SDXL_BASE_ARENA_H */
