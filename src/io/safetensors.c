/*
 * safetensors.c — the safetensors reader: a mapped file treated as hostile (see safetensors.h
 * for the format and the guarantees; safetensors_write.c is the writer).
 *
 * The reader accepts what the official safetensors library accepts, for the dtypes sdxld
 * knows: UTF-8 JSON header, exact-integer shapes and offsets, every byte of the data section
 * owned by exactly one tensor.
 */
#include "io/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "io/safetensors_internal.h"

/* Mapped files larger than 4 GB are the norm (a UNet in fp32 is 10 GB). */
_Static_assert(sizeof(size_t) >= sizeof(uint64_t), "sdxld needs a 64-bit size_t");

/* Room for "[d0, d1, ..., d7]" with 16-digit dimensions. */
#define SHAPE_TEXT_MAX (SAFETENSORS_MAX_DIMS * 24 + 8)

static void shape_format(const uint64_t *shape, int ndim, char *out, size_t cap)
{
    size_t len = (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < ndim && len < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, i ? ", %llu" : "%llu",
                                (unsigned long long)shape[i]);
    if (len < cap)
        snprintf(out + len, cap - len, "]");
}

static const char *json_kind(const cJSON *v)
{
    if (cJSON_IsObject(v))
        return "an object";
    if (cJSON_IsArray(v))
        return "an array";
    if (cJSON_IsString(v))
        return "a string";
    if (cJSON_IsNumber(v))
        return "a number";
    if (cJSON_IsBool(v))
        return "a boolean";
    return "null";
}

/* cJSON keeps numbers as doubles, so only integers up to 2^53 are known exactly. */
static bool json_exact_u64(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v))
        return false;
    double d = v->valuedouble;
    if (!(d >= 0.0 && d <= ST_JSON_MAX_EXACT))
        return false;
    uint64_t u = (uint64_t)d;
    if ((double)u != d)
        return false;
    *out = u;
    return true;
}

/* Describes a value that is not an acceptable integer, for messages: "-1", "2.5", "a string". */
static void json_describe(const cJSON *v, char *out, size_t cap)
{
    double d = v->valuedouble;
    bool whole = d > -1e18 && d < 1e18 && d == (double)(long long)d;
    if (cJSON_IsNumber(v))
        snprintf(out, cap, whole ? "%.0f" : "%.15g", d);
    else
        snprintf(out, cap, "%s", json_kind(v));
}

static void supported_dtypes(char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (int t = 0; t < DTYPE_COUNT && len < cap; t++)
        len += (size_t)snprintf(out + len, cap - len, t ? ", %s" : "%s", dtype_name((dtype)t));
}

static sdxl_status parse_dtype(const char *label, const char *name, const cJSON *v, dtype *out,
                               sdxl_error *err)
{
    if (!cJSON_IsString(v))
        return st_tensor_error(err, SDXL_ERR_FORMAT, label, name,
                               "\"dtype\" must be a string such as \"F16\", not %s", json_kind(v));
    if (!dtype_parse(v->valuestring, out)) {
        char known[128];
        supported_dtypes(known, sizeof known);
        return st_tensor_error(err, SDXL_ERR_UNSUPPORTED, label, name,
                               "dtype \"%.32s\" is not supported (sdxld reads %s); convert the "
                               "tensor to one of these",
                               v->valuestring, known);
    }
    return SDXL_OK;
}

static sdxl_status parse_shape(const char *label, const char *name, const cJSON *v,
                               uint64_t *shape, int *ndim, sdxl_error *err)
{
    if (!cJSON_IsArray(v))
        return st_tensor_error(err, SDXL_ERR_FORMAT, label, name,
                               "\"shape\" must be an array of integers, not %s", json_kind(v));
    int n = 0;
    for (const cJSON *dim = v->child; dim; dim = dim->next, n++) {
        if (n == SAFETENSORS_MAX_DIMS)
            return st_tensor_error(err, SDXL_ERR_UNSUPPORTED, label, name,
                                   "shape has more than %d dimensions, the most sdxld supports",
                                   SAFETENSORS_MAX_DIMS);
        if (!json_exact_u64(dim, &shape[n])) {
            char got[64];
            json_describe(dim, got, sizeof got);
            return st_tensor_error(err, SDXL_ERR_FORMAT, label, name,
                                   "shape dimension %d is %s; dimensions must be integers from 0 "
                                   "to 2^53",
                                   n, got);
        }
    }
    *ndim = n;
    return SDXL_OK;
}

