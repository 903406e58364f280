/*
 * safetensors.c — the safetensors reader (a mapped file treated as hostile) and the streaming
 * writer (see safetensors.h for the format and the guarantees).
 *
 * The reader accepts what the official safetensors library accepts, for the dtypes sdxld
 * knows: UTF-8 JSON header, exact-integer shapes and offsets, every byte of the data section
 * owned by exactly one tensor. The writer writes what safetensors' save_file writes for the
 * same tensors in the same order (compact JSON in serde_json's spelling, header padded with
 * spaces to a multiple of 8), so its files are byte-identical on every machine.
 */
#include "io/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

/* Mapped files larger than 4 GB are the norm (a UNet in fp32 is 10 GB). */
_Static_assert(sizeof(size_t) >= sizeof(uint64_t), "sdxld needs a 64-bit size_t");

#define HEADER_LENGTH_BYTES 8
/* The largest integer a JSON number (a double in cJSON) holds exactly. */
#define JSON_MAX_EXACT_INTEGER 9007199254740992.0
/* How much of a (possibly huge, hostile) name a message quotes, so the problem still fits. */
#define NAME_SHOWN 160
/* Room for "[d0, d1, ..., d7]" with 16-digit dimensions. */
#define SHAPE_TEXT_MAX (SAFETENSORS_MAX_DIMS * 24 + 8)

static const char METADATA_KEY[] = "__metadata__";

/* ---------------------------------------------------------------------------------------------
 * Shared by reader and writer
 */

/* numel and nbytes of a shape; false when either does not fit in 64 bits. A zero dimension
 * makes the tensor empty whatever the others are, as in numpy and torch. */
static bool shape_size(const uint64_t *shape, int ndim, dtype type, uint64_t *numel,
                       uint64_t *nbytes)
{
    uint64_t count = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == 0) {
            count = 0;
            break;
        }
    }
    for (int i = 0; i < ndim && count != 0; i++) {
        if (count > UINT64_MAX / shape[i])
            return false;
        count *= shape[i];
    }
    uint64_t size = dtype_size(type);
    if (count > UINT64_MAX / size)
        return false;
    *numel = count;
    *nbytes = count * size;
    return true;
}

static void shape_format(const uint64_t *shape, int ndim, char *out, size_t cap)
{
    size_t len = (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < ndim && len < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, i ? ", %llu" : "%llu",
                                (unsigned long long)shape[i]);
    if (len < cap)
        snprintf(out + len, cap - len, "]");
}

