/*
 * image_processor.c — the host's part of diffusers' VaeImageProcessor for SDXL: the size and
 * the resize (see image_processor.h).
 */
#include "engine/image_processor.h"

sdxl_status image_processor_size(int image_width, int image_height, int requested_width,
                                 int requested_height, int vae_scale_factor, int *width,
                                 int *height, sdxl_error *err)
{
    if (vae_scale_factor < 1)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "vae_scale_factor %d: must be at least 1", vae_scale_factor);
    int w = requested_width > 0 ? requested_width : image_width;
    int h = requested_height > 0 ? requested_height : image_height;
    int w8 = w - w % vae_scale_factor, h8 = h - h % vae_scale_factor;
    if (w8 < 1 || h8 < 1)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "size %dx%d is smaller than the VAE's %d-pixel granularity; use an "
                         "image (or width and height) of at least %dx%d",
                         w, h, vae_scale_factor, vae_scale_factor, vae_scale_factor);
    *width = w8;
    *height = h8;
    return SDXL_OK;
}

sdxl_status image_processor_preprocess(const image *img, int width, int height, image *resized,
                                       const image **out, sdxl_error *err)
{
    if (width < 1 || height < 1)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "preprocess to %dx%d: width and height must be at least 1", width,
                         height);
    if (img->width == width && img->height == height) {
        *out = img;
        return SDXL_OK;
    }
    SDXL_TRY(image_resize_lanczos(img, width, height, resized, err));
    *out = resized;
    return SDXL_OK;
}
