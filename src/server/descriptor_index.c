/*
 * descriptor_index.c — reading a FileDescriptorSet (see descriptor_index.h).
 *
 * Field numbers used (google/protobuf/descriptor.proto): FileDescriptorSet.file = 1;
 * FileDescriptorProto name = 1, package = 2, dependency = 3, message_type = 4, enum_type = 5,
 * service = 6; DescriptorProto name = 1, nested_type = 3, enum_type = 4; EnumDescriptorProto
 * name = 1; ServiceDescriptorProto name = 1, method = 2; MethodDescriptorProto name = 1.
 */
#include "server/descriptor_index.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_NESTING = 32, MAX_NAME = 512 };

typedef struct pb_field {
    uint32_t number;
    uint32_t wire;
    const uint8_t *data; /* wire type 2 */
    size_t size;
} pb_field;

typedef struct pb_reader {
    const uint8_t *p, *end;
    bool bad;
} pb_reader;

static bool read_varint(pb_reader *r, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end)
            return false;
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* The next field; false at the end or (with r->bad) on malformed bytes. */
static bool next_field(pb_reader *r, pb_field *f)
{
    if (r->p >= r->end || r->bad)
        return false;
    uint64_t key, v;
    if (!read_varint(r, &key) || (key >> 3) == 0 || (key >> 3) > 0x1fffffff)
        goto bad;
    f->number = (uint32_t)(key >> 3);
    f->wire = (uint32_t)(key & 7);
    f->data = NULL;
    f->size = 0;
    switch (f->wire) {
    case 0:
        if (!read_varint(r, &v))
            goto bad;
        return true;
    case 1:
        if (r->end - r->p < 8)
            goto bad;
        r->p += 8;
        return true;
    case 2:
        if (!read_varint(r, &v) || v > (uint64_t)(r->end - r->p))
            goto bad;
        f->data = r->p;
        f->size = (size_t)v;
        r->p += v;
        return true;
    case 5:
        if (r->end - r->p < 4)
            goto bad;
        r->p += 4;
        return true;
    default:
        goto bad;
    }
bad:
    r->bad = true;
    return false;
}

static char *dup_bytes(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s) {
        memcpy(s, data, size);
        s[size] = '\0';
    }
    return s;
}

static bool push_string(char ***list, int *n, char *s)
{
    if (!s)
        return false;
    char **grown = realloc(*list, (size_t)(*n + 1) * sizeof **list);
    if (!grown) {
        free(s);
        return false;
    }
    grown[(*n)++] = s;
    *list = grown;
    return true;
}

/* "prefix.name" (or "name" with an empty prefix) into a new string. */
static char *qualify(const char *prefix, const uint8_t *name, size_t size)
{
    size_t plen = strlen(prefix);
    if (plen + size + 2 > MAX_NAME)
        return NULL;
    char *s = malloc(plen + size + 2);
    if (!s)
        return NULL;
    size_t n = 0;
    if (plen) {
        memcpy(s, prefix, plen);
        s[plen] = '.';
        n = plen + 1;
    }
    memcpy(s + n, name, size);
    s[n + size] = '\0';
    return s;
}

/* The name (field 1) of a DescriptorProto-like message. */
static bool name_of(const uint8_t *data, size_t size, const uint8_t **name, size_t *name_size)
{
    pb_reader r = {data, data + size, false};
    pb_field f;
    *name = NULL;
    *name_size = 0;
    while (next_field(&r, &f))
        if (f.number == 1 && f.wire == 2) {
            *name = f.data;
            *name_size = f.size;
        }
    return !r.bad && *name && *name_size > 0;
}

typedef enum { KIND_MESSAGE, KIND_ENUM, KIND_SERVICE } symbol_kind;