/* Strict UTF-8 (as Rust's str::from_utf8, which the official reader applies to the header):
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
static bool utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t extra;
        uint32_t lo = 0x80, hi = 0xBF; /* allowed range of the first continuation byte */
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            extra = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            extra = 2;
            if (c == 0xE0)
                lo = 0xA0;
            else if (c == 0xED)
                hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            extra = 3;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F;
        } else {
            return false;
        }
        if (n - i <= extra || s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (size_t k = 2; k <= extra; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
        i += extra + 1;
    }
    return true;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* ---------------------------------------------------------------------------------------------
 * Reader
 */

static sdxl_status tensor_error(sdxl_error *err, sdxl_status code, const char *label,
                                const char *name, const char *fmt, ...) SDXL_PRINTF(5, 6);

/* "LABEL: tensor "NAME": PROBLEM", with the name cut so the problem is never truncated. */
static sdxl_status tensor_error(sdxl_error *err, sdxl_status code, const char *label,
                                const char *name, const char *fmt, ...)
{
    char problem[SDXL_ERROR_MESSAGE_MAX];
    va_list args;
    va_start(args, fmt);
    vsnprintf(problem, sizeof problem, fmt, args);
    va_end(args);
    size_t name_len = strlen(name);
    return error_set(err, code, "%s: tensor \"%.*s%s\": %s", label, NAME_SHOWN, name,
                     name_len > NAME_SHOWN ? "..." : "", problem);
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
    if (!(d >= 0.0 && d <= JSON_MAX_EXACT_INTEGER))
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
        return tensor_error(err, SDXL_ERR_FORMAT, label, name,
                            "\"dtype\" must be a string such as \"F16\", not %s", json_kind(v));
    if (!dtype_parse(v->valuestring, out)) {
        char known[128];
        supported_dtypes(known, sizeof known);
        return tensor_error(err, SDXL_ERR_UNSUPPORTED, label, name,
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
        return tensor_error(err, SDXL_ERR_FORMAT, label, name,
                            "\"shape\" must be an array of integers, not %s", json_kind(v));
    int n = 0;
    for (const cJSON *dim = v->child; dim; dim = dim->next, n++) {
        if (n == SAFETENSORS_MAX_DIMS)
            return tensor_error(err, SDXL_ERR_UNSUPPORTED, label, name,
                                "shape has more than %d dimensions, the most sdxld supports",
                                SAFETENSORS_MAX_DIMS);
        if (!json_exact_u64(dim, &shape[n])) {
            char got[64];
            json_describe(dim, got, sizeof got);
            return tensor_error(err, SDXL_ERR_FORMAT, label, name,
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
        return tensor_error(err, SDXL_ERR_FORMAT, label, name,
                            "\"data_offsets\" must be an array of two integers [begin, end]");
    for (const cJSON *item = first; item; item = item->next) {
        if (!json_exact_u64(item, item == first ? begin : end)) {
            char got[64];
            json_describe(item, got, sizeof got);
            return tensor_error(err, SDXL_ERR_FORMAT, label, name,
                                "data_offsets %s is %s; offsets must be integers from 0 to 2^53",
                                item == first ? "begin" : "end", got);
        }
    }
    if (*begin > *end)
        return tensor_error(err, SDXL_ERR_FORMAT, label, name,
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
        return tensor_error(err, SDXL_ERR_FORMAT, label, t->name,
                            "expected an object with dtype, shape and data_offsets, not %s",
                            json_kind(entry));
    static const char *const keys[3] = {"dtype", "shape", "data_offsets"};
    const cJSON *fields[3] = {NULL, NULL, NULL};
    for (const cJSON *field = entry->child; field; field = field->next) {
        int k = 0;
        while (k < 3 && strcmp(field->string, keys[k]) != 0)
            k++;
        if (k == 3)
            return tensor_error(err, SDXL_ERR_FORMAT, label, t->name,
                                "unknown key \"%.64s\" (an entry has only dtype, shape and "
                                "data_offsets)",
                                field->string);
        if (fields[k])
            return tensor_error(err, SDXL_ERR_FORMAT, label, t->name,
                                "key \"%s\" appears twice", keys[k]);
        fields[k] = field;
    }
    for (int k = 0; k < 3; k++)
        if (!fields[k])
            return tensor_error(err, SDXL_ERR_FORMAT, label, t->name, "missing \"%s\"",
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
    if (!shape_size(shape, t->ndim, t->type, &numel, &nbytes))
        return tensor_error(err, SDXL_ERR_FORMAT, label, t->name,
                            "shape %s × %s is more than 2^64 bytes", shape_text,
                            dtype_name(t->type));
    if (nbytes != end - begin)
        return tensor_error(err, SDXL_ERR_FORMAT, label, t->name,
                            "shape %s × %s is %llu bytes but data_offsets span %llu", shape_text,
                            dtype_name(t->type), (unsigned long long)nbytes,
                            (unsigned long long)(end - begin));
    if (end > data_size)
        return tensor_error(err, SDXL_ERR_FORMAT, label, t->name,
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
                             label, NAME_SHOWN, item->string, json_kind(item));
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
            return tensor_error(err, SDXL_ERR_FORMAT, label, tensors[i].name,
                                "data_offsets [%llu, %llu] overlap tensor \"%.*s\", which "
                                "ends at %llu",
                                (unsigned long long)begin,
                                (unsigned long long)(begin + tensors[i].nbytes), NAME_SHOWN,
                                tensors[i - 1].name, (unsigned long long)covered);
        if (begin > covered)
            return error_set(err, SDXL_ERR_FORMAT,
                             "%s: bytes [%llu, %llu) of the data section belong to no tensor "
                             "(a hole before tensor \"%.*s\")",
                             label, (unsigned long long)covered, (unsigned long long)begin,
                             NAME_SHOWN, tensors[i].name);
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
        if (strcmp(item->string, METADATA_KEY) != 0) {
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
                             label, NAME_SHOWN, f->metadata[i].key);
    qsort(f->tensors, f->n_tensors, sizeof *f->tensors, compare_tensor_names);
    for (i = 1; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i - 1].name, f->tensors[i].name) == 0)
            return tensor_error(err, SDXL_ERR_FORMAT, label, f->tensors[i].name,
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
    if (size < HEADER_LENGTH_BYTES)
        return error_set(err, SDXL_ERR_FORMAT,
                         "%s: file is %zu bytes, shorter than the 8-byte header length; it is "
                         "truncated or not a safetensors file",
                         label, size);
    uint64_t header_len = 0;
    for (int i = HEADER_LENGTH_BYTES - 1; i >= 0; i--)
        header_len = header_len << 8 | bytes[i];
    if (header_len > SAFETENSORS_MAX_HEADER)
        return error_set(err, SDXL_ERR_FORMAT,
                         "%s: header length %llu is over the limit of %u bytes; the file is "
                         "damaged or not a safetensors file",
                         label, (unsigned long long)header_len, SAFETENSORS_MAX_HEADER);
    if (header_len > size - HEADER_LENGTH_BYTES)
        return error_set(err, SDXL_ERR_FORMAT,
                         "%s: header length %llu runs past the end of the file (%zu bytes); "
                         "the file is truncated",
                         label, (unsigned long long)header_len, size);
    const char *header = (const char *)bytes + HEADER_LENGTH_BYTES;
    if (!utf8_valid((const uint8_t *)header, header_len))
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
    const uint8_t *data = bytes + HEADER_LENGTH_BYTES + header_len;
    sdxl_status st =
        parse_header(f, root, data, size - HEADER_LENGTH_BYTES - header_len, err);
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

/* ---------------------------------------------------------------------------------------------
 * Writer
 */

/* A growing string for the header. */
typedef struct header_text {
    char *text;
    size_t len, cap;
    bool out_of_memory;
} header_text;

static void text_append(header_text *t, const char *s, size_t n)
{
    if (t->out_of_memory)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (t->len + n + 1 > cap)
            cap *= 2;
        char *grown = realloc(t->text, cap);
        if (!grown) {
            t->out_of_memory = true;
            return;
        }
        t->text = grown;
        t->cap = cap;
    }
    memcpy(t->text + t->len, s, n);
    t->len += n;
    t->text[t->len] = '\0';
}

static void text_puts(header_text *t, const char *s)
{
    text_append(t, s, strlen(s));
}

static void text_u64(header_text *t, uint64_t v)
{
    char digits[24];
    text_append(t, digits, (size_t)snprintf(digits, sizeof digits, "%llu", (unsigned long long)v));
}

/* A JSON string as serde_json spells it (what the official writer uses): short escapes for
 * quote, backslash, \b \f \n \r \t; \u00xx (lower-case hex) for other control characters;
 * every other byte as is. */
static void text_json_string(header_text *t, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    text_puts(t, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        const char *escape = NULL;
        switch (c) {
        case '"': escape = "\\\""; break;
        case '\\': escape = "\\\\"; break;
        case '\b': escape = "\\b"; break;
        case '\f': escape = "\\f"; break;
        case '\n': escape = "\\n"; break;
        case '\r': escape = "\\r"; break;
        case '\t': escape = "\\t"; break;
        default: break;
        }
        if (escape) {
            text_puts(t, escape);
        } else if (c < 0x20) {
            char u[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], '\0'};
            text_puts(t, u);
        } else {
            text_append(t, s, 1);
        }
    }
    text_puts(t, "\"");
}

/* The data bytes of a tensor to be written (dimensions already checked non-negative);
 * UINT64_MAX when they do not fit in 64 bits. */
static uint64_t info_nbytes(const st_tensor_info *t)
{
    uint64_t shape[SAFETENSORS_MAX_DIMS], numel, nbytes;
    for (int d = 0; d < t->ndim; d++)
        shape[d] = (uint64_t)t->shape[d];
    return shape_size(shape, t->ndim, t->type, &numel, &nbytes) ? nbytes : UINT64_MAX;
}

static bool string_valid(const char *s)
{
    return s && utf8_valid((const uint8_t *)s, strlen(s));
}

/* Names the first string that appears twice in names[0..n) (which it sorts), or NULL. */
static const char *first_duplicate(const char **names, size_t n)
{
    qsort(names, n, sizeof *names, compare_strings);
    for (size_t i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) == 0)
            return names[i];
    return NULL;
}

static sdxl_status check_metadata(const char *path, const char *const *metadata, size_t *count,
                                  sdxl_error *err)
{
    size_t n = 0;
    while (metadata && metadata[2 * n]) {
        if (!string_valid(metadata[2 * n]) || !string_valid(metadata[2 * n + 1]))
            return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                             "%s: metadata entry %zu: key and value must be UTF-8 strings", path,
                             n);
        n++;
    }
    const char **keys = malloc((n ? n : 1) * sizeof *keys);
    if (!keys)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++)
        keys[i] = metadata[2 * i];
    const char *dup = first_duplicate(keys, n);
    sdxl_status st = SDXL_OK;
    if (dup)
        st = error_set(err, SDXL_ERR_INVALID_ARGUMENT, "%s: metadata key \"%.*s\" given twice",
                       path, NAME_SHOWN, dup);
    free(keys);
    *count = n;
    return st;
}

/* Checks every tensor and sums their sizes into *data_bytes. */
static sdxl_status check_tensors(const char *path, const st_tensor_info *tensors, size_t n,
                                 uint64_t *data_bytes, sdxl_error *err)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const st_tensor_info *t = &tensors[i];
        if (!string_valid(t->name) || strcmp(t->name, METADATA_KEY) == 0)
            return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                             "%s: tensor %zu: the name must be a UTF-8 string other than "
                             "\"__metadata__\"",
                             path, i);
        if ((unsigned)t->type >= DTYPE_COUNT)
            return tensor_error(err, SDXL_ERR_INVALID_ARGUMENT, path, t->name,
                                "unknown dtype value %d", (int)t->type);
        if (t->ndim < 0 || t->ndim > SAFETENSORS_MAX_DIMS)
            return tensor_error(err, SDXL_ERR_INVALID_ARGUMENT, path, t->name,
                                "ndim %d is outside 0..%d", t->ndim, SAFETENSORS_MAX_DIMS);
        for (int d = 0; d < t->ndim; d++)
            if (t->shape[d] < 0)
                return tensor_error(err, SDXL_ERR_INVALID_ARGUMENT, path, t->name,
                                    "dimension %d is negative (%lld)", d,
                                    (long long)t->shape[d]);
        uint64_t nbytes = info_nbytes(t);
        if (nbytes > (uint64_t)JSON_MAX_EXACT_INTEGER - total)
            return tensor_error(err, SDXL_ERR_INVALID_ARGUMENT, path, t->name,
                                "the file would be larger than 2^53 bytes");
        total += nbytes;
    }
    const char **names = malloc((n ? n : 1) * sizeof *names);
    if (!names)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++)
        names[i] = tensors[i].name;
    const char *dup = first_duplicate(names, n);
    sdxl_status st = SDXL_OK;
    if (dup)
        st = tensor_error(err, SDXL_ERR_INVALID_ARGUMENT, path, dup, "given twice");
    free(names);
    *data_bytes = total;
    return st;
}

