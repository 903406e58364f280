/*
 * image_decode_jpeg.c — JPEG to RGB8 with libjpeg(-turbo), treating the data as hostile.
 *
 * libjpeg's default error handler prints and calls exit(): it is replaced by one that keeps the
 * message and longjmps back here, and its output_message is silenced. The source manager reads
 * the caller's buffer and reports running out of data as truncation (the stock memory source
 * would invent an end marker and return a half-grey image). The header is read first and the
 * size checked before jpeg_start_decompress allocates anything image-sized; a progress monitor
 * stops progressive files with more than IMAGE_JPEG_MAX_SCANS scans.
 *
 * Colour: grayscale, YCbCr and RGB JPEGs are decoded to RGB by libjpeg, as Pillow does. CMYK
 * and YCCK are decoded to CMYK by libjpeg and converted as Pillow's open + convert("RGB") does
 * (Adobe's inverted polarity, then Pillow's integer cmyk2rgb; see cmyk_to_rgb). The EXIF
 * orientation of the first "Exif" APP1 segment is applied last.
 */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

#include "io/image_decode.h"

/* State shared with the libjpeg callbacks. It lives in the caller of the functions that call
 * setjmp, so its fields keep their values across the longjmp. */
typedef struct jpeg_decode {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr jerr;
    struct jpeg_source_mgr src;
    struct jpeg_progress_mgr progress;
    jmp_buf jump;
    bool truncated;
    bool too_many_scans;
    bool out_of_memory;
    int msg_code;
    char message[JMSG_LENGTH_MAX];
    uint8_t *pixels;
    uint8_t *cmyk_row;
} jpeg_decode;

static void jpeg_decode_error_exit(j_common_ptr cinfo)
{
    jpeg_decode *c = cinfo->client_data;
    c->msg_code = cinfo->err->msg_code;
    (*cinfo->err->format_message)(cinfo, c->message);
    longjmp(c->jump, 1);
}

static void jpeg_decode_output_message(j_common_ptr cinfo)
{
    /* Warnings (corrupt data that libjpeg recovers from) are not printed. */
}

static void jpeg_decode_init_source(j_decompress_ptr cinfo)
{
}

static void jpeg_decode_term_source(j_decompress_ptr cinfo)
{
}

static boolean jpeg_decode_fill_input_buffer(j_decompress_ptr cinfo)
{
    jpeg_decode *c = cinfo->client_data;
    c->truncated = true;
    ERREXIT(cinfo, JERR_INPUT_EOF);
    return FALSE;
}

static void jpeg_decode_skip_input_data(j_decompress_ptr cinfo, long n)
{
    if (n <= 0)
        return;
    if ((unsigned long)n > cinfo->src->bytes_in_buffer)
        jpeg_decode_fill_input_buffer(cinfo);
    cinfo->src->next_input_byte += n;
    cinfo->src->bytes_in_buffer -= (size_t)n;
}

static void jpeg_decode_progress(j_common_ptr cinfo)
{
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    jpeg_decode *c = cinfo->client_data;
    if (d->input_scan_number > IMAGE_JPEG_MAX_SCANS) {
        c->too_many_scans = true;
        longjmp(c->jump, 1);
    }
}

static bool jpeg_decode_header(jpeg_decode *c, const uint8_t *data, size_t size)
{
    if (setjmp(c->jump))
        return false;
    jpeg_create_decompress(&c->cinfo);
    c->src = (struct jpeg_source_mgr){
        .next_input_byte = data,
        .bytes_in_buffer = size,
        .init_source = jpeg_decode_init_source,
        .fill_input_buffer = jpeg_decode_fill_input_buffer,
        .skip_input_data = jpeg_decode_skip_input_data,
        .resync_to_restart = jpeg_resync_to_restart,
        .term_source = jpeg_decode_term_source,
    };
    c->cinfo.src = &c->src;
    c->progress.progress_monitor = jpeg_decode_progress;
    c->cinfo.progress = &c->progress;
    jpeg_save_markers(&c->cinfo, JPEG_APP0 + 1, 0xffff);
    jpeg_read_header(&c->cinfo, TRUE);
    return true;
}

/* Pillow's MULDIV255: a·b/255 rounded, without a division. */
static int muldiv255(int a, int b)
{
    int t = a * b + 128;
    return ((t >> 8) + t) >> 8;
}

/* One row of libjpeg's CMYK output (Adobe files store it inverted) to RGB, as Pillow's
 * "CMYK;I" unpacker followed by convert("RGB") does. */
