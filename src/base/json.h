/*
 * json.h — reading configuration files (config.json, scheduler_config.json, tokenizer
 * configs, model_index.json) with errors that name the file and the key.
 *
 * A thin layer over cJSON. Required getters fail when the key is missing, null or of the wrong
 * type; optional getters (*_opt) return the fallback when the key is missing or null (diffusers
 * writes null for "not set") but still fail when it holds the wrong type, so a typo in a config
 * is reported rather than silently defaulted. Integers must be whole numbers within range.
 *
 *     json_doc doc;
 *     if (json_doc_load(&doc, "unet/config.json", err)) return err->code;
 *     long long layers;
 *     st = json_get_int(&doc, json_doc_root(&doc), "layers_per_block", &layers, err);
 *     // on failure: "unet/config.json: key \"layers_per_block\": expected an integer, got a string"
 */
#ifndef SDXL_BASE_JSON_H
#define SDXL_BASE_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "base/status.h"

typedef struct json_doc {
    cJSON *root;
    char name[256]; /* file path or label used in messages */
} json_doc;

/* Reads and parses a file (at most max_bytes; 0 means 16 MiB). */
sdxl_status json_doc_load(json_doc *doc, const char *path, size_t max_bytes, sdxl_error *err);
/* Parses text of len bytes (need not be NUL-terminated); name labels messages. */
sdxl_status json_doc_parse(json_doc *doc, const char *text, size_t len, const char *name,
                           sdxl_error *err);
void json_doc_free(json_doc *doc);
const cJSON *json_doc_root(const json_doc *doc);

/* obj must be a JSON object (usually the root, or a nested object from json_get_object). */
sdxl_status json_get_int(const json_doc *doc, const cJSON *obj, const char *key, long long *out,
                         sdxl_error *err);
sdxl_status json_get_int_opt(const json_doc *doc, const cJSON *obj, const char *key,
                             long long fallback, long long *out, sdxl_error *err);
sdxl_status json_get_double(const json_doc *doc, const cJSON *obj, const char *key, double *out,
                            sdxl_error *err);
sdxl_status json_get_double_opt(const json_doc *doc, const cJSON *obj, const char *key,
                                double fallback, double *out, sdxl_error *err);
sdxl_status json_get_bool(const json_doc *doc, const cJSON *obj, const char *key, bool *out,
                          sdxl_error *err);
sdxl_status json_get_bool_opt(const json_doc *doc, const cJSON *obj, const char *key,
                              bool fallback, bool *out, sdxl_error *err);
/* The string stays owned by doc. */
sdxl_status json_get_string(const json_doc *doc, const cJSON *obj, const char *key,
                            const char **out, sdxl_error *err);
sdxl_status json_get_string_opt(const json_doc *doc, const cJSON *obj, const char *key,
                                const char *fallback, const char **out, sdxl_error *err);
sdxl_status json_get_object(const json_doc *doc, const cJSON *obj, const char *key,
                            const cJSON **out, sdxl_error *err);

/* An array of integers of exactly `count` elements, or — when allow_scalar — one integer that
 * is repeated count times (diffusers accepts both for e.g. attention_head_dim). */
sdxl_status json_get_int_array(const json_doc *doc, const cJSON *obj, const char *key,
                               bool allow_scalar, size_t count, long long *out, sdxl_error *err);
/* An array of integers of any length up to max; its length goes to *count. */
sdxl_status json_get_int_list(const json_doc *doc, const cJSON *obj, const char *key, size_t max,
                              long long *out, size_t *count, sdxl_error *err);
/* An array of strings of any length up to max (strings owned by doc). */
sdxl_status json_get_string_list(const json_doc *doc, const cJSON *obj, const char *key,
                                 size_t max, const char **out, size_t *count, sdxl_error *err);

#endif /* SDXL_BASE_JSON_H */