/* The header JSON, in the given order, padded with spaces to a multiple of 8 so the data
 * section starts aligned (as the official writer does). */
static void header_build(header_text *h, const st_tensor_info *tensors, size_t n,
                         const char *const *metadata, size_t n_metadata)
{
    text_puts(h, "{");
    if (metadata) {
        text_json_string(h, METADATA_KEY);
        text_puts(h, ":{");
        for (size_t i = 0; i < n_metadata; i++) {
            text_puts(h, i ? "," : "");
            text_json_string(h, metadata[2 * i]);
            text_puts(h, ":");
            text_json_string(h, metadata[2 * i + 1]);
        }
        text_puts(h, n ? "}," : "}");
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < n; i++) {
        const st_tensor_info *t = &tensors[i];
        uint64_t nbytes = info_nbytes(t);
        text_puts(h, i ? "," : "");
        text_json_string(h, t->name);
        text_puts(h, ":{\"dtype\":");
        text_json_string(h, dtype_name(t->type));
        text_puts(h, ",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            text_puts(h, d ? "," : "");
            text_u64(h, (uint64_t)t->shape[d]);
        }
        text_puts(h, "],\"data_offsets\":[");
        text_u64(h, offset);
        text_puts(h, ",");
        text_u64(h, offset + nbytes);
        text_puts(h, "]}");
        offset += nbytes;
    }
    text_puts(h, "}");
    while (h->len % HEADER_LENGTH_BYTES != 0)
        text_puts(h, " ");
}