static sdxl_status parse_offsets(const char *label, const char *name, const cJSON *v,
                                 uint64_t *begin, uint64_t *end, sdxl_error *err)
{
    const cJSON *first = cJSON_IsArray(v) ? v->child : NULL;
    const cJSON *second = first ? first->next : NULL;
    if (!second || second->next)
        return st_tensor_error(err, SDXL_ERR_FORMAT, label, name,
                               "\"data_offsets\" must be an array of two integers [begin, end]");
    for (const cJSON *item = first; item; item = item->next) {
        if (!json_exact_u64(item, item == first ? begin : end)) {
            char got[64];
            json_describe(item, got, sizeof got);
            return st_tensor_error(err, SDXL_ERR_FORMAT, label, name,
                                   "data_offsets %s is %s; offsets must be integers from 0 to 2^53",
                                   item == first ? "begin" : "end", got);
        }
    }
    if (*begin > *end)
        return st_tensor_error(err, SDXL_ERR_FORMAT, label, name,
                               "data_offsets [%llu, %llu] end before they begin",
                               (unsigned long long)*begin, (unsigned long long)*end);
    return SDXL_OK;
}

/* Fills t (whose name is already set) from its header entry; data points into data section
 * `data` of data_size bytes. */
static sdxl_status parse_tensor(const char *label, const cJSON *entry, const uint8_t *data,
                                uint64_t data_size, st_tensor *t, sdxl_error *err)
{
    if (!cJSON_IsObject(entry))
        return st_tensor_error(err, SDXL_ERR_FORMAT, label, t->name,
                               "expected an object with dtype, shape and data_offsets, not %s",
                               json_kind(entry));
    static const char *const keys[3] = {"dtype", "shape", "data_offsets"};
    const cJSON *fields[3] = {NULL, NULL, NULL};
    for (const cJSON *field = entry->child; field; field = field->next) {
        int k = 0;
        while (k < 3 && strcmp(field->string, keys[k]) != 0)
            k++;
        if (k == 3)
            return st_tensor_error(err, SDXL_ERR_FORMAT, label, t->name,
                                   "unknown key \"%.64s\" (an entry has only dtype, shape and "
                                   "data_offsets)",
                                   field->string);
        if (fields[k])
            return st_tensor_error(err, SDXL_ERR_FORMAT, label, t->name,
                                   "key \"%s\" appears twice", keys[k]);
        fields[k] = field;
    }
    for (int k = 0; k < 3; k++)
        if (!fields[k])
            return st_tensor_error(err, SDXL_ERR_FORMAT, label, t->name, "missing \"%s\"",
                                   keys[k]);

    uint64_t shape[SAFETENSORS_MAX_DIMS], begin, end;
    sdxl_status st = parse_dtype(label, t->name, fields[0], &t->type, err);
    if (st == SDXL_OK)
        st = parse_shape(label, t->name, fields[1], shape, &t->ndim, err);
    if (st == SDXL_OK)
        st = parse_offsets(label, t->name, fields[2], &begin, &end, err);
    if (st != SDXL_OK)
        return st;

    char shape_text[SHAPE_TEXT_MAX];
    shape_format(shape, t->ndim, shape_text, sizeof shape_text);
    uint64_t numel, nbytes;
    if (!st_shape_size(shape, t->ndim, t->type, &numel, &nbytes))
        return st_tensor_error(err, SDXL_ERR_FORMAT, label, t->name,
                               "shape %s × %s is more than 2^64 bytes", shape_text,
                               dtype_name(t->type));
    if (nbytes != end - begin)
        return st_tensor_error(err, SDXL_ERR_FORMAT, label, t->name,
                               "shape %s × %s is %llu bytes but data_offsets span %llu", shape_text,
                               dtype_name(t->type), (unsigned long long)nbytes,
                               (unsigned long long)(end - begin));
    if (end > data_size)
        return st_tensor_error(err, SDXL_ERR_FORMAT, label, t->name,
                               "data_offsets [%llu, %llu] run past the end of the data section "
                               "(%llu bytes): the file is truncated or its header is wrong",
                               (unsigned long long)begin, (unsigned long long)end,
                               (unsigned long long)data_size);
    for (int i = 0; i < t->ndim; i++)
        t->shape[i] = (int64_t)shape[i];
    t->numel = (size_t)numel;
    t->nbytes = (size_t)nbytes;
    t->data = data + begin;
    return SDXL_OK;
}

