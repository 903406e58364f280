/*
 * image_encode_webp.c — RGB8 to lossy WEBP in memory with libwebp.
 *
 * libwebp's output must be released with WebPFree, so it is copied into a malloc'd buffer that
 * image_buffer_free can release like every other encoder's.
 */
#include <stdlib.h>
#include <string.h>

#include <webp/encode.h>

#include "io/image_encode.h"

sdxl_status image_encode_webp(const image *img, int quality, image_buffer *out, sdxl_error *err)
{
    if (img->width > WEBP_MAX_DIMENSION || img->height > WEBP_MAX_DIMENSION)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "a %dx%d image is too large for WEBP (at most %d pixels a side); use "
                         "PNG or JPEG",
                         img->width, img->height, WEBP_MAX_DIMENSION);
    uint8_t *encoded = NULL;
    size_t size = WebPEncodeRGB(img->pixels, img->width, img->height, img->width * 3,
                                (float)quality, &encoded);
    if (size == 0) {
        WebPFree(encoded);
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY,
                         "libwebp failed to encode a %dx%d image (out of memory)", img->width,
                         img->height);
    }
    out->data = malloc(size);
    if (out->data) {
        memcpy(out->data, encoded, size);
        out->size = size;
    }
    WebPFree(encoded);
    if (!out->data)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "out of memory copying a %zu-byte WEBP",
                         size);
    return SDXL_OK;
}