static sdxl_status write_bytes(safetensors_writer *w, const void *data, size_t n,
                               sdxl_error *err)
{
    if (n > 0 && fwrite(data, 1, n, w->out) != n) {
        int saved = errno;
        safetensors_writer_abort(w);
        return error_set(err, SDXL_ERR_IO, "%s: write failed: %s", w->path, strerror(saved));
    }
    return SDXL_OK;
}

sdxl_status safetensors_writer_open(safetensors_writer *w, const char *path,
                                    const st_tensor_info *tensors, size_t n,
                                    const char *const *metadata, sdxl_error *err)
{
    memset(w, 0, sizeof *w);
    if (strlen(path) >= sizeof w->path)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%.64s...: path is longer than %zu bytes; use a shorter path", path,
                         sizeof w->path - 1);
    snprintf(w->path, sizeof w->path, "%s", path);
    snprintf(w->tmp_path, sizeof w->tmp_path, "%s.tmp", path);

    size_t n_metadata = 0;
    uint64_t data_bytes = 0;
    sdxl_status st = check_metadata(path, metadata, &n_metadata, err);
    if (st == SDXL_OK)
        st = check_tensors(path, tensors, n, &data_bytes, err);
    if (st != SDXL_OK)
        return st;

    header_text h = {0};
    header_build(&h, tensors, n, metadata, n_metadata);
    if (h.out_of_memory) {
        free(h.text);
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "%s: out of memory for the header", path);
    }
    if (h.len > SAFETENSORS_MAX_HEADER) {
        free(h.text);
        return error_set(err, SDXL_ERR_LIMIT,
                         "%s: the header would be %zu bytes, over the limit of %u readers "
                         "accept; write the tensors into several files",
                         path, h.len, SAFETENSORS_MAX_HEADER);
    }

    w->out = fopen(w->tmp_path, "wb");
    if (!w->out) {
        free(h.text);
        return error_set(err, SDXL_ERR_IO, "%s: cannot create: %s", w->tmp_path,
                         strerror(errno));
    }
    uint8_t length[HEADER_LENGTH_BYTES];
    for (int i = 0; i < HEADER_LENGTH_BYTES; i++)
        length[i] = (uint8_t)((uint64_t)h.len >> (8 * i));
    st = write_bytes(w, length, sizeof length, err);
    if (st == SDXL_OK)
        st = write_bytes(w, h.text, h.len, err);
    free(h.text);
    w->data_bytes = data_bytes;
    return st;
}

