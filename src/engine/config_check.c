/*
 * config_check.c — bounded integers and refused features in config files (see config_check.h).
 */
#include "engine/config_check.h"

#include <stdio.h>
#include <string.h>

static sdxl_status out_of_range(const json_doc *doc, const char *key, long long value, int min,
                                int max, sdxl_error *err)
{
    return error_set(err, SDXL_ERR_FORMAT, "%s: key \"%s\": %lld is out of range [%d, %d]",
                     doc->name, key, value, min, max);
}

sdxl_status config_get_int(const json_doc *doc, const char *key, int min, int max, int *out,
                           sdxl_error *err)
{
    long long value;
    sdxl_status st = json_get_int(doc, json_doc_root(doc), key, &value, err);
    if (st)
        return st;
    if (value < min || value > max)
        return out_of_range(doc, key, value, min, max, err);
    *out = (int)value;
    return SDXL_OK;
}

sdxl_status config_get_int_opt(const json_doc *doc, const char *key, int fallback, int min,
                               int max, int *out, sdxl_error *err)
{
    long long value;
    sdxl_status st = json_get_int_opt(doc, json_doc_root(doc), key, fallback, &value, err);
    if (st)
        return st;
    if (value < min || value > max)
        return out_of_range(doc, key, value, min, max, err);
    *out = (int)value;
    return SDXL_OK;
}

sdxl_status config_get_int_per_block(const json_doc *doc, const char *key, bool allow_scalar,
                                     size_t count, int min, int max, int *out, sdxl_error *err)
{
    long long values[64];
    if (count > sizeof values / sizeof values[0])
        return error_set(err, SDXL_ERR_INTERNAL, "%s: key \"%s\": %zu blocks is too many",
                         doc->name, key, count);
    sdxl_status st =
        json_get_int_array(doc, json_doc_root(doc), key, allow_scalar, count, values, err);
    if (st)
        return st;
    for (size_t i = 0; i < count; i++) {
        if (values[i] < min || values[i] > max)
            return error_set(err, SDXL_ERR_FORMAT,
                             "%s: key \"%s\": element %zu is %lld, out of range [%d, %d]",
                             doc->name, key, i, values[i], min, max);
        out[i] = (int)values[i];
    }
    return SDXL_OK;
}

/* The NULL-terminated names quoted and separated by commas into list (cut short if too long). */
static const char *quote_names(const char *const *names, char *list, size_t size)
{
    size_t used = 0;
    list[0] = '\0';
    for (int i = 0; names[i]; i++) {
        int n = snprintf(list + used, size - used, "%s\"%s\"", i ? ", " : "", names[i]);
        if (n > 0 && (size_t)n < size - used)
            used += (size_t)n;
    }
    return list;
}

/* value's position in the NULL-terminated supported, or -1. */
static int find_name(const char *const *supported, const char *value)
{
    for (int i = 0; supported[i]; i++)
        if (strcmp(value, supported[i]) == 0)
            return i;
    return -1;
}

sdxl_status config_get_choice(const json_doc *doc, const char *key, const char *fallback,
                              const char *const *supported, int *index, sdxl_error *err)
{
    const char *value;
    sdxl_status st = json_get_string_opt(doc, json_doc_root(doc), key, fallback, &value, err);
    if (st)
        return st;
    *index = find_name(supported, value);
    if (*index >= 0)
        return SDXL_OK;
    char list[256];
    return error_set(err, SDXL_ERR_UNSUPPORTED,
                     "%s: key \"%s\": \"%s\" is not supported (sdxld supports %s)", doc->name, key,
                     value, quote_names(supported, list, sizeof list));
}

sdxl_status config_get_block_channels(const json_doc *doc, int *out, int *n, sdxl_error *err)
{
    long long channels[CONFIG_MAX_BLOCKS];
    size_t count;
    sdxl_status st = json_get_int_list(doc, json_doc_root(doc), "block_out_channels",
                                       CONFIG_MAX_BLOCKS, channels, &count, err);
    if (st)
        return st;
    if (count == 0)
        return error_set(err, SDXL_ERR_FORMAT, "%s: key \"block_out_channels\" is empty",
                         doc->name);
    for (size_t i = 0; i < count; i++) {
        if (channels[i] < 1 || channels[i] > CONFIG_MAX_SIZE)
            return error_set(err, SDXL_ERR_FORMAT,
                             "%s: key \"block_out_channels\": element %zu is %lld, out of range "
                             "[1, %d]",
                             doc->name, i, channels[i], CONFIG_MAX_SIZE);
        out[i] = (int)channels[i];
    }
    *n = (int)count;
    return SDXL_OK;
}

