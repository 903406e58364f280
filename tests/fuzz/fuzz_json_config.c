/*
 * fuzz_json_config.c — json_doc_parse on arbitrary bytes, then every getter on every key of
 * the root (and of nested objects one level down), plus a few keys real configs use. Nothing
 * may crash, read out of bounds or leak, whatever the types found.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { LIST_MAX = 8 };

static void call_every_getter(const json_doc *doc, const cJSON *obj, const char *key)
{
    sdxl_error err;
    long long i, ints[LIST_MAX];
    double d;
    bool b;
    const char *s, *strings[LIST_MAX];
    const cJSON *nested;
    size_t count;
    json_get_int(doc, obj, key, &i, &err);
    json_get_int_opt(doc, obj, key, 1, &i, &err);
    json_get_double(doc, obj, key, &d, &err);
    json_get_double_opt(doc, obj, key, 0.5, &d, &err);
    json_get_bool(doc, obj, key, &b, &err);
    json_get_bool_opt(doc, obj, key, true, &b, &err);
    json_get_string(doc, obj, key, &s, &err);
    json_get_string_opt(doc, obj, key, "x", &s, &err);
    json_get_int_array(doc, obj, key, true, 3, ints, &err);
    json_get_int_array(doc, obj, key, false, LIST_MAX, ints, &err);
    json_get_int_list(doc, obj, key, LIST_MAX, ints, &count, &err);
    json_get_string_list(doc, obj, key, LIST_MAX, strings, &count, &err);
    json_get_object(doc, obj, key, &nested, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so a read past the end is caught by ASan. */
    char *text = malloc(size ? size : 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    json_doc doc;
    sdxl_error err;
    if (json_doc_parse(&doc, text, size, "fuzz.json", &err) == SDXL_OK) {
        static const char *const known[] = {"block_out_channels", "attention_head_dim",
                                            "layers_per_block", "norm_eps", "_class_name", ""};
        const cJSON *root = json_doc_root(&doc);
        for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
            call_every_getter(&doc, root, known[k]);
        for (const cJSON *item = root->child; item; item = item->next) {
            if (!item->string)
                continue;
            call_every_getter(&doc, root, item->string);
            if (cJSON_IsObject(item))
                for (const cJSON *inner = item->child; inner; inner = inner->next)
                    if (inner->string)
                        call_every_getter(&doc, item, inner->string);
            /* Lookups in a value that is not an object must fail cleanly too. */
            call_every_getter(&doc, item, "k");
        }
        json_doc_free(&doc);
    }
    free(text);
    return 0;
}
