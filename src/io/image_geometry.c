/*
 * image_geometry.c — rearranging pixels without resampling: the centre crop and the eight EXIF
 * orientations.
 */
#include <string.h>

#include "io/image.h"

sdxl_status image_center_crop(const image *in, int width, int height, image *out,
                              sdxl_error *err)
{
    if (width < 1 || height < 1 || width > in->width || height > in->height)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "center crop to %dx%d: the size must be between 1x1 and the image's "
                         "%dx%d",
                         width, height, in->width, in->height);
    sdxl_status st = image_alloc(out, width, height, err);
    if (st != SDXL_OK)
        return st;
    size_t x0 = (size_t)(in->width / 2 - width / 2), y0 = (size_t)(in->height / 2 - height / 2);
    size_t in_row = (size_t)in->width * 3, out_row = (size_t)width * 3;
    for (size_t y = 0; y < (size_t)height; y++)
        memcpy(out->pixels + y * out_row, in->pixels + (y0 + y) * in_row + x0 * 3, out_row);
    return SDXL_OK;
}

sdxl_status image_apply_orientation(const image *in, int orientation, image *out,
                                    sdxl_error *err)
{
    /* 5..8 swap width and height. */
    bool swap = orientation >= 5 && orientation <= 8;
    int out_w = swap ? in->height : in->width, out_h = swap ? in->width : in->height;
    sdxl_status st = image_alloc(out, out_w, out_h, err);
    if (st != SDXL_OK)
        return st;
    int W = in->width, H = in->height;
    for (int y = 0; y < out_h; y++) {
        for (int x = 0; x < out_w; x++) {
            /* (sx, sy): the source pixel shown at (x, y), per PIL's Image.Transpose. */
            int sx, sy;
            switch (orientation) {
            case 2: sx = W - 1 - x; sy = y; break;          /* FLIP_LEFT_RIGHT */
            case 3: sx = W - 1 - x; sy = H - 1 - y; break;  /* ROTATE_180 */
            case 4: sx = x; sy = H - 1 - y; break;          /* FLIP_TOP_BOTTOM */
            case 5: sx = y; sy = x; break;                  /* TRANSPOSE */
            case 6: sx = y; sy = H - 1 - x; break;          /* ROTATE_270 (clockwise) */
            case 7: sx = W - 1 - y; sy = H - 1 - x; break;  /* TRANSVERSE */
            case 8: sx = W - 1 - y; sy = x; break;          /* ROTATE_90 (counter-clockwise) */
            default: sx = x; sy = y; break;
            }
            memcpy(out->pixels + ((size_t)y * out_w + x) * 3,
                   in->pixels + ((size_t)sy * W + sx) * 3, 3);
        }
    }
    return SDXL_OK;
}
