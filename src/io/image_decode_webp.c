/*
 * image_decode_webp.c — WEBP (lossy, lossless, with or without alpha) to RGB8 with libwebp.
 *
 * WebPGetFeatures reads only the headers, so the size is checked before the pixel buffer is
 * allocated; libwebp then decodes straight into that buffer (RGB, or RGBA that is flattened
 * over white). Animated files are refused: which frame would be meant is not knowable.
 */
#include <stdlib.h>

#include <webp/decode.h>

#include "io/image_decode.h"

static sdxl_status webp_failure(VP8StatusCode status, const char *stage, size_t size,
                                image_decode_info *info, sdxl_error *err)
{
    switch (status) {
    case VP8_STATUS_NOT_ENOUGH_DATA:
        return image_decode_fail(info, IMAGE_PROBLEM_TRUNCATED, SDXL_ERR_FORMAT, err,
                                 "WEBP data is truncated: %zu bytes end before the %s does; "
                                 "send the whole file",
                                 size, stage);
    case VP8_STATUS_OUT_OF_MEMORY:
        return image_decode_fail(info, IMAGE_PROBLEM_OUT_OF_MEMORY, SDXL_ERR_OUT_OF_MEMORY, err,
                                 "out of memory decoding a WEBP image");
    case VP8_STATUS_UNSUPPORTED_FEATURE:
        return image_decode_fail(info, IMAGE_PROBLEM_UNSUPPORTED, SDXL_ERR_UNSUPPORTED, err,
                                 "WEBP %s uses a feature libwebp does not support; re-encode "
                                 "the image",
                                 stage);
    default:
        return image_decode_fail(info, IMAGE_PROBLEM_CORRUPT, SDXL_ERR_FORMAT, err,
                                 "WEBP data is corrupt: libwebp could not parse the %s "
                                 "(VP8 status %d)",
                                 stage, (int)status);
    }
}

sdxl_status image_decode_webp(const uint8_t *data, size_t size, const image_limits *limits,
                              image *out, image_decode_info *info, sdxl_error *err)
{
    WebPDecoderConfig config;
    if (!WebPInitDecoderConfig(&config))
        return image_decode_fail(info, IMAGE_PROBLEM_UNSUPPORTED, SDXL_ERR_INTERNAL, err,
                                 "libwebp's decoder ABI does not match its header");
    VP8StatusCode status = WebPGetFeatures(data, size, &config.input);
    if (status != VP8_STATUS_OK)
        return webp_failure(status, "header", size, info, err);
    int width = config.input.width, height = config.input.height;
    sdxl_status st = image_decode_check_size((uint64_t)(width > 0 ? width : 0),
                                             (uint64_t)(height > 0 ? height : 0), limits, info,
                                             err);
    if (st != SDXL_OK)
        return st;
    if (config.input.has_animation)
        return image_decode_fail(info, IMAGE_PROBLEM_UNSUPPORTED, SDXL_ERR_UNSUPPORTED, err,
                                 "animated WEBP is not supported; send a single still image");

    int channels = config.input.has_alpha ? 4 : 3;
    size_t bytes = (size_t)width * (size_t)height * (size_t)channels;
    uint8_t *pixels = malloc(bytes);
    if (!pixels)
        return image_decode_fail(info, IMAGE_PROBLEM_OUT_OF_MEMORY, SDXL_ERR_OUT_OF_MEMORY, err,
                                 "out of memory decoding a %dx%d WEBP image", width, height);
    config.output.colorspace = channels == 4 ? MODE_RGBA : MODE_RGB;
    config.output.is_external_memory = 1;
    config.output.u.RGBA.rgba = pixels;
    config.output.u.RGBA.stride = width * channels;
    config.output.u.RGBA.size = bytes;
    status = WebPDecode(data, size, &config);
    WebPFreeDecBuffer(&config.output);
    if (status != VP8_STATUS_OK) {
        free(pixels);
        return webp_failure(status, "image data", size, info, err);
    }
    if (channels == 4) {
        image_flatten_rgba(pixels, (size_t)width * height);
        uint8_t *shrunk = realloc(pixels, (size_t)width * height * 3);
        if (shrunk)
            pixels = shrunk;
    }
    out->width = width;
    out->height = height;
    out->pixels = pixels;
    return SDXL_OK;
}
