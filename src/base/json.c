/*
 * json.c — configuration files over cJSON, with errors naming file and key (see json.h).
 *
 * Parsing is strict where cJSON is lenient: the text must be one JSON object with nothing but
 * whitespace after it, so a truncated or concatenated file is reported, with the byte offset
 * (and line) where parsing stopped.
 */
#include "base/json.h"

#include "base/file.h"

#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_DEFAULT_MAX_BYTES ((size_t)16 << 20)

static void json_set_name(json_doc *doc, const char *name)
{
    snprintf(doc->name, sizeof doc->name, "%s", name ? name : "(json)");
}

static bool is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t line_of_offset(const char *text, size_t offset)
{
    size_t line = 1;
    for (size_t i = 0; i < offset; i++)
        line += text[i] == '\n';
    return line;
}

sdxl_status json_doc_parse(json_doc *doc, const char *text, size_t len, const char *name,
                           sdxl_error *err)
{
    doc->root = NULL;
    json_set_name(doc, name);
    const char *end = NULL;
    cJSON *root = len == 0 ? NULL : cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        /* cJSON reports where it stopped, clipped to the last byte for truncated input. */
        size_t offset = end && end >= text && end <= text + len ? (size_t)(end - text) : len;
        return error_set(err, SDXL_ERR_FORMAT,
                         "%s: invalid JSON at byte %zu (line %zu); check the file is complete "
                         "and well-formed",
                         doc->name, offset, line_of_offset(text, offset));
    }
    size_t offset = (size_t)(end - text);
    while (offset < len && is_json_space(text[offset]))
        offset++;
    if (offset < len) {
        cJSON_Delete(root);
        return error_set(err, SDXL_ERR_FORMAT,
                         "%s: invalid JSON at byte %zu (line %zu): unexpected data after the "
                         "top-level value",
                         doc->name, offset, line_of_offset(text, offset));
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return error_set(err, SDXL_ERR_FORMAT, "%s: expected a JSON object at the top level",
                         doc->name);
    }
    doc->root = root;
    return SDXL_OK;
}

sdxl_status json_doc_load(json_doc *doc, const char *path, size_t max_bytes, sdxl_error *err)
{
    doc->root = NULL;
    json_set_name(doc, path);
    if (max_bytes == 0)
        max_bytes = JSON_DEFAULT_MAX_BYTES;
    uint8_t *text;
    size_t len;
    sdxl_status st = file_read_all(path, max_bytes, &text, &len, err);
    if (st != SDXL_OK)
        return st;
    st = json_doc_parse(doc, (const char *)text, len, path, err);
    free(text);
    return st;
}

void json_doc_free(json_doc *doc)
{
    cJSON_Delete(doc->root);
    doc->root = NULL;
}

const cJSON *json_doc_root(const json_doc *doc)
{
    return doc->root;
}

static const char *json_type_name(const cJSON *item)
{
    if (cJSON_IsNull(item))
        return "null";
    if (cJSON_IsBool(item))
        return "a boolean";
    if (cJSON_IsNumber(item))
        return "a number";
    if (cJSON_IsString(item))
        return "a string";
    if (cJSON_IsArray(item))
        return "an array";
    if (cJSON_IsObject(item))
        return "an object";
    return "an invalid value";
}

/* The key as messages spell it: "parent.key" inside a nested object. */
static void key_label(const json_doc *doc, const cJSON *obj, const char *key, char *out,
                      size_t n)
{
    if (obj != doc->root && obj->string)
        snprintf(out, n, "%s.%s", obj->string, key);
    else
        snprintf(out, n, "%s", key);
}

static sdxl_status wrong_type(const json_doc *doc, const cJSON *obj, const char *key,
                              const char *expected, const cJSON *item, sdxl_error *err)
{
    char label[160];
    key_label(doc, obj, key, label, sizeof label);
    return error_set(err, SDXL_ERR_FORMAT, "%s: key \"%s\": expected %s, got %s", doc->name,
                     label, expected, json_type_name(item));
}

/* Finds key in obj. A missing key fails when required; otherwise *item is NULL when the key is
 * missing or null. */
static sdxl_status json_lookup(const json_doc *doc, const cJSON *obj, const char *key,
                               bool required, const cJSON **item, sdxl_error *err)
{
    *item = NULL;
    if (!cJSON_IsObject(obj))
        return error_set(err, SDXL_ERR_FORMAT, "%s: looking up key \"%s\": %s is not an object",
                         doc->name, key, obj && obj->string ? obj->string : "the parent value");
    const cJSON *found = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!found || (!required && cJSON_IsNull(found)))
        return required && !found ? error_set(err, SDXL_ERR_NOT_FOUND,
                                              "%s: required key \"%s\" is missing", doc->name,
                                              key)
                                  : SDXL_OK;
    *item = found;
    return SDXL_OK;
}

