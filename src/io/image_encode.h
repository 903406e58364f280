/*
 * image_encode.h — the per-format encoders behind image_encode (internal to src/io).
 *
 * Each takes an image with width, height >= 1 and parameters already range-checked, and fills
 * out with a malloc'd buffer.
 */
#ifndef SDXL_IO_IMAGE_ENCODE_H
#define SDXL_IO_IMAGE_ENCODE_H

#include "io/image.h"

sdxl_status image_encode_png(const image *img, int compression, image_buffer *out,
                             sdxl_error *err);
sdxl_status image_encode_jpeg(const image *img, int quality, image_buffer *out, sdxl_error *err);
sdxl_status image_encode_webp(const image *img, int quality, image_buffer *out, sdxl_error *err);

#endif /* SDXL_IO_IMAGE_ENCODE_H */
