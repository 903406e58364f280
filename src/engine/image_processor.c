/*
 * image_processor.c — diffusers' VaeImageProcessor for SDXL (see image_processor.h).
 *
 * The float operations are written one per statement, in diffusers' order, so that with
 * -ffp-contract=off each is rounded to float32 exactly where numpy or torch rounds it.
 */
#include "engine/image_processor.h"

#include <math.h>

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

void image_processor_normalize(const uint8_t *in, size_t n, float *out)
{
    for (size_t i = 0; i < n; i++) {
        float x = (float)in[i] / 255.0f; /* np.array(image).astype(np.float32) / 255.0 */
        float twice = 2.0f * x;          /* 2.0 * images - 1.0, one rounding per operation */
        out[i] = twice - 1.0f;
    }
}

void image_processor_denormalize(const float *in, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        float half = in[i] / 2.0f; /* (images / 2 + 0.5).clamp(0, 1) */
        float y = half + 0.5f;
        if (isnan(y)) {
            out[i] = 0;
            continue;
        }
        y = y < 0.0f ? 0.0f : y > 1.0f ? 1.0f : y;
        float scaled = y * 255.0f;          /* (images * 255) in float32 */
        out[i] = (uint8_t)nearbyintf(scaled); /* .round(): half to even (default rounding mode) */
    }
}

sdxl_status image_processor_preprocess(const image *img, int width, int height, float *out,
                                       sdxl_error *err)
{
    if (width < 1 || height < 1)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "preprocess to %dx%d: width and height must be at least 1", width,
                         height);
    if (img->width == width && img->height == height) {
        image_processor_normalize(img->pixels, (size_t)width * height * 3, out);
        return SDXL_OK;
    }
    image resized;
    sdxl_status st = image_resize_lanczos(img, width, height, &resized, err);
    if (st != SDXL_OK)
        return st;
    image_processor_normalize(resized.pixels, (size_t)width * height * 3, out);
    image_free(&resized);
    return SDXL_OK;
}

sdxl_status image_processor_postprocess(const float *in, int width, int height, image *out,
                                        sdxl_error *err)
{
    sdxl_status st = image_alloc(out, width, height, err);
    if (st != SDXL_OK)
        return st;
    image_processor_denormalize(in, (size_t)width * height * 3, out->pixels);
    return SDXL_OK;
}