/* A whole number representable as long long; what "an integer" means in a config. */
static bool number_as_int(const cJSON *item, long long *out)
{
    if (!cJSON_IsNumber(item))
        return false;
    double d = item->valuedouble;
    /* 2^63 is exact in a double; the range check also rejects NaN and infinities. */
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != floor(d))
        return false;
    *out = (long long)d;
    return true;
}

static sdxl_status item_int(const json_doc *doc, const cJSON *obj, const char *key,
                            const cJSON *item, long long *out, sdxl_error *err)
{
    if (number_as_int(item, out))
        return SDXL_OK;
    if (cJSON_IsNumber(item)) {
        char label[160];
        key_label(doc, obj, key, label, sizeof label);
        return error_set(err, SDXL_ERR_FORMAT,
                         "%s: key \"%s\": expected an integer, got %.17g (not a whole number "
                         "in range)",
                         doc->name, label, item->valuedouble);
    }
    return wrong_type(doc, obj, key, "an integer", item, err);
}

sdxl_status json_get_int(const json_doc *doc, const cJSON *obj, const char *key, long long *out,
                         sdxl_error *err)
{
    const cJSON *item;
    sdxl_status st = json_lookup(doc, obj, key, true, &item, err);
    return st ? st : item_int(doc, obj, key, item, out, err);
}

sdxl_status json_get_int_opt(const json_doc *doc, const cJSON *obj, const char *key,
                             long long fallback, long long *out, sdxl_error *err)
{
    const cJSON *item;
    sdxl_status st = json_lookup(doc, obj, key, false, &item, err);
    if (st || !item) {
        *out = fallback;
        return st;
    }
    return item_int(doc, obj, key, item, out, err);
}

static sdxl_status item_double(const json_doc *doc, const cJSON *obj, const char *key,
                               const cJSON *item, double *out, sdxl_error *err)
{
    if (!cJSON_IsNumber(item))
        return wrong_type(doc, obj, key, "a number", item, err);
    *out = item->valuedouble;
    return SDXL_OK;
}

sdxl_status json_get_double(const json_doc *doc, const cJSON *obj, const char *key, double *out,
                            sdxl_error *err)
{
    const cJSON *item;
    sdxl_status st = json_lookup(doc, obj, key, true, &item, err);
    return st ? st : item_double(doc, obj, key, item, out, err);
}

sdxl_status json_get_double_opt(const json_doc *doc, const cJSON *obj, const char *key,
                                double fallback, double *out, sdxl_error *err)
{
    const cJSON *item;
    sdxl_status st = json_lookup(doc, obj, key, false, &item, err);
    if (st || !item) {
        *out = fallback;
        return st;
    }
    return item_double(doc, obj, key, item, out, err);
}

static sdxl_status item_bool(const json_doc *doc, const cJSON *obj, const char *key,
                             const cJSON *item, bool *out, sdxl_error *err)
{
    if (!cJSON_IsBool(item))
        return wrong_type(doc, obj, key, "a boolean", item, err);
    *out = cJSON_IsTrue(item);
    return SDXL_OK;
}

sdxl_status json_get_bool(const json_doc *doc, const cJSON *obj, const char *key, bool *out,
                          sdxl_error *err)
{
    const cJSON *item;
    sdxl_status st = json_lookup(doc, obj, key, true, &item, err);
    return st ? st : item_bool(doc, obj, key, item, out, err);
}

sdxl_status json_get_bool_opt(const json_doc *doc, const cJSON *obj, const char *key,
                              bool fallback, bool *out, sdxl_error *err)
{
    const cJSON *item;
    sdxl_status st = json_lookup(doc, obj, key, false, &item, err);
    if (st || !item) {
        *out = fallback;
        return st;
    }
    return item_bool(doc, obj, key, item, out, err);
}

static sdxl_status item_string(const json_doc *doc, const cJSON *obj, const char *key,
                               const cJSON *item, const char **out, sdxl_error *err)
{
    if (!cJSON_IsString(item))
        return wrong_type(doc, obj, key, "a string", item, err);
    *out = item->valuestring;
    return SDXL_OK;
}

sdxl_status json_get_string(const json_doc *doc, const cJSON *obj, const char *key,
                            const char **out, sdxl_error *err)
{
    const cJSON *item;
    sdxl_status st = json_lookup(doc, obj, key, true, &item, err);
    return st ? st : item_string(doc, obj, key, item, out, err);
}

sdxl_status json_get_string_opt(const json_doc *doc, const cJSON *obj, const char *key,
                                const char *fallback, const char **out, sdxl_error *err)
{
    const cJSON *item;
    sdxl_status st = json_lookup(doc, obj, key, false, &item, err);
    if (st || !item) {
        *out = fallback;
        return st;
    }
    return item_string(doc, obj, key, item, out, err);
}