static sdxl_status parse_metadata(const char *label, const cJSON *object, st_metadata_entry *out,
                                  char **strings, sdxl_error *err)
{
    size_t i = 0;
    for (const cJSON *item = object->child; item; item = item->next, i++) {
        if (!cJSON_IsString(item))
            return error_set(err, SDXL_ERR_FORMAT,
                             "%s: __metadata__ key \"%.*s\": value is %s, but metadata values "
                             "must be strings",
                             label, ST_NAME_SHOWN, item->string, json_kind(item));
        size_t key_len = strlen(item->string) + 1, value_len = strlen(item->valuestring) + 1;
        out[i].key = memcpy(*strings, item->string, key_len);
        out[i].value = memcpy(*strings + key_len, item->valuestring, value_len);
        *strings += key_len + value_len;
    }
    return SDXL_OK;
}

static int compare_tensor_names(const void *a, const void *b)
{
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

/* By position in the data section; an empty tensor sorts before a non-empty one at the same
 * offset, and names break the remaining ties so messages do not depend on qsort. */
static int compare_tensor_ranges(const void *a, const void *b)
{
    const st_tensor *x = a, *y = b;
    if (x->data != y->data)
        return (const uint8_t *)x->data < (const uint8_t *)y->data ? -1 : 1;
    if (x->nbytes != y->nbytes)
        return x->nbytes < y->nbytes ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int compare_metadata_keys(const void *a, const void *b)
{
    return strcmp(((const st_metadata_entry *)a)->key, ((const st_metadata_entry *)b)->key);
}

/* The official reader requires each tensor to start where the previous one ends, from 0 to
 * the end of the data section: bytes owned by two tensors, or by none, mean a damaged file. */
static sdxl_status check_coverage(const char *label, st_tensor *tensors, size_t n,
                                  const uint8_t *data, uint64_t data_size, sdxl_error *err)
{
    qsort(tensors, n, sizeof *tensors, compare_tensor_ranges);
    uint64_t covered = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t begin = (uint64_t)((const uint8_t *)tensors[i].data - data);
        if (begin < covered)
            return st_tensor_error(err, SDXL_ERR_FORMAT, label, tensors[i].name,
                                   "data_offsets [%llu, %llu] overlap tensor \"%.*s\", which "
                                   "ends at %llu",
                                   (unsigned long long)begin,
                                   (unsigned long long)(begin + tensors[i].nbytes), ST_NAME_SHOWN,
                                   tensors[i - 1].name, (unsigned long long)covered);
        if (begin > covered)
            return error_set(err, SDXL_ERR_FORMAT,
                             "%s: bytes [%llu, %llu) of the data section belong to no tensor "
                             "(a hole before tensor \"%.*s\")",
                             label, (unsigned long long)covered, (unsigned long long)begin,
                             ST_NAME_SHOWN, tensors[i].name);
        covered = begin + tensors[i].nbytes;
    }
    if (covered != data_size)
        return error_set(err, SDXL_ERR_FORMAT,
                         "%s: bytes [%llu, %llu) of the data section belong to no tensor "
                         "(trailing bytes after the last tensor)",
                         label, (unsigned long long)covered, (unsigned long long)data_size);
    return SDXL_OK;
}

/* Validates the JSON header `root` and fills f's tables. */
static sdxl_status parse_header(safetensors_file *f, const cJSON *root, const uint8_t *data,
                                uint64_t data_size, sdxl_error *err)
{
    const char *label = f->path;
    if (!cJSON_IsObject(root))
        return error_set(err, SDXL_ERR_FORMAT,
                         "%s: header is %s, not a JSON object of tensors; this is not a "
                         "safetensors file",
                         label, json_kind(root));

    /* First pass: counts and the bytes the strings need, so everything is allocated once. */
    const cJSON *metadata = NULL;
    size_t string_bytes = 0;
    for (const cJSON *item = root->child; item; item = item->next) {
        if (strcmp(item->string, ST_METADATA_KEY) != 0) {
            f->n_tensors++;
            string_bytes += strlen(item->string) + 1;
            continue;
        }
        if (metadata)
            return error_set(err, SDXL_ERR_FORMAT, "%s: \"__metadata__\" appears twice", label);
        if (!cJSON_IsObject(metadata = item))
            return error_set(err, SDXL_ERR_FORMAT,
                             "%s: \"__metadata__\" is %s, but it must be an object of strings",
                             label, json_kind(item));
        for (const cJSON *m = item->child; m; m = m->next) {
            f->n_metadata++;
            string_bytes += strlen(m->string) + 1;
            if (cJSON_IsString(m))
                string_bytes += strlen(m->valuestring) + 1;
        }
    }
    f->tensors = calloc(f->n_tensors ? f->n_tensors : 1, sizeof *f->tensors);
    f->metadata = calloc(f->n_metadata ? f->n_metadata : 1, sizeof *f->metadata);
    f->strings = malloc(string_bytes ? string_bytes : 1);
    if (!f->tensors || !f->metadata || !f->strings)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY,
                         "%s: out of memory for a header of %zu tensors", label, f->n_tensors);

    char *strings = f->strings;
    size_t i = 0;
    for (const cJSON *item = root->child; item; item = item->next) {
        if (item == metadata)
            continue;
        size_t len = strlen(item->string) + 1;
        f->tensors[i].name = memcpy(strings, item->string, len);
        strings += len;
        sdxl_status st = parse_tensor(label, item, data, data_size, &f->tensors[i++], err);
        if (st != SDXL_OK)
            return st;
    }
    if (metadata) {
        sdxl_status st = parse_metadata(label, metadata, f->metadata, &strings, err);
        if (st != SDXL_OK)
            return st;
    }

    qsort(f->metadata, f->n_metadata, sizeof *f->metadata, compare_metadata_keys);
    for (i = 1; i < f->n_metadata; i++)
        if (strcmp(f->metadata[i - 1].key, f->metadata[i].key) == 0)
            return error_set(err, SDXL_ERR_FORMAT, "%s: __metadata__ key \"%.*s\" appears twice",
                             label, ST_NAME_SHOWN, f->metadata[i].key);
    qsort(f->tensors, f->n_tensors, sizeof *f->tensors, compare_tensor_names);
    for (i = 1; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i - 1].name, f->tensors[i].name) == 0)
            return st_tensor_error(err, SDXL_ERR_FORMAT, label, f->tensors[i].name,
                                   "the name appears twice in the header");
    sdxl_status st = check_coverage(label, f->tensors, f->n_tensors, data, data_size, err);
    qsort(f->tensors, f->n_tensors, sizeof *f->tensors, compare_tensor_names);
    return st;
}

