/*
 * tokenizer_buffer.c — capacity doubling for the tokenizer's arrays (see tokenizer_buffer.h).
 */
#include "engine/tokenizer_buffer.h"

#include <stdint.h>
#include <stdlib.h>

sdxl_status tokenizer_buffer_reserve(void **p, size_t *cap, size_t need, size_t elem,
                                     sdxl_error *err)
{
    if (need <= *cap)
        return SDXL_OK;
    size_t n = *cap ? *cap : 64;
    while (n < need) {
        if (n > SIZE_MAX / 2)
            return error_set(err, SDXL_ERR_OUT_OF_MEMORY,
                             "tokenizer: %zu elements do not fit in memory", need);
        n *= 2;
    }
    if (n > SIZE_MAX / elem)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY,
                         "tokenizer: %zu elements of %zu bytes do not fit in memory", n, elem);
    void *q = realloc(*p, n * elem);
    if (!q)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "tokenizer: out of memory (%zu bytes)",
                         n * elem);
    *p = q;
    *cap = n;
    return SDXL_OK;
}