static void cmyk_to_rgb(const uint8_t *cmyk, uint8_t *rgb, int width)
{
    for (int x = 0; x < width; x++, cmyk += 4, rgb += 3) {
        int k = cmyk[3]; /* 255 − the inverted K that Pillow unpacks */
        for (int i = 0; i < 3; i++) {
            int v = k - muldiv255(255 - cmyk[i], k);
            rgb[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
}

static bool jpeg_decode_pixels(jpeg_decode *c, bool cmyk)
{
    if (setjmp(c->jump))
        return false;
    c->cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(&c->cinfo);
    size_t width = c->cinfo.output_width, height = c->cinfo.output_height;
    if (c->cinfo.output_components != (cmyk ? 4 : 3))
        ERREXIT(&c->cinfo, JERR_BAD_J_COLORSPACE);
    c->pixels = malloc(width * height * 3);
    if (cmyk)
        c->cmyk_row = malloc(width * 4);
    if (!c->pixels || (cmyk && !c->cmyk_row)) {
        c->out_of_memory = true;
        return false;
    }
    while (c->cinfo.output_scanline < height) {
        uint8_t *dst = c->pixels + (size_t)c->cinfo.output_scanline * width * 3;
        JSAMPROW row = cmyk ? c->cmyk_row : dst;
        if (jpeg_read_scanlines(&c->cinfo, &row, 1) != 1)
            ERREXIT(&c->cinfo, JERR_INPUT_EOF);
        if (cmyk)
            cmyk_to_rgb(c->cmyk_row, dst, (int)width);
    }
    /* Not jpeg_finish_decompress: every pixel is in, and what follows the last scan (markers,
     * the end marker itself) changes nothing. */
    return true;
}

static int jpeg_exif_orientation(j_decompress_ptr cinfo)
{
    for (jpeg_saved_marker_ptr m = cinfo->marker_list; m; m = m->next) {
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 &&
            memcmp(m->data, "Exif\0\0", 6) == 0)
            return image_exif_orientation(m->data, m->data_length);
    }
    return 1;
}

static sdxl_status jpeg_decode_failure(const jpeg_decode *c, size_t size, image_decode_info *info,
                                       sdxl_error *err)
{
    if (c->truncated)
        return image_decode_fail(info, IMAGE_PROBLEM_TRUNCATED, SDXL_ERR_FORMAT, err,
                                 "JPEG data is truncated: %zu bytes end before the image does; "
                                 "send the whole file",
                                 size);
    if (c->too_many_scans)
        return image_decode_fail(info, IMAGE_PROBLEM_TOO_MANY_SCANS, SDXL_ERR_LIMIT, err,
                                 "progressive JPEG has more than %d scans (a decoding-time "
                                 "bomb); re-encode it as a baseline JPEG",
                                 IMAGE_JPEG_MAX_SCANS);
    if (c->out_of_memory || c->msg_code == JERR_OUT_OF_MEMORY)
        return image_decode_fail(info, IMAGE_PROBLEM_OUT_OF_MEMORY, SDXL_ERR_OUT_OF_MEMORY, err,
                                 "out of memory decoding a %ux%u JPEG image",
                                 c->cinfo.image_width, c->cinfo.image_height);
    switch (c->msg_code) {
    case JERR_EMPTY_IMAGE:
        return image_decode_fail(info, IMAGE_PROBLEM_ZERO_SIZE, SDXL_ERR_FORMAT, err,
                                 "JPEG header declares an image with a width or height of 0: "
                                 "an image needs at least one pixel; the file is corrupt");
    case JERR_IMAGE_TOO_BIG:
        return image_decode_fail(info, IMAGE_PROBLEM_SIDE_TOO_LONG, SDXL_ERR_LIMIT, err,
                                 "JPEG image is larger than libjpeg can decode (libjpeg: %s); "
                                 "downscale the image",
                                 c->message);
    case JERR_BAD_PRECISION:
    case JERR_SOF_UNSUPPORTED:
    case JERR_NOT_COMPILED:
        return image_decode_fail(info, IMAGE_PROBLEM_UNSUPPORTED, SDXL_ERR_UNSUPPORTED, err,
                                 "JPEG variant is not supported (libjpeg: %s); re-encode it as "
                                 "an 8-bit baseline or progressive JPEG",
                                 c->message);
    default:
        return image_decode_fail(info, IMAGE_PROBLEM_CORRUPT, SDXL_ERR_FORMAT, err,
                                 "JPEG data is corrupt (libjpeg: %s)", c->message);
    }
}

sdxl_status image_decode_jpeg(const uint8_t *data, size_t size, const image_limits *limits,
                              image *out, image_decode_info *info, sdxl_error *err)
{
    jpeg_decode *c = calloc(1, sizeof *c);
    if (!c)
        return image_decode_fail(info, IMAGE_PROBLEM_OUT_OF_MEMORY, SDXL_ERR_OUT_OF_MEMORY, err,
                                 "out of memory starting a JPEG decoder");
    c->cinfo.err = jpeg_std_error(&c->jerr);
    c->jerr.error_exit = jpeg_decode_error_exit;
    c->jerr.output_message = jpeg_decode_output_message;
    c->cinfo.client_data = c;

    sdxl_status st = SDXL_OK;
    image decoded = {0};
    if (!jpeg_decode_header(c, data, size)) {
        st = jpeg_decode_failure(c, size, info, err);
        goto done;
    }
    st = image_decode_check_size(c->cinfo.image_width, c->cinfo.image_height, limits, info, err);
    if (st != SDXL_OK)
        goto done;
    J_COLOR_SPACE space = c->cinfo.jpeg_color_space;
    bool cmyk = space == JCS_CMYK || space == JCS_YCCK;
    if (!cmyk && space != JCS_GRAYSCALE && space != JCS_YCbCr && space != JCS_RGB) {
        st = image_decode_fail(info, IMAGE_PROBLEM_UNSUPPORTED, SDXL_ERR_UNSUPPORTED, err,
                               "JPEG with %d colour components of unknown meaning is not "
                               "supported; re-encode it as RGB or grayscale",
                               c->cinfo.num_components);
        goto done;
    }
    info->orientation = jpeg_exif_orientation(&c->cinfo);
    if (!jpeg_decode_pixels(c, cmyk)) {
        st = jpeg_decode_failure(c, size, info, err);
        goto done;
    }
    decoded = (image){.width = (int)c->cinfo.output_width,
                      .height = (int)c->cinfo.output_height,
                      .pixels = c->pixels};
    c->pixels = NULL;
    if (info->orientation == 1) {
        *out = decoded;
    } else {
        st = image_apply_orientation(&decoded, info->orientation, out, err);
        image_free(&decoded);
        if (st != SDXL_OK)
            info->problem = IMAGE_PROBLEM_OUT_OF_MEMORY;
    }
done:
    jpeg_destroy_decompress(&c->cinfo);
    free(c->pixels);
    free(c->cmyk_row);
    free(c);
    return st;
}