/* Validates the image of a whole file; f->path is already its label. */
static sdxl_status parse_image(safetensors_file *f, const uint8_t *bytes, size_t size,
                               sdxl_error *err)
{
    const char *label = f->path;
    if (size < ST_LENGTH_BYTES)
        return error_set(err, SDXL_ERR_FORMAT,
                         "%s: file is %zu bytes, shorter than the 8-byte header length; it is "
                         "truncated or not a safetensors file",
                         label, size);
    uint64_t header_len = 0;
    for (int i = ST_LENGTH_BYTES - 1; i >= 0; i--)
        header_len = header_len << 8 | bytes[i];
    if (header_len > SAFETENSORS_MAX_HEADER)
        return error_set(err, SDXL_ERR_FORMAT,
                         "%s: header length %llu is over the limit of %u bytes; the file is "
                         "damaged or not a safetensors file",
                         label, (unsigned long long)header_len, SAFETENSORS_MAX_HEADER);
    if (header_len > size - ST_LENGTH_BYTES)
        return error_set(err, SDXL_ERR_FORMAT,
                         "%s: header length %llu runs past the end of the file (%zu bytes); "
                         "the file is truncated",
                         label, (unsigned long long)header_len, size);
    const char *header = (const char *)bytes + ST_LENGTH_BYTES;
    if (!st_utf8_valid((const uint8_t *)header, header_len))
        return error_set(err, SDXL_ERR_FORMAT, "%s: header is not valid UTF-8", label);

    /* cJSON parses a NUL-terminated copy: releases before the fix for CVE-2023-53154 read past
     * the end of an unterminated buffer, and the header may end where the mapping does. */
    char *text = malloc(header_len + 1);
    if (!text)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "%s: out of memory for a %llu-byte header",
                         label, (unsigned long long)header_len);
    memcpy(text, header, header_len);
    text[header_len] = '\0';
    const char *parse_end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, header_len, &parse_end, false);
    ptrdiff_t at = parse_end ? parse_end - text : 0;
    /* cJSON stops after the first value; the official writer pads with spaces, nothing else. */
    while (root && at < (ptrdiff_t)header_len && text[at] && strchr(" \t\n\r", text[at]))
        at++;
    free(text);
    if (!root)
        return error_set(err, SDXL_ERR_FORMAT,
                         "%s: header is not valid JSON (error near byte %td of %llu)", label, at,
                         (unsigned long long)header_len);
    if (at < (ptrdiff_t)header_len) {
        cJSON_Delete(root);
        return error_set(err, SDXL_ERR_FORMAT,
                         "%s: header has bytes after its JSON object (at byte %td of %llu)",
                         label, at, (unsigned long long)header_len);
    }
    const uint8_t *data = bytes + ST_LENGTH_BYTES + header_len;
    sdxl_status st =
        parse_header(f, root, data, size - ST_LENGTH_BYTES - header_len, err);
    cJSON_Delete(root);
    return st;
}

