/*
 * safetensors_internal.h — what the safetensors reader (safetensors.c) and writer
 * (safetensors_write.c) share: the format's constants, shape arithmetic, strict UTF-8 and the
 * error message naming a tensor. Not for other modules.
 */
#ifndef SDXL_IO_SAFETENSORS_INTERNAL_H
#define SDXL_IO_SAFETENSORS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/dtype.h"
#include "base/status.h"

/* The little-endian header length that starts a file; the header is padded to a multiple. */
#define ST_LENGTH_BYTES 8
/* The largest integer a JSON number (a double in cJSON) holds exactly. */
#define ST_JSON_MAX_EXACT 9007199254740992.0
/* How much of a (possibly huge, hostile) name a message quotes, so the problem still fits. */
#define ST_NAME_SHOWN 160

/* The header key that holds the string-to-string metadata instead of a tensor. */
#define ST_METADATA_KEY "__metadata__"

/* numel and nbytes of a shape; false when either does not fit in 64 bits. A zero dimension
 * makes the tensor empty whatever the others are, as in numpy and torch. */
bool st_shape_size(const uint64_t *shape, int ndim, dtype type, uint64_t *numel, uint64_t *nbytes);

/* Strict UTF-8 (as Rust's str::from_utf8, which the official reader applies to the header):
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
bool st_utf8_valid(const uint8_t *s, size_t n);

/* qsort comparison of two const char * by strcmp. */
int st_compare_strings(const void *a, const void *b);

/* "LABEL: tensor "NAME": PROBLEM", with the name cut so the problem is never truncated. */
sdxl_status st_tensor_error(sdxl_error *err, sdxl_status code, const char *label,
                            const char *name, const char *fmt, ...) SDXL_PRINTF(5, 6);

#endif /* SDXL_IO_SAFETENSORS_INTERNAL_H */