sdxl_status json_get_object(const json_doc *doc, const cJSON *obj, const char *key,
                            const cJSON **out, sdxl_error *err)
{
    const cJSON *item;
    sdxl_status st = json_lookup(doc, obj, key, true, &item, err);
    if (st)
        return st;
    if (!cJSON_IsObject(item))
        return wrong_type(doc, obj, key, "an object", item, err);
    *out = item;
    return SDXL_OK;
}

/* The i-th element's label, e.g. "block_out_channels[2]". */
static void element_label(const json_doc *doc, const cJSON *obj, const char *key, size_t i,
                          char *out, size_t n)
{
    char label[160];
    key_label(doc, obj, key, label, sizeof label);
    snprintf(out, n, "%s[%zu]", label, i);
}

/* Reads every element of an integer array into out (which holds at least the array's size). */
static sdxl_status array_ints(const json_doc *doc, const cJSON *obj, const char *key,
                              const cJSON *array, long long *out, sdxl_error *err)
{
    size_t i = 0;
    for (const cJSON *el = array->child; el; el = el->next, i++) {
        if (!number_as_int(el, &out[i])) {
            char label[192];
            element_label(doc, obj, key, i, label, sizeof label);
            return error_set(err, SDXL_ERR_FORMAT, "%s: key \"%s\": expected an integer, got %s",
                             doc->name, label,
                             cJSON_IsNumber(el) ? "a non-integer number" : json_type_name(el));
        }
    }
    return SDXL_OK;
}

sdxl_status json_get_int_array(const json_doc *doc, const cJSON *obj, const char *key,
                               bool allow_scalar, size_t count, long long *out, sdxl_error *err)
{
    const cJSON *item;
    sdxl_status st = json_lookup(doc, obj, key, true, &item, err);
    if (st)
        return st;
    if (allow_scalar && cJSON_IsNumber(item)) {
        long long value = 0;
        st = item_int(doc, obj, key, item, &value, err);
        for (size_t i = 0; st == SDXL_OK && i < count; i++)
            out[i] = value;
        return st;
    }
    if (!cJSON_IsArray(item))
        return wrong_type(doc, obj, key,
                          allow_scalar ? "an integer or an array of integers"
                                       : "an array of integers",
                          item, err);
    size_t size = (size_t)cJSON_GetArraySize(item);
    if (size != count) {
        char label[160];
        key_label(doc, obj, key, label, sizeof label);
        return error_set(err, SDXL_ERR_FORMAT,
                         "%s: key \"%s\": expected %zu integers (one per block), got %zu",
                         doc->name, label, count, size);
    }
    return array_ints(doc, obj, key, item, out, err);
}

/* Checks that key holds an array of at most max elements; its size goes to *size. */
static sdxl_status list_lookup(const json_doc *doc, const cJSON *obj, const char *key,
                               const char *expected, size_t max, const cJSON **array,
                               size_t *size, sdxl_error *err)
{
    sdxl_status st = json_lookup(doc, obj, key, true, array, err);
    if (st)
        return st;
    if (!cJSON_IsArray(*array))
        return wrong_type(doc, obj, key, expected, *array, err);
    *size = (size_t)cJSON_GetArraySize(*array);
    if (*size > max) {
        char label[160];
        key_label(doc, obj, key, label, sizeof label);
        return error_set(err, SDXL_ERR_UNSUPPORTED,
                         "%s: key \"%s\": %zu elements, at most %zu are supported", doc->name,
                         label, *size, max);
    }
    return SDXL_OK;
}

sdxl_status json_get_int_list(const json_doc *doc, const cJSON *obj, const char *key, size_t max,
                              long long *out, size_t *count, sdxl_error *err)
{
    const cJSON *array;
    size_t size = 0;
    sdxl_status st = list_lookup(doc, obj, key, "an array of integers", max, &array, &size, err);
    if (!st)
        st = array_ints(doc, obj, key, array, out, err);
    *count = st ? 0 : size;
    return st;
}

sdxl_status json_get_string_list(const json_doc *doc, const cJSON *obj, const char *key,
                                 size_t max, const char **out, size_t *count, sdxl_error *err)
{
    const cJSON *array;
    size_t size = 0;
    *count = 0;
    sdxl_status st = list_lookup(doc, obj, key, "an array of strings", max, &array, &size, err);
    if (st)
        return st;
    size_t i = 0;
    for (const cJSON *el = array->child; el; el = el->next, i++) {
        if (!cJSON_IsString(el)) {
            char label[192];
            element_label(doc, obj, key, i, label, sizeof label);
            return error_set(err, SDXL_ERR_FORMAT, "%s: key \"%s\": expected a string, got %s",
                             doc->name, label, json_type_name(el));
        }
        out[i] = el->valuestring;
    }
    *count = size;
    return SDXL_OK;
}
