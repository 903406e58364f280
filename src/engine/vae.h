/*
 * vae.h — the SDXL VAE (diffusers' AutoencoderKL): images to latent distributions and latents
 * back to images, optionally tiled.
 *
 * Built from DIR/vae/config.json (vae_config.h) and loaded by diffusers' tensor names from
 * DIR/vae/diffusion_pytorch_model[.fp16].safetensors: a file whose tensors do not match the
 * config exactly is refused, naming the first missing, misshapen or unexpected tensor.
 *
 *     encode: moments = quant_conv(encoder(image)); mean, logvar = its two channel halves,
 *             logvar clamped to [-30, 20]                (DiagonalGaussianDistribution)
 *     sample: mean + exp(0.5 · logvar) · ε               (ε: the engine's normals, rng.h)
 *     decode: image = decoder(post_quant_conv(latents))
 *
 * The caller applies scaling_factor (vae_scaling_factor): latents for the UNet are
 * sample × scaling_factor, and the decoder takes latents ÷ scaling_factor, as diffusers'
 * pipelines do. Images are NHWC in [-1, 1] (VaeImageProcessor's range; decode does not clamp),
 * latents NHWC [B, H/f, W/f, latent_channels] with f = vae_scale (8 for SDXL).
 *
 * Every activation comes from the caller's arena; vae_plan_encode / vae_plan_decode give the
 * memory a call needs before it runs, so a request that does not fit is refused up front.
 * Tiling (vae_tiling.h, off by default) bounds that memory by one tile for large images, with
 * the same results as diffusers' enable_tiling().
 *
 *     vae *v;
 *     st = vae_load(model_dir, be, &v, progress, err);
 *     vae_tiling tiling = vae_default_tiling(v);       // .enabled = false
 *     size_t bytes;
 *     st = vae_plan_decode(v, be, &tiling, 1, 64, 64, &bytes, err);
 *     ... make latents [1, 64, 64, 4] and image [1, 512, 512, 3] in an arena with that room ...
 *     st = vae_decode(v, be, arena, &tiling, &latents, &image, err);
 *     vae_free(v);
 *
 * A loaded vae is read-only during encode and decode: several sessions (arenas) may share it.
 */
#ifndef SDXL_ENGINE_VAE_H
#define SDXL_ENGINE_VAE_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "base/arena.h"
#include "engine/vae_config.h"
#include "engine/vae_decoder.h"
#include "engine/vae_encoder.h"
#include "engine/vae_tiling.h"
#include "engine/weights.h"

typedef struct vae {
    vae_config cfg;
    vae_half encoder; /* vae_encoder_load */
    vae_half decoder; /* vae_decoder_load */
    tensor quant_w, quant_b;           /* quant_conv: CONV [2 latent, 2 latent, 1, 1] */
    tensor post_quant_w, post_quant_b; /* post_quant_conv: CONV [latent, latent, 1, 1] */
    backend *be;                       /* the backend the weights live on */
} vae;

/* Reads model_dir/vae/config.json and the weights onto be. progress may be NULL. On failure
 * *out is NULL and nothing stays allocated. */
sdxl_status vae_load(const char *model_dir, backend *be, vae **out, weights_progress *progress,
                     sdxl_error *err);
/* Frees the weights and the vae (NULL is fine). */
void vae_free(vae *v);

/* f: how many image pixels one latent pixel spans in each direction (2^(levels − 1): 8). */
int vae_scale(const vae *v);
/* The config's scaling_factor (0.13025 for SDXL), for the caller to apply. */
float vae_scaling_factor(const vae *v);
int vae_latent_channels(const vae *v);
/* Tiling off, with diffusers' default knobs for this VAE: tile_sample_size = the config's
 * sample_size, tile_latent_size = sample_size / f, overlap_factor = 0.25. Set .enabled (and
 * the knobs, as with vae.tile_sample_min_size = ... in diffusers) to tile. */
vae_tiling vae_default_tiling(const vae *v);

/* Checks every shape of a vae_encode of images [batch, height, width, in_channels] (or a
 * vae_decode of latents [batch, height, width, latent_channels]) with the given tiling (NULL:
 * none) and reports the arena bytes the call needs beyond its inputs and outputs. */
sdxl_status vae_plan_encode(const vae *v, backend *be, const vae_tiling *tiling, int64_t batch,
                            int64_t height, int64_t width, size_t *bytes, sdxl_error *err);
sdxl_status vae_plan_decode(const vae *v, backend *be, const vae_tiling *tiling, int64_t batch,
                            int64_t height, int64_t width, size_t *bytes, sdxl_error *err);

/* image [B, H, W, in_channels] in [-1, 1], H and W multiples of f ->
 * mean, logvar [B, H/f, W/f, latent_channels] (already made), logvar clamped to [-30, 20].
 * Tiled when tiling is enabled and H or W is above tile_sample_size. tiling may be NULL.
 * Temporaries come from a and are released before returning. */
sdxl_status vae_encode(const vae *v, backend *be, arena *a, const vae_tiling *tiling,
                       const tensor *image, tensor *mean, tensor *logvar, sdxl_error *err);

/* out = mean + exp(0.5 · logvar) · noise, all of one shape (diffusers'
 * DiagonalGaussianDistribution.sample with noise = randn of the image's generator): one
 * backend_gaussian_sample on be, so the tensors are of be's compute type or F32 (the
 * pipeline samples in F32 beside the scheduler, on the UNet's backend). out may be mean. */
sdxl_status vae_sample(backend *be, const tensor *mean, const tensor *logvar, const tensor *noise,
                       tensor *out, sdxl_error *err);

/* latents [B, h, w, latent_channels] (already divided by scaling_factor) ->
 * image [B, f·h, f·w, out_channels] (already made; roughly [-1, 1], not clamped).
 * Tiled when tiling is enabled and h or w is above tile_latent_size. tiling may be NULL.
 * Temporaries come from a and are released before returning. */
sdxl_status vae_decode(const vae *v, backend *be, arena *a, const vae_tiling *tiling,
                       const tensor *latents, tensor *image, sdxl_error *err);

#endif /* SDXL_ENGINE_VAE_H */
