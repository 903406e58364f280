/*
 * image_decode.c — image_decode: the byte limit, format sniffing by magic bytes, and what the
 * format decoders share (size checks, failure reporting, alpha flattening).
 */
#include "io/image_decode.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
static const uint8_t jpeg_magic[3] = {0xff, 0xd8, 0xff};

sdxl_status image_decode_fail(image_decode_info *info, image_problem problem, sdxl_status code,
                              sdxl_error *err, const char *fmt, ...)
{
    info->problem = problem;
    char message[SDXL_ERROR_MESSAGE_MAX];
    va_list args;
    va_start(args, fmt);
    vsnprintf(message, sizeof message, fmt, args);
    va_end(args);
    return error_set(err, code, "%s", message);
}

sdxl_status image_decode_check_size(uint64_t width, uint64_t height, const image_limits *limits,
                                    image_decode_info *info, sdxl_error *err)
{
    const char *name = image_format_name(info->format);
    if (width == 0 || height == 0)
        return image_decode_fail(info, IMAGE_PROBLEM_ZERO_SIZE, SDXL_ERR_FORMAT, err,
                                 "%s header declares a %llux%llu image: an image needs at least "
                                 "one pixel; the file is corrupt",
                                 name, (unsigned long long)width, (unsigned long long)height);
    if (limits->max_side > 0 && (width > (uint64_t)limits->max_side ||
                                 height > (uint64_t)limits->max_side))
        return image_decode_fail(info, IMAGE_PROBLEM_SIDE_TOO_LONG, SDXL_ERR_LIMIT, err,
                                 "%s image is %llux%llu: a side is longer than the limit of %d "
                                 "pixels; downscale the image",
                                 name, (unsigned long long)width, (unsigned long long)height,
                                 limits->max_side);
    /* Both sides fit in 32 bits in every supported format, so the product cannot wrap. */
    uint64_t pixels = width * height;
    if (limits->max_pixels > 0 && pixels > (uint64_t)limits->max_pixels)
        return image_decode_fail(info, IMAGE_PROBLEM_TOO_MANY_PIXELS, SDXL_ERR_LIMIT, err,
                                 "%s image is %llux%llu = %llu pixels, over the limit of %zu "
                                 "pixels; downscale the image",
                                 name, (unsigned long long)width, (unsigned long long)height,
                                 (unsigned long long)pixels, limits->max_pixels);
    return SDXL_OK;
}

void image_flatten_rgba(uint8_t *pixels, size_t n)
{
    /* Forward in place: pixel i's 3 output bytes never overtake its 4 input bytes. */
    for (size_t i = 0; i < n; i++) {
        const uint8_t *src = pixels + 4 * i;
        uint8_t *dst = pixels + 3 * i;
        unsigned a = src[3], white = 255u * (255u - a);
        uint8_t r = (uint8_t)((src[0] * a + white + 127u) / 255u);
        uint8_t g = (uint8_t)((src[1] * a + white + 127u) / 255u);
        uint8_t b = (uint8_t)((src[2] * a + white + 127u) / 255u);
        dst[0] = r;
        dst[1] = g;
        dst[2] = b;
    }
}

/* Formats clients send by mistake, named so the message says what the bytes are. */
static const char *known_unsupported_format(const uint8_t *d, size_t n)
{
    if (n >= 6 && (memcmp(d, "GIF87a", 6) == 0 || memcmp(d, "GIF89a", 6) == 0))
        return "GIF";
    if (n >= 4 && (memcmp(d, "II*\0", 4) == 0 || memcmp(d, "MM\0*", 4) == 0))
        return "TIFF";
    if (n >= 12 && memcmp(d + 4, "ftyp", 4) == 0) {
        if (memcmp(d + 8, "avif", 4) == 0 || memcmp(d + 8, "avis", 4) == 0)
            return "AVIF";
        if (memcmp(d + 8, "heic", 4) == 0 || memcmp(d + 8, "heix", 4) == 0 ||
            memcmp(d + 8, "mif1", 4) == 0)
            return "HEIF";
    }
    if (n >= 2 && d[0] == 0xff && d[1] == 0x0a)
        return "JPEG XL";
    if (n >= 2 && d[0] == 'B' && d[1] == 'M')
        return "BMP";
    if (n >= 4 && memcmp(d, "%PDF", 4) == 0)
        return "PDF";
    return NULL;
}