sdxl_status safetensors_writer_write(safetensors_writer *w, const void *data, size_t nbytes,
                                     sdxl_error *err)
{
    if (!w->out)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: writer is not open (an earlier call failed or it was closed)",
                         w->path);
    if (nbytes > w->data_bytes - w->written_bytes) {
        uint64_t written = w->written_bytes, expected = w->data_bytes;
        safetensors_writer_abort(w);
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: writing %zu more bytes after %llu would pass the %llu bytes the "
                         "tensors declare; the file was abandoned",
                         w->path, nbytes, (unsigned long long)written,
                         (unsigned long long)expected);
    }
    sdxl_status st = write_bytes(w, data, nbytes, err);
    if (st == SDXL_OK)
        w->written_bytes += nbytes;
    return st;
}

sdxl_status safetensors_writer_close(safetensors_writer *w, sdxl_error *err)
{
    if (!w->out)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: writer is not open (an earlier call failed or it was closed)",
                         w->path);
    if (w->written_bytes != w->data_bytes) {
        uint64_t written = w->written_bytes, expected = w->data_bytes;
        safetensors_writer_abort(w);
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: only %llu of the %llu data bytes the tensors declare were "
                         "written; the file was abandoned",
                         w->path, (unsigned long long)written, (unsigned long long)expected);
    }
    /* fsync before rename: after a crash the path holds either the old file or all of the
     * new one, never a prefix. */
    FILE *out = w->out;
    w->out = NULL;
    bool ok = fflush(out) == 0 && fsync(fileno(out)) == 0;
    int saved = errno;
    ok = fclose(out) == 0 && ok;
    if (ok && rename(w->tmp_path, w->path) != 0) {
        ok = false;
        saved = errno;
    }
    if (!ok) {
        remove(w->tmp_path);
        return error_set(err, SDXL_ERR_IO, "%s: cannot finish writing: %s", w->path,
                         strerror(saved));
    }
    return SDXL_OK;
}

void safetensors_writer_abort(safetensors_writer *w)
{
    if (!w->out)
        return;
    fclose(w->out);
    w->out = NULL;
    remove(w->tmp_path);
}

sdxl_status safetensors_write_file(const char *path, const st_tensor_info *tensors,
                                   const void *const *data, size_t n,
                                   const char *const *metadata, sdxl_error *err)
{
    safetensors_writer w;
    sdxl_status st = safetensors_writer_open(&w, path, tensors, n, metadata, err);
    for (size_t i = 0; i < n && st == SDXL_OK; i++) {
        st = safetensors_writer_write(&w, data[i], (size_t)info_nbytes(&tensors[i]), err);
    }
    return st == SDXL_OK ? safetensors_writer_close(&w, err) : st;
}
