/*
 * tokenizer_buffer.h — the one growth rule of the tokenizer's resizable arrays (the BPE tables
 * while vocab.json and merges.txt are read, and the per-call buffers of tokenizer_encode).
 */
#ifndef SDXL_ENGINE_TOKENIZER_BUFFER_H
#define SDXL_ENGINE_TOKENIZER_BUFFER_H

#include <stddef.h>

#include "base/status.h"

/* Makes *p (an array of *cap elements of elem bytes) hold at least need elements, doubling its
 * capacity so that appending one element at a time costs amortised O(1). On failure *p and *cap
 * are unchanged. */
sdxl_status tokenizer_buffer_reserve(void **p, size_t *cap, size_t need, size_t elem,
                                     sdxl_error *err);

#endif /* SDXL_ENGINE_TOKENIZER_BUFFER_H */