/* True when d[0..n) is a proper prefix of magic[0..m). */
static bool is_prefix_of(const uint8_t *d, size_t n, const uint8_t *magic, size_t m)
{
    return n < m && memcmp(d, magic, n) == 0;
}

sdxl_status image_sniff_format(const void *data, size_t size, image_format *out,
                               sdxl_error *err)
{
    const uint8_t *d = data;
    if (size == 0)
        return error_set(err, SDXL_ERR_FORMAT, "image data is empty (0 bytes); send a PNG, JPEG "
                                               "or WEBP file's bytes");
    if (size >= sizeof png_magic && memcmp(d, png_magic, sizeof png_magic) == 0) {
        *out = IMAGE_FORMAT_PNG;
        return SDXL_OK;
    }
    if (size >= sizeof jpeg_magic && memcmp(d, jpeg_magic, sizeof jpeg_magic) == 0) {
        *out = IMAGE_FORMAT_JPEG;
        return SDXL_OK;
    }
    if (size >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBP", 4) == 0) {
        *out = IMAGE_FORMAT_WEBP;
        return SDXL_OK;
    }
    /* WEBP's signature is "RIFF", a 4-byte size, "WEBP": any start of "RIFF" in fewer than 12
     * bytes may be one. */
    bool webp_start = size < 12 && memcmp(d, "RIFF", size < 4 ? size : 4) == 0;
    if (is_prefix_of(d, size, png_magic, sizeof png_magic) ||
        is_prefix_of(d, size, jpeg_magic, sizeof jpeg_magic) || webp_start)
        return error_set(err, SDXL_ERR_FORMAT,
                         "image data is truncated: it ends after %zu bytes, inside the "
                         "signature; send the whole file",
                         size);

    char seen[8 * 3 + 1] = "";
    size_t shown = size < 8 ? size : 8, used = 0;
    for (size_t i = 0; i < shown; i++)
        used += (size_t)snprintf(seen + used, sizeof seen - used, "%s%02x", i ? " " : "", d[i]);
    char text[9] = "";
    for (size_t i = 0; i < shown; i++)
        text[i] = d[i] >= 0x20 && d[i] < 0x7f ? (char)d[i] : '.'; /* ASCII, whatever the locale */
    const char *known = known_unsupported_format(d, size);
    if (known)
        return error_set(err, SDXL_ERR_UNSUPPORTED,
                         "image format %s is not supported (first bytes %s \"%s\"); convert the "
                         "image to PNG, JPEG or WEBP",
                         known, seen, text);
    return error_set(err, SDXL_ERR_UNSUPPORTED,
                     "unrecognised image format: the first bytes %s \"%s\" are not the "
                     "signature of PNG, JPEG or WEBP; send one of those",
                     seen, text);
}

sdxl_status image_decode(const void *data, size_t size, const image_limits *limits, image *out,
                         image_decode_info *info, sdxl_error *err)
{
    image_decode_info local;
    if (!info)
        info = &local;
    *info = (image_decode_info){.format = IMAGE_FORMAT_PNG, .orientation = 1};
    memset(out, 0, sizeof *out);
    image_limits none = {0};
    if (!limits)
        limits = &none;

    if (limits->max_bytes > 0 && size > limits->max_bytes)
        return image_decode_fail(info, IMAGE_PROBLEM_TOO_MANY_BYTES, SDXL_ERR_LIMIT, err,
                                 "image is %zu bytes, over the limit of %zu bytes; send a "
                                 "smaller or more compressed image",
                                 size, limits->max_bytes);
    sdxl_status st = image_sniff_format(data, size, &info->format, err);
    if (st != SDXL_OK) {
        info->problem = size == 0                    ? IMAGE_PROBLEM_EMPTY
                        : st == SDXL_ERR_UNSUPPORTED ? IMAGE_PROBLEM_UNKNOWN_FORMAT
                                                     : IMAGE_PROBLEM_TRUNCATED;
        return st;
    }
    switch (info->format) {
    case IMAGE_FORMAT_PNG: st = image_decode_png(data, size, limits, out, info, err); break;
    case IMAGE_FORMAT_JPEG: st = image_decode_jpeg(data, size, limits, out, info, err); break;
    case IMAGE_FORMAT_WEBP: st = image_decode_webp(data, size, limits, out, info, err); break;
    }
    if (st != SDXL_OK)
        image_free(out);
    return st;
}
