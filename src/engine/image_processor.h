/*
 * image_processor.h — pixels to the VAE's input and the VAE's output to pixels, exactly as
 * diffusers' VaeImageProcessor does in the SDXL pipelines (vae_scale_factor = 2^(number of VAE
 * blocks − 1), resample "lanczos", do_normalize; no RGB or grayscale conversion).
 *
 * Preprocess (img2img):  size = each side rounded DOWN to a multiple of vae_scale_factor
 *                        (get_default_height_width); PIL Lanczos resize when that changes it;
 *                        then x / 255 · 2 − 1 in float32 (backend_normalize_pixels).
 * Postprocess:           clamp(x / 2 + 0.5, 0, 1) · 255 rounded half to even, to uint8
 *                        (backend_denormalize_pixels).
 *
 * The two arithmetic halves are backend ops, so that pictures cross to and from a GPU as
 * bytes; this file keeps the host's part: the size and the resize. Pixels are
 * [height, width, 3] (NHWC for one image).
 */
#ifndef SDXL_ENGINE_IMAGE_PROCESSOR_H
#define SDXL_ENGINE_IMAGE_PROCESSOR_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "io/image.h"

/* The size preprocess gives an image of image_width × image_height: requested_width/height
 * when > 0, else the image's own, each rounded down to a multiple of vae_scale_factor.
 * SDXL_ERR_INVALID_ARGUMENT when a side would round down to 0. */
sdxl_status image_processor_size(int image_width, int image_height, int requested_width,
                                 int requested_height, int vae_scale_factor, int *width,
                                 int *height, sdxl_error *err);

/* The picture the VAE encodes: *out = img when img is width × height, else img resized as
 * Pillow's Lanczos filter does into *resized (then *out = resized; image_free it). width and
 * height come from image_processor_size. */
sdxl_status image_processor_preprocess(const image *img, int width, int height, image *resized,
                                       const image **out, sdxl_error *err);

#endif /* SDXL_ENGINE_IMAGE_PROCESSOR_H */
