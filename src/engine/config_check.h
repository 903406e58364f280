/*
 * config_check.h — reading model config.json files: bounded integers, and refusing the
 * features sdxld does not implement.
 *
 * The UNet, VAE and CLIP config readers share these so that every config error reads the same:
 * it names the file and the key, says what was found and what is supported. Keys are read from
 * the document's root object. A missing or null optional key takes the default diffusers or
 * transformers would use, so a config saved with fewer keys means what it means there.
 *
 *     "models/x/unet/config.json: key \"act_fn\": \"gelu\" is not supported (sdxld supports
 *      \"silu\")"
 */
#ifndef SDXL_ENGINE_CONFIG_CHECK_H
#define SDXL_ENGINE_CONFIG_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "base/json.h"

/* Largest channel count, layer count, vocabulary... any size a config may state. Far above
 * every real model; it keeps products of sizes well inside 64 bits. */
#define CONFIG_MAX_SIZE (1 << 20)

/* Most resolution levels (entries of block_out_channels) a UNet or VAE config may have. */
#define CONFIG_MAX_BLOCKS 8

/* Reads DIR/config.json and hands it to read (which fills cfg, zeroed first); what names the
 * component in messages ("UNet", "VAE", "text encoder"). */
sdxl_status config_load_dir(const char *dir, const char *what,
                            sdxl_status (*read)(const json_doc *doc, void *cfg, sdxl_error *err),
                            void *cfg, size_t cfg_size, sdxl_error *err);

/* An integer in [min, max]. */
sdxl_status config_get_int(const json_doc *doc, const char *key, int min, int max, int *out,
                           sdxl_error *err);
sdxl_status config_get_int_opt(const json_doc *doc, const char *key, int fallback, int min,
                               int max, int *out, sdxl_error *err);

/* count integers in [min, max]: an array of exactly count, or (when allow_scalar) one integer
 * that diffusers repeats for every block. */
sdxl_status config_get_int_per_block(const json_doc *doc, const char *key, bool allow_scalar,
                                     size_t count, int min, int max, int *out, sdxl_error *err);

/* A string that must be one of the NULL-terminated list supported; *index is its position.
 * Missing or null means fallback (which must be in the list). */
sdxl_status config_get_choice(const json_doc *doc, const char *key, const char *fallback,
                              const char *const *supported, int *index, sdxl_error *err);

/* "block_out_channels": 1 to CONFIG_MAX_BLOCKS channel counts in [1, CONFIG_MAX_SIZE] into out;
 * their number goes to *n. */
sdxl_status config_get_block_channels(const json_doc *doc, int *out, int *n, sdxl_error *err);
/* key ("down_block_types", "up_block_types"): one type for each of the n blocks, each one of the
 * NULL-terminated list supported; kinds[i] is block i's position in it. */
sdxl_status config_get_block_types(const json_doc *doc, const char *key, int n,
                                   const char *const *supported, int *kinds, sdxl_error *err);
/* groups divides each of the n channel counts (what a group norm over each needs). */
sdxl_status config_check_groups(const json_doc *doc, int groups, const int *channels, int n,
                                sdxl_error *err);

/* A key that must be missing or null: a feature sdxld does not implement. */
sdxl_status config_require_null(const json_doc *doc, const char *key, sdxl_error *err);
/* A boolean that must be missing, null or equal to expected. */
sdxl_status config_require_bool(const json_doc *doc, const char *key, bool expected,
                                sdxl_error *err);
/* A number that must be missing, null or equal to expected. */
sdxl_status config_require_number(const json_doc *doc, const char *key, double expected,
                                  sdxl_error *err);

#endif /* SDXL_ENGINE_CONFIG_CHECK_H */
