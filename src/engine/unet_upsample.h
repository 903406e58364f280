/*
 * unet_upsample.h — nearest-neighbour upsampling to a given size, as the UNet's up blocks do it.
 *
 * diffusers' Upsample2D doubles the size (F.interpolate(scale_factor=2, mode="nearest")),
 * except when a latent side is not a multiple of 2^(levels-1): the down path then rounded a side
 * up (stride-2 convs give ceil(H/2)), and UNet2DConditionModel passes the size of the skip
 * connection the next block concatenates (F.interpolate(size=...)). A 65-wide latent (a 520-pixel
 * image) goes 65 → 33 → 17 down and 17 → 33 → 65 up, not 17 → 34.
 *
 * y [N, Ho, Wo, C] from x [N, H, W, C] picks, per axis, source index
 *   Ho == 2H: i / 2;   Ho == H: i;   otherwise min(floor(i · (float)H / Ho), H - 1)
 * exactly as torch's upsample_nearest2d (UpSample.h nearest_idx, float arithmetic).
 */
#ifndef SDXL_ENGINE_UNET_UPSAMPLE_H
#define SDXL_ENGINE_UNET_UPSAMPLE_H

#include "backend/backend.h"
#include "base/arena.h"

/* x [N, H, W, C] -> y [N, Ho, Wo, C] (already made). The exact 2x case runs the backend's
 * upsample op; other sizes gather rows through an index table taken from a (released before
 * returning). Not in place. */
sdxl_status unet_upsample_nearest(backend *be, arena *a, const tensor *x, tensor *y,
                                  sdxl_error *err);

#endif /* SDXL_ENGINE_UNET_UPSAMPLE_H */
