/*
 * image_decode_png.c — PNG to RGB8 with libpng, treating the data as hostile.
 *
 * The width and height are read from the IHDR chunk (always first, at a fixed offset) and
 * checked against the caller's limits before libpng is even started; libpng's own user limits
 * repeat them, ancillary chunks sdxld has no use for (text, ICC profiles, suggested palettes,
 * EXIF) are dropped unread, so a compressed zTXt or iCCP "bomb" costs nothing, and what libpng
 * may allocate per chunk is capped. libpng reports errors through a longjmp; its messages are
 * kept for ours and nothing is printed.
 */
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "io/image_decode.h"

#define PNG_SIGNATURE_BYTES 8
#define PNG_CHUNK_MALLOC_MAX (1u << 20)
#define PNG_CHUNK_CACHE_MAX 128

/* State shared with the libpng callbacks. It lives in the caller of the function that calls
 * setjmp, so its fields keep their values across the longjmp. */
typedef struct png_decode {
    const uint8_t *data;
    size_t size;
    size_t pos;
    bool truncated;
    bool out_of_memory;
    char message[192];
    png_structp png;
    png_infop info;
    uint8_t *pixels;
    png_bytepp rows;
    int channels;
} png_decode;

static void png_decode_read(png_structp png, png_bytep dst, size_t n)
{
    png_decode *c = png_get_io_ptr(png);
    if (n > c->size - c->pos) {
        c->truncated = true;
        png_error(png, "data ends early");
    }
    memcpy(dst, c->data + c->pos, n);
    c->pos += n;
}

static void png_decode_error(png_structp png, png_const_charp message)
{
    png_decode *c = png_get_error_ptr(png);
    snprintf(c->message, sizeof c->message, "%s", message);
    png_longjmp(png, 1);
}

static void png_decode_warning(png_structp png, png_const_charp message)
{
    /* Warnings are about ancillary chunks that are skipped anyway: keep stderr quiet. */
}

static uint32_t read_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Runs libpng; false on a libpng error (details in c). */
static bool png_decode_run(png_decode *c, const image_limits *limits)
{
    if (setjmp(png_jmpbuf(c->png)))
        return false;
    png_set_read_fn(c->png, c, png_decode_read);
    uint32_t side = limits->max_side > 0 ? (uint32_t)limits->max_side : PNG_UINT_31_MAX;
    png_set_user_limits(c->png, side, side);
    png_set_chunk_cache_max(c->png, PNG_CHUNK_CACHE_MAX);
    png_set_chunk_malloc_max(c->png, PNG_CHUNK_MALLOC_MAX);
    static const png_byte unused_chunks[] = "iCCP\0iTXt\0tEXt\0zTXt\0sPLT\0eXIf";
    png_set_keep_unknown_chunks(c->png, PNG_HANDLE_CHUNK_NEVER, NULL, 0);
    png_set_keep_unknown_chunks(c->png, PNG_HANDLE_CHUNK_NEVER, unused_chunks,
                                (int)(sizeof unused_chunks / 5));
    png_read_info(c->png, c->info);

    /* Everything to 8-bit RGB(A): palette and low bit depths expanded, tRNS to alpha, 16-bit
     * samples cut to their high byte (as Pillow does), gray replicated. */
    png_set_expand(c->png);
    png_set_strip_16(c->png);
    png_set_gray_to_rgb(c->png);
    png_set_interlace_handling(c->png);
    png_read_update_info(c->png, c->info);

    uint32_t width = png_get_image_width(c->png, c->info);
    uint32_t height = png_get_image_height(c->png, c->info);
    c->channels = png_get_channels(c->png, c->info);
    size_t row_bytes = png_get_rowbytes(c->png, c->info);
    if ((c->channels != 3 && c->channels != 4) || row_bytes != (size_t)width * c->channels)
        png_error(c->png, "unexpected layout after transformations");

    if (height > SIZE_MAX / row_bytes) {
        c->out_of_memory = true;
        return false;
    }
    c->pixels = malloc(row_bytes * height);
    c->rows = malloc(sizeof *c->rows * height);
    if (!c->pixels || !c->rows) {
        c->out_of_memory = true;
        return false;
    }
    for (uint32_t y = 0; y < height; y++)
        c->rows[y] = c->pixels + (size_t)y * row_bytes;
    png_read_image(c->png, c->rows);
    return true;
}

sdxl_status image_decode_png(const uint8_t *data, size_t size, const image_limits *limits,
                             image *out, image_decode_info *info, sdxl_error *err)
{
    /* Signature (8), then IHDR: length (4) "IHDR" (4) width (4) height (4) ... */
    if (size < PNG_SIGNATURE_BYTES + 16)
        return image_decode_fail(info, IMAGE_PROBLEM_TRUNCATED, SDXL_ERR_FORMAT, err,
                                 "PNG data is truncated: %zu bytes end before the IHDR header "
                                 "is complete; send the whole file",
                                 size);
    if (memcmp(data + PNG_SIGNATURE_BYTES + 4, "IHDR", 4) != 0)
        return image_decode_fail(info, IMAGE_PROBLEM_CORRUPT, SDXL_ERR_FORMAT, err,
                                 "PNG data is corrupt: the first chunk is not IHDR");
    uint32_t width = read_be32(data + PNG_SIGNATURE_BYTES + 8);
    uint32_t height = read_be32(data + PNG_SIGNATURE_BYTES + 12);
    sdxl_status st = image_decode_check_size(width, height, limits, info, err);
    if (st != SDXL_OK)
        return st;

    png_decode c = {.data = data, .size = size};
    c.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &c, png_decode_error,
                                   png_decode_warning);
    if (c.png)
        c.info = png_create_info_struct(c.png);
    bool ok = c.png && c.info && png_decode_run(&c, limits);
    if (!c.png || !c.info)
        c.out_of_memory = true;
    png_destroy_read_struct(&c.png, &c.info, NULL);
    free(c.rows);
    if (!ok) {
        free(c.pixels);
        if (c.out_of_memory)
            return image_decode_fail(info, IMAGE_PROBLEM_OUT_OF_MEMORY, SDXL_ERR_OUT_OF_MEMORY,
                                     err, "out of memory decoding a %ux%u PNG image", width,
                                     height);
        if (c.truncated || strstr(c.message, "Not enough image data"))
            return image_decode_fail(info, IMAGE_PROBLEM_TRUNCATED, SDXL_ERR_FORMAT, err,
                                     "PNG data is truncated (%zu bytes; libpng: %s); send the "
                                     "whole file",
                                     size, c.message);
        return image_decode_fail(info, IMAGE_PROBLEM_CORRUPT, SDXL_ERR_FORMAT, err,
                                 "PNG data is corrupt (libpng: %s)", c.message);
    }
    if (c.channels == 4) {
        image_flatten_rgba(c.pixels, (size_t)width * height);
        uint8_t *shrunk = realloc(c.pixels, (size_t)width * height * 3);
        if (shrunk)
            c.pixels = shrunk;
    }
    out->width = (int)width;
    out->height = (int)height;
    out->pixels = c.pixels;
    return SDXL_OK;
}