sdxl_status config_get_block_types(const json_doc *doc, const char *key, int n,
                                   const char *const *supported, int *kinds, sdxl_error *err)
{
    const char *names[CONFIG_MAX_BLOCKS];
    size_t count;
    sdxl_status st =
        json_get_string_list(doc, json_doc_root(doc), key, CONFIG_MAX_BLOCKS, names, &count, err);
    if (st)
        return st;
    if ((int)count != n)
        return error_set(err, SDXL_ERR_FORMAT,
                         "%s: key \"%s\": %zu block types for %d entries of block_out_channels; "
                         "give one per block",
                         doc->name, key, count, n);
    for (int i = 0; i < n; i++) {
        kinds[i] = find_name(supported, names[i]);
        if (kinds[i] < 0) {
            char list[256];
            return error_set(err, SDXL_ERR_UNSUPPORTED,
                             "%s: key \"%s\": block %d is \"%s\"; sdxld supports %s", doc->name,
                             key, i, names[i], quote_names(supported, list, sizeof list));
        }
    }
    return SDXL_OK;
}

sdxl_status config_check_groups(const json_doc *doc, int groups, const int *channels, int n,
                                sdxl_error *err)
{
    for (int i = 0; i < n; i++)
        if (channels[i] % groups)
            return error_set(err, SDXL_ERR_FORMAT,
                             "%s: norm_num_groups %d does not divide block_out_channels[%d] = "
                             "%d; group norms need a group count that divides every channel "
                             "count",
                             doc->name, groups, i, channels[i]);
    return SDXL_OK;
}

sdxl_status config_require_null(const json_doc *doc, const char *key, sdxl_error *err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(json_doc_root(doc), key);
    if (!item || cJSON_IsNull(item))
        return SDXL_OK;
    return error_set(err, SDXL_ERR_UNSUPPORTED,
                     "%s: key \"%s\" is set, but sdxld does not implement it (only SDXL models "
                     "are supported; it must be null or absent)",
                     doc->name, key);
}

sdxl_status config_require_bool(const json_doc *doc, const char *key, bool expected,
                                sdxl_error *err)
{
    bool value;
    sdxl_status st = json_get_bool_opt(doc, json_doc_root(doc), key, expected, &value, err);
    if (st)
        return st;
    if (value != expected)
        return error_set(err, SDXL_ERR_UNSUPPORTED,
                         "%s: key \"%s\": %s is not supported (sdxld supports only %s)",
                         doc->name, key, value ? "true" : "false", expected ? "true" : "false");
    return SDXL_OK;
}

sdxl_status config_require_number(const json_doc *doc, const char *key, double expected,
                                  sdxl_error *err)
{
    double value;
    sdxl_status st = json_get_double_opt(doc, json_doc_root(doc), key, expected, &value, err);
    if (st)
        return st;
    if (value != expected)
        return error_set(err, SDXL_ERR_UNSUPPORTED,
                         "%s: key \"%s\": %g is not supported (sdxld supports only %g)",
                         doc->name, key, value, expected);
    return SDXL_OK;
}

sdxl_status config_load_dir(const char *dir, const char *what,
                            sdxl_status (*read)(const json_doc *doc, void *cfg, sdxl_error *err),
                            void *cfg, size_t cfg_size, sdxl_error *err)
{
    char path[1024];
    if (snprintf(path, sizeof path, "%s/config.json", dir) >= (int)sizeof path)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "%s directory path is too long: %s",
                         what, dir);
    memset(cfg, 0, cfg_size);
    json_doc doc;
    sdxl_status st = json_doc_load(&doc, path, 0, err);
    if (st)
        return st;
    st = read(&doc, cfg, err);
    json_doc_free(&doc);
    return st;
}
