/*
 * files.h — the non-weight files of a model directory: folders, and byte-for-byte copies of
 * the configs and the tokenizer vocabulary.
 */
#ifndef SDXL_MKMODEL_FILES_H
#define SDXL_MKMODEL_FILES_H

#include "base/status.h"

/* Creates path and its missing parents (like mkdir -p). */
sdxl_status files_make_dir(const char *path, sdxl_error *err);

/* Copies src to dst byte for byte (replacing dst). */
sdxl_status files_copy(const char *src, const char *dst, sdxl_error *err);

/* Copies every *.json file of config_dir and of its component folders (unet/, vae/,
 * text_encoder/, ..., scheduler/, tokenizer/, tokenizer_2/) to the same place under out_dir,
 * and vocab_dir/vocab.json and merges.txt into out_dir/tokenizer and out_dir/tokenizer_2.
 * Fails when model_index.json, the scheduler config or a tokenizer config is missing. */
sdxl_status files_copy_configs(const char *config_dir, const char *vocab_dir,
                               const char *out_dir, sdxl_error *err);

#endif /* SDXL_MKMODEL_FILES_H */
