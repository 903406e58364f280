/*
 * image.c — the image value, format names, limits and problem names (see image.h).
 */
#include "io/image.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

sdxl_status image_alloc(image *img, int width, int height, sdxl_error *err)
{
    memset(img, 0, sizeof *img);
    if (width < 1 || height < 1)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "image size %dx%d: width and height must be at least 1", width, height);
    size_t bytes = (size_t)width * (size_t)height;
    if (bytes > SIZE_MAX / 3)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "image size %dx%d does not fit in memory",
                         width, height);
    bytes *= 3;
    img->pixels = malloc(bytes);
    if (!img->pixels)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY,
                         "out of memory allocating a %dx%d image (%zu bytes)", width, height,
                         bytes);
    img->width = width;
    img->height = height;
    return SDXL_OK;
}

void image_free(image *img)
{
    free(img->pixels);
    memset(img, 0, sizeof *img);
}

void image_buffer_free(image_buffer *buf)
{
    free(buf->data);
    buf->data = NULL;
    buf->size = 0;
}

const char *image_format_name(image_format format)
{
    switch (format) {
    case IMAGE_FORMAT_PNG: return "PNG";
    case IMAGE_FORMAT_JPEG: return "JPEG";
    case IMAGE_FORMAT_WEBP: return "WEBP";
    }
    return "unknown";
}

const char *image_format_mime_type(image_format format)
{
    switch (format) {
    case IMAGE_FORMAT_PNG: return "image/png";
    case IMAGE_FORMAT_JPEG: return "image/jpeg";
    case IMAGE_FORMAT_WEBP: return "image/webp";
    }
    return "application/octet-stream";
}

bool image_format_parse(const char *name, image_format *out)
{
    static const struct {
        const char *name;
        image_format format;
    } names[] = {
        {"png", IMAGE_FORMAT_PNG},
        {"jpeg", IMAGE_FORMAT_JPEG},
        {"jpg", IMAGE_FORMAT_JPEG},
        {"webp", IMAGE_FORMAT_WEBP},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(name, names[i].name) == 0) {
            *out = names[i].format;
            return true;
        }
    }
    return false;
}

image_limits image_default_limits(void)
{
    return (image_limits){
        .max_bytes = 50u << 20,
        .max_pixels = 4096u * 4096u,
        .max_side = 8192,
    };
}

const char *image_problem_name(image_problem problem)
{
    switch (problem) {
    case IMAGE_PROBLEM_NONE: return "none";
    case IMAGE_PROBLEM_EMPTY: return "empty";
    case IMAGE_PROBLEM_UNKNOWN_FORMAT: return "unknown_format";
    case IMAGE_PROBLEM_TRUNCATED: return "truncated";
    case IMAGE_PROBLEM_CORRUPT: return "corrupt";
    case IMAGE_PROBLEM_UNSUPPORTED: return "unsupported";
    case IMAGE_PROBLEM_ZERO_SIZE: return "zero_size";
    case IMAGE_PROBLEM_TOO_MANY_BYTES: return "too_many_bytes";
    case IMAGE_PROBLEM_TOO_MANY_PIXELS: return "too_many_pixels";
    case IMAGE_PROBLEM_SIDE_TOO_LONG: return "side_too_long";
    case IMAGE_PROBLEM_TOO_MANY_SCANS: return "too_many_scans";
    case IMAGE_PROBLEM_OUT_OF_MEMORY: return "out_of_memory";
    }
    return "unknown";
}

bool image_problem_is_too_large(image_problem problem)
{
    return problem == IMAGE_PROBLEM_TOO_MANY_BYTES || problem == IMAGE_PROBLEM_TOO_MANY_PIXELS ||
           problem == IMAGE_PROBLEM_SIDE_TOO_LONG || problem == IMAGE_PROBLEM_TOO_MANY_SCANS;
}
