/*
 * vae_tiling.h — tiled VAE encode and decode, exactly as diffusers' AutoencoderKL does them
 * after enable_tiling() (tiled_encode / tiled_decode, blend_v / blend_h).
 *
 * The input is cut into square tiles of side T_in whose starts are `step` apart (they overlap);
 * each tile goes through the model alone, so activation memory is bounded by one tile whatever
 * the image size. Edge tiles are smaller when the input is not a whole number of steps. Going
 * over the tiles row by row, each output tile is blended, in place, with the bottom rows of the
 * tile above and then the right columns of the tile to its left (both already blended), over
 * `blend` rows/columns with linear weights, and its top-left row_limit × row_limit corner is
 * kept. The result differs from an untiled pass (each tile sees only its own pixels), but equals
 * diffusers' tiled one.
 *
 * With diffusers' knobs (defaults from the VAE's config: tile_sample_min_size = sample_size,
 * tile_latent_min_size = sample_size / f, tile_overlap_factor = 0.25; f the VAE's scale):
 *     encode: T_in = sample, step = int(sample · (1 − overlap)), blend = int(latent · overlap),
 *             row_limit = latent − blend; output side = input side / f
 *     decode: T_in = latent, step = int(latent · (1 − overlap)), blend = int(sample · overlap),
 *             row_limit = sample − blend; output side = input side · f
 * An input no larger than T_in in both directions is not tiled (as in diffusers).
 */
#ifndef SDXL_ENGINE_VAE_TILING_H
#define SDXL_ENGINE_VAE_TILING_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"
#include "base/arena.h"

/* The tiling setting (diffusers' AutoencoderKL attributes of the same names). */
typedef struct vae_tiling {
    bool enabled;          /* enable_tiling(); off by default */
    int tile_sample_size;  /* tile_sample_min_size: tile side in image pixels */
    int tile_latent_size;  /* tile_latent_min_size: tile side in latent pixels */
    double overlap_factor; /* tile_overlap_factor, in [0, 1) */
} vae_tiling;

/* How a tiled pass cuts its input and assembles its output (see the top of this file). */
typedef struct vae_tile_geometry {
    int64_t tile;      /* T_in, input pixels */
    int64_t step;      /* input pixels between tile starts */
    int64_t blend;     /* output pixels blended with the neighbour above / to the left */
    int64_t row_limit; /* output pixels kept per tile and direction */
    int64_t up, down;  /* output side = input side · up / down */
} vae_tile_geometry;

/* Whether encoding (or decoding) an input of h × w pixels with VAE scale f runs tile by tile
 * under t: never when t is NULL or disabled, else when either side is larger than T_in (as
 * diffusers decides); *g is then the tiles' geometry. Fails on knobs diffusers would not run
 * (a side or step below 1, an overlap outside [0, 1)) when t is enabled. */
sdxl_status vae_tiling_decide(const vae_tiling *t, int f, bool decode, int64_t h, int64_t w,
                              vae_tile_geometry *g, bool *tiled, sdxl_error *err);

/* Runs one tile: in [N, th, tw, Cin] -> out [N, th·up/down, tw·up/down, Cout] (both made by the
 * caller). Temporaries from a, released before returning. */
typedef sdxl_status (*vae_tile_fn)(void *ctx, backend *be, arena *a, const tensor *in,
                                   tensor *out, sdxl_error *err);

/* x [N, H, W, Cin] -> y [N, H·up/down, W·up/down, Cout] through fn, tile by tile. Fails with
 * SDXL_ERR_INVALID_ARGUMENT when the tiles do not assemble into exactly y's size (a tile side
 * that does not divide by down, or knobs whose step and row_limit disagree); the message says
 * which knobs work. Tile inputs and outputs pass through host memory to be cut and blended; on
 * a planning arena (y without memory) only the shapes of every tile are checked and planned.
 * Temporaries come from a (at most one tile's input, output and fn's temporaries at a time) and
 * are released before returning. */
sdxl_status vae_tiled_run(const vae_tile_geometry *g, backend *be, arena *a, const tensor *x,
                          tensor *y, vae_tile_fn fn, void *ctx, sdxl_error *err);

#endif /* SDXL_ENGINE_VAE_TILING_H */
