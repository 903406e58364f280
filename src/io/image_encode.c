/*
 * image_encode.c — image_encode (checks, then the format's encoder) and the WEBP thumbnail.
 */
#include <string.h>

#include "io/image_encode.h"

image_encode_params image_encode_default_params(void)
{
    return (image_encode_params){.format = IMAGE_FORMAT_PNG, .quality = 90, .png_compression = 6};
}

static sdxl_status check_quality(int quality, sdxl_error *err)
{
    if (quality < 1 || quality > 100)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "image quality %d is out of range: use 1 (smallest) to 100 (best)",
                         quality);
    return SDXL_OK;
}

sdxl_status image_encode(const image *img, const image_encode_params *params, image_buffer *out,
                         sdxl_error *err)
{
    memset(out, 0, sizeof *out);
    if (img->width < 1 || img->height < 1 || !img->pixels)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "cannot encode an empty %dx%d image",
                         img->width, img->height);
    sdxl_status st;
    switch (params->format) {
    case IMAGE_FORMAT_PNG:
        if (params->png_compression < 0 || params->png_compression > 9)
            return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                             "PNG compression level %d is out of range: use 0 (fastest) to 9 "
                             "(smallest)",
                             params->png_compression);
        return image_encode_png(img, params->png_compression, out, err);
    case IMAGE_FORMAT_JPEG:
        st = check_quality(params->quality, err);
        return st != SDXL_OK ? st : image_encode_jpeg(img, params->quality, out, err);
    case IMAGE_FORMAT_WEBP:
        st = check_quality(params->quality, err);
        return st != SDXL_OK ? st : image_encode_webp(img, params->quality, out, err);
    }
    return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "unknown image format %d",
                     (int)params->format);
}

void image_thumbnail_size(int width, int height, int *thumb_width, int *thumb_height)
{
    long long longer = width > height ? width : height;
    long long shorter = width > height ? height : width;
    /* round(shorter · SIDE / longer), half up, in integers. */
    long long scaled = (2 * shorter * IMAGE_THUMBNAIL_SIDE + longer) / (2 * longer);
    if (scaled < 1)
        scaled = 1;
    *thumb_width = width > height ? IMAGE_THUMBNAIL_SIDE : (int)scaled;
    *thumb_height = width > height ? (int)scaled : IMAGE_THUMBNAIL_SIDE;
}

sdxl_status image_encode_thumbnail(const image *img, int quality, image_buffer *out,
                                   sdxl_error *err)
{
    memset(out, 0, sizeof *out);
    sdxl_status st = check_quality(quality, err);
    if (st != SDXL_OK)
        return st;
    if (img->width < 1 || img->height < 1 || !img->pixels)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "cannot make a thumbnail of an empty %dx%d image", img->width,
                         img->height);
    int w, h;
    image_thumbnail_size(img->width, img->height, &w, &h);
    image small;
    st = image_resize_lanczos(img, w, h, &small, err);
    if (st != SDXL_OK)
        return st;
    st = image_encode_webp(&small, quality, out, err);
    image_free(&small);
    return st;
}
