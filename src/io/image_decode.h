/*
 * image_decode.h — what the per-format decoders share (internal to src/io; see image.h).
 *
 * image_decode() checks the byte limit and the magic, then calls one decoder. A decoder reads
 * the header, calls image_decode_check_size before it allocates pixels, decodes, and reports
 * every failure through image_decode_fail so that the status, the message and info->problem
 * always agree.
 */
#ifndef SDXL_IO_IMAGE_DECODE_H
#define SDXL_IO_IMAGE_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "io/image.h"

/* Sets info->problem and err (code and formatted message); returns code. info is never NULL
 * inside the decoders (image_decode passes its own when the caller gave none). */
sdxl_status image_decode_fail(image_decode_info *info, image_problem problem, sdxl_status code,
                              sdxl_error *err, const char *fmt, ...) SDXL_PRINTF(5, 6);

/* Refuses a declared size of 0, or one over limits (a zero limit is no limit). */
sdxl_status image_decode_check_size(uint64_t width, uint64_t height, const image_limits *limits,
                                    image_decode_info *info, sdxl_error *err);

/* Composites n RGBA pixels over white in place, leaving n packed RGB pixels at the start. */
void image_flatten_rgba(uint8_t *pixels, size_t n);

sdxl_status image_decode_png(const uint8_t *data, size_t size, const image_limits *limits,
                             image *out, image_decode_info *info, sdxl_error *err);
sdxl_status image_decode_jpeg(const uint8_t *data, size_t size, const image_limits *limits,
                              image *out, image_decode_info *info, sdxl_error *err);
sdxl_status image_decode_webp(const uint8_t *data, size_t size, const image_limits *limits,
                              image *out, image_decode_info *info, sdxl_error *err);

#endif /* SDXL_IO_IMAGE_DECODE_H */
