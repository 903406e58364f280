/*
 * descriptor_index.h — an index over a FileDescriptorSet (protoc --include_imports
 * --descriptor_set_out): each file's name, serialized bytes, dependencies and the fully
 * qualified symbols it defines (messages, nested messages, enums, services, methods), and the
 * services — what server reflection answers from.
 *
 * protobuf-c does not embed descriptors, so the set is compiled into sdxld as bytes and read
 * here with a small wire-format reader (bounds-checked; fuzz_descriptor_index feeds it junk).
 */
#ifndef SDXL_SERVER_DESCRIPTOR_INDEX_H
#define SDXL_SERVER_DESCRIPTOR_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

typedef struct desc_file {
    char *name;
    const uint8_t *data; /* the serialized FileDescriptorProto (points into the set) */
    size_t size;
    char **deps;
    int n_deps;
    char **symbols;
    int n_symbols;
} desc_file;

typedef struct desc_index {
    desc_file *files;
    int n_files;
    char **services; /* fully qualified */
    int n_services;
} desc_index;

/* Indexes the set (which must outlive the index). SDXL_ERR_FORMAT for malformed bytes. */
sdxl_status desc_index_build(const uint8_t *data, size_t size, desc_index *out,
                             sdxl_error *err);
void desc_index_free(desc_index *idx);

const desc_file *desc_index_find_file(const desc_index *idx, const char *name);
/* The file defining symbol ("sdxl.v1.ImageGeneration", "...ImageGeneration.Img2Img",
 * "sdxl.v1.Img2ImgRequest"), or NULL. */
const desc_file *desc_index_find_symbol(const desc_index *idx, const char *symbol);

/* The sdxld descriptor set (generated at build time from proto/). */
extern const unsigned char sdxl_descriptor_set[];
extern const size_t sdxl_descriptor_set_size;

#endif /* SDXL_SERVER_DESCRIPTOR_INDEX_H */
