/*
 * image_processor.h — pixels to the VAE's input and the VAE's output to pixels, exactly as
 * diffusers' VaeImageProcessor does in the SDXL pipelines (vae_scale_factor = 2^(number of VAE
 * blocks − 1), resample "lanczos", do_normalize; no RGB or grayscale conversion).
 *
 * Preprocess (img2img):  size = each side rounded DOWN to a multiple of vae_scale_factor
 *                        (get_default_height_width); PIL Lanczos resize when that changes it;
 *                        x = float32(u8) / 255 (numpy, float32), then 2·x − 1 (torch, float32),
 *                        rounded after each operation.
 * Postprocess:           y = clamp(x / 2 + 0.5, 0, 1) (torch, float32), then numpy's
 *                        (y · 255).round() — float32 product, round half to even — to uint8.
 *                        NaN becomes 0 (numpy's cast of NaN to uint8 is undefined; x86 gives 0).
 *
 * Host memory only: pixels are [height, width, 3] (NHWC for one image); the engine copies them
 * to and from its backend. For a batch, call once per image with out pointing at its slot.
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

/* img to out[height][width][3] in [-1, 1], resizing (Lanczos, as Pillow) when img's size is not
 * width × height. width and height come from image_processor_size. */
sdxl_status image_processor_preprocess(const image *img, int width, int height, float *out,
                                       sdxl_error *err);

/* The elementwise halves of the two directions, on n values. */
void image_processor_normalize(const uint8_t *in, size_t n, float *out);
void image_processor_denormalize(const float *in, size_t n, uint8_t *out);

/* in[height][width][3] (the VAE decoder's output) to a new image (image_free). */
sdxl_status image_processor_postprocess(const float *in, int width, int height, image *out,
                                        sdxl_error *err);

#endif /* SDXL_ENGINE_IMAGE_PROCESSOR_H */
