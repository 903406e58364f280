/*
 * image_encode_png.c — RGB8 to PNG in memory with libpng (8-bit RGB, not interlaced).
 *
 * libpng reports errors through a longjmp, as on reading; its messages are kept and nothing
 * is printed.
 */
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "io/image_encode.h"

/* State shared with the libpng callbacks; lives in the caller of the function that calls
 * setjmp, so its fields keep their values across the longjmp. */
typedef struct png_encode {
    png_structp png;
    png_infop info;
    uint8_t *data;
    size_t size;
    size_t capacity;
    bool out_of_memory;
    char message[192];
} png_encode;

static void png_encode_write(png_structp png, png_bytep src, size_t n)
{
    png_encode *c = png_get_io_ptr(png);
    if (n > c->capacity - c->size) {
        size_t want = c->capacity ? c->capacity : 1 << 16;
        while (want - c->size < n) {
            if (want > SIZE_MAX / 2) {
                c->out_of_memory = true;
                png_error(png, "output too large");
            }
            want *= 2;
        }
        uint8_t *grown = realloc(c->data, want);
        if (!grown) {
            c->out_of_memory = true;
            png_error(png, "out of memory");
        }
        c->data = grown;
        c->capacity = want;
    }
    memcpy(c->data + c->size, src, n);
    c->size += n;
}

static void png_encode_flush(png_structp png)
{
}

static void png_encode_error(png_structp png, png_const_charp message)
{
    png_encode *c = png_get_error_ptr(png);
    snprintf(c->message, sizeof c->message, "%s", message);
    png_longjmp(png, 1);
}

static void png_encode_warning(png_structp png, png_const_charp message)
{
}

static bool png_encode_run(png_encode *c, const image *img, int compression)
{
    if (setjmp(png_jmpbuf(c->png)))
        return false;
    png_set_write_fn(c->png, c, png_encode_write, png_encode_flush);
    png_set_compression_level(c->png, compression);
    png_set_IHDR(c->png, c->info, (uint32_t)img->width, (uint32_t)img->height, 8,
                 PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(c->png, c->info);
    size_t row = (size_t)img->width * 3;
    for (int y = 0; y < img->height; y++)
        png_write_row(c->png, img->pixels + (size_t)y * row);
    png_write_end(c->png, NULL);
    return true;
}

sdxl_status image_encode_png(const image *img, int compression, image_buffer *out,
                             sdxl_error *err)
{
    png_encode c = {0};
    c.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &c, png_encode_error,
                                    png_encode_warning);
    if (c.png)
        c.info = png_create_info_struct(c.png);
    bool ok = c.png && c.info && png_encode_run(&c, img, compression);
    if (!c.png || !c.info)
        c.out_of_memory = true;
    png_destroy_write_struct(&c.png, &c.info);
    if (!ok) {
        free(c.data);
        if (c.out_of_memory)
            return error_set(err, SDXL_ERR_OUT_OF_MEMORY,
                             "out of memory encoding a %dx%d PNG image", img->width,
                             img->height);
        return error_set(err, SDXL_ERR_INTERNAL, "libpng failed to encode a %dx%d image: %s",
                         img->width, img->height, c.message);
    }
    out->data = c.data;
    out->size = c.size;
    return SDXL_OK;
}
