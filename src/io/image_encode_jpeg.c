/*
 * image_encode_jpeg.c — RGB8 to JPEG in memory with libjpeg (baseline, YCbCr 4:2:0 as libjpeg
 * and Pillow default to, optimised Huffman tables).
 *
 * libjpeg's error_exit would print and exit(): it is replaced by a longjmp back here, with the
 * message kept.
 */
#include <setjmp.h>
#include <stdio.h> /* jpeglib.h needs FILE */
#include <stdlib.h>

#include <jerror.h>
#include <jpeglib.h>

#include "io/image_encode.h"

/* Lives in the caller of the function that calls setjmp, so its fields keep their values
 * across the longjmp. */
typedef struct jpeg_encode {
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_mgr jerr;
    jmp_buf jump;
    unsigned char *data; /* jpeg_mem_dest's buffer: malloc'd by libjpeg, freed by us */
    unsigned long size;
    int msg_code;
    char message[JMSG_LENGTH_MAX];
} jpeg_encode;

static void jpeg_encode_error_exit(j_common_ptr cinfo)
{
    jpeg_encode *c = cinfo->client_data;
    c->msg_code = cinfo->err->msg_code;
    (*cinfo->err->format_message)(cinfo, c->message);
    longjmp(c->jump, 1);
}

static void jpeg_encode_output_message(j_common_ptr cinfo)
{
}

static bool jpeg_encode_run(jpeg_encode *c, const image *img, int quality)
{
    if (setjmp(c->jump))
        return false;
    jpeg_create_compress(&c->cinfo);
    jpeg_mem_dest(&c->cinfo, &c->data, &c->size);
    c->cinfo.image_width = (JDIMENSION)img->width;
    c->cinfo.image_height = (JDIMENSION)img->height;
    c->cinfo.input_components = 3;
    c->cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c->cinfo);
    jpeg_set_quality(&c->cinfo, quality, TRUE);
    c->cinfo.optimize_coding = TRUE;
    jpeg_start_compress(&c->cinfo, TRUE);
    size_t row = (size_t)img->width * 3;
    while (c->cinfo.next_scanline < c->cinfo.image_height) {
        JSAMPROW p = img->pixels + (size_t)c->cinfo.next_scanline * row;
        jpeg_write_scanlines(&c->cinfo, &p, 1);
    }
    jpeg_finish_compress(&c->cinfo);
    return true;
}

sdxl_status image_encode_jpeg(const image *img, int quality, image_buffer *out, sdxl_error *err)
{
    jpeg_encode *c = calloc(1, sizeof *c);
    if (!c)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "out of memory starting a JPEG encoder");
    c->cinfo.err = jpeg_std_error(&c->jerr);
    c->jerr.error_exit = jpeg_encode_error_exit;
    c->jerr.output_message = jpeg_encode_output_message;
    c->cinfo.client_data = c;
    bool ok = jpeg_encode_run(c, img, quality);
    jpeg_destroy_compress(&c->cinfo);
    sdxl_status st = SDXL_OK;
    if (!ok) {
        free(c->data);
        st = c->msg_code == JERR_OUT_OF_MEMORY
                 ? error_set(err, SDXL_ERR_OUT_OF_MEMORY,
                             "out of memory encoding a %dx%d JPEG image", img->width,
                             img->height)
                 : error_set(err, SDXL_ERR_INTERNAL,
                             "libjpeg failed to encode a %dx%d image: %s", img->width,
                             img->height, c->message);
    } else {
        out->data = c->data;
        out->size = c->size;
    }
    free(c);
    return st;
}