sdxl_status safetensors_parse(safetensors_file *f, const void *data, size_t size,
                              const char *label, sdxl_error *err)
{
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s", label);
    sdxl_status st = parse_image(f, data, size, err);
    if (st != SDXL_OK)
        safetensors_close(f);
    return st;
}

sdxl_status safetensors_open(safetensors_file *f, const char *path, sdxl_error *err)
{
    memset(f, 0, sizeof *f);
    if (strlen(path) >= sizeof f->path)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%.64s...: path is longer than %zu bytes; use a shorter path", path,
                         sizeof f->path - 1);
    memcpy(f->path, path, strlen(path) + 1);

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return error_set(err, errno == ENOENT ? SDXL_ERR_NOT_FOUND : SDXL_ERR_IO,
                         "%s: cannot open: %s", path, strerror(errno));
    struct stat info;
    if (fstat(fd, &info) != 0) {
        int saved = errno;
        close(fd);
        return error_set(err, SDXL_ERR_IO, "%s: cannot stat: %s", path, strerror(saved));
    }
    if (!S_ISREG(info.st_mode)) {
        close(fd);
        return error_set(err, SDXL_ERR_IO, "%s: not a regular file", path);
    }
    size_t size = (size_t)info.st_size;
    void *map = NULL;
    if (size > 0) {
        /* MAP_PRIVATE: nothing we do can reach the file, and its pages stay shared. */
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int saved = errno;
            close(fd);
            return error_set(err, SDXL_ERR_IO, "%s: cannot map %zu bytes: %s", path, size,
                             strerror(saved));
        }
    }
    close(fd);
    f->map = map;
    f->map_size = size;
    sdxl_status st = parse_image(f, map ? map : (const void *)"", size, err);
    if (st != SDXL_OK)
        safetensors_close(f);
    return st;
}

void safetensors_close(safetensors_file *f)
{
    if (f->map)
        munmap(f->map, f->map_size);
    free(f->tensors);
    free(f->metadata);
    free(f->strings);
    memset(f, 0, sizeof *f);
}

static int compare_name_to_tensor(const void *key, const void *element)
{
    return strcmp(key, ((const st_tensor *)element)->name);
}

static int compare_key_to_metadata(const void *key, const void *element)
{
    return strcmp(key, ((const st_metadata_entry *)element)->key);
}

const st_tensor *safetensors_find(const safetensors_file *f, const char *name)
{
    if (f->n_tensors == 0)
        return NULL;
    return bsearch(name, f->tensors, f->n_tensors, sizeof *f->tensors, compare_name_to_tensor);
}

const char *safetensors_metadata(const safetensors_file *f, const char *key)
{
    if (f->n_metadata == 0)
        return NULL;
    const st_metadata_entry *entry = bsearch(key, f->metadata, f->n_metadata,
                                             sizeof *f->metadata, compare_key_to_metadata);
    return entry ? entry->value : NULL;
}