static bool add_symbols(desc_index *idx, desc_file *file, const char *prefix,
                        const uint8_t *data, size_t size, symbol_kind kind, int depth)
{
    const uint8_t *name;
    size_t name_size;
    if (depth > MAX_NESTING || !name_of(data, size, &name, &name_size))
        return false;
    char *full = qualify(prefix, name, name_size);
    if (!full)
        return false;
    if (kind == KIND_SERVICE && !push_string(&idx->services, &idx->n_services, strdup(full))) {
        free(full);
        return false;
    }
    if (!push_string(&file->symbols, &file->n_symbols, full))
        return false;
    if (kind == KIND_ENUM)
        return true;
    pb_reader r = {data, data + size, false};
    pb_field f;
    while (next_field(&r, &f)) {
        if (f.wire != 2)
            continue;
        if (kind == KIND_MESSAGE && (f.number == 3 || f.number == 4)) {
            if (!add_symbols(idx, file, full, f.data, f.size,
                             f.number == 3 ? KIND_MESSAGE : KIND_ENUM, depth + 1))
                return false;
        } else if (kind == KIND_SERVICE && f.number == 2) {
            const uint8_t *method;
            size_t method_size;
            if (!name_of(f.data, f.size, &method, &method_size) ||
                !push_string(&file->symbols, &file->n_symbols,
                             qualify(full, method, method_size)))
                return false;
        }
    }
    return !r.bad;
}

static bool index_file(desc_index *idx, desc_file *file)
{
    pb_reader r = {file->data, file->data + file->size, false};
    pb_field f;
    char package[MAX_NAME] = "";
    /* The package may come after the definitions in principle: read it first. */
    while (next_field(&r, &f))
        if (f.number == 2 && f.wire == 2) {
            if (f.size >= sizeof package)
                return false;
            memcpy(package, f.data, f.size);
            package[f.size] = '\0';
        } else if (f.number == 1 && f.wire == 2) {
            free(file->name);
            file->name = dup_bytes(f.data, f.size);
            if (!file->name)
                return false;
        } else if (f.number == 3 && f.wire == 2) {
            if (!push_string(&file->deps, &file->n_deps, dup_bytes(f.data, f.size)))
                return false;
        }
    if (r.bad || !file->name || !file->name[0])
        return false;
    r = (pb_reader){file->data, file->data + file->size, false};
    while (next_field(&r, &f)) {
        if (f.wire != 2)
            continue;
        symbol_kind kind = f.number == 4 ? KIND_MESSAGE : f.number == 5 ? KIND_ENUM : KIND_SERVICE;
        if ((f.number == 4 || f.number == 5 || f.number == 6) &&
            !add_symbols(idx, file, package, f.data, f.size, kind, 0))
            return false;
    }
    return !r.bad;
}

sdxl_status desc_index_build(const uint8_t *data, size_t size, desc_index *out,
                             sdxl_error *err)
{
    memset(out, 0, sizeof *out);
    pb_reader r = {data, data + size, false};
    pb_field f;
    while (next_field(&r, &f)) {
        if (f.number != 1 || f.wire != 2)
            continue;
        desc_file *grown = realloc(out->files, (size_t)(out->n_files + 1) * sizeof *grown);
        if (!grown) {
            desc_index_free(out);
            return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "descriptor index: out of memory");
        }
        out->files = grown;
        desc_file *file = &out->files[out->n_files++];
        memset(file, 0, sizeof *file);
        file->data = f.data;
        file->size = f.size;
        if (!index_file(out, file)) {
            int n = out->n_files;
            desc_index_free(out);
            return error_set(err, SDXL_ERR_FORMAT, "descriptor set: file %d is malformed", n);
        }
    }
    if (r.bad) {
        desc_index_free(out);
        return error_set(err, SDXL_ERR_FORMAT, "descriptor set: malformed wire data");
    }
    return SDXL_OK;
}

static void free_list(char **list, int n)
{
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

void desc_index_free(desc_index *idx)
{
    for (int i = 0; i < idx->n_files; i++) {
        free(idx->files[i].name);
        free_list(idx->files[i].deps, idx->files[i].n_deps);
        free_list(idx->files[i].symbols, idx->files[i].n_symbols);
    }
    free(idx->files);
    free_list(idx->services, idx->n_services);
    memset(idx, 0, sizeof *idx);
}

const desc_file *desc_index_find_file(const desc_index *idx, const char *name)
{
    for (int i = 0; i < idx->n_files; i++)
        if (strcmp(idx->files[i].name, name) == 0)
            return &idx->files[i];
    return NULL;
}

const desc_file *desc_index_find_symbol(const desc_index *idx, const char *symbol)
{
    for (int i = 0; i < idx->n_files; i++)
        for (int k = 0; k < idx->files[i].n_symbols; k++)
            if (strcmp(idx->files[i].symbols[k], symbol) == 0)
                return &idx->files[i];
    return NULL;
}
