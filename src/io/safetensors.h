/*
 * safetensors.h — reading and writing the safetensors format.
 *
 * Format: an 8-byte little-endian header length N, N bytes of JSON
 *   {"__metadata__": {"k": "v", ...}, "name": {"dtype": "F32", "shape": [2, 3],
 *    "data_offsets": [begin, end]}, ...}
 * then the data section; offsets are relative to the start of the data section.
 *
 * The reader maps the file and treats it as hostile: header length bounded (<= 100 MB and
 * inside the file), valid JSON, only known dtypes, every shape's element count × dtype size
 * equal to its byte range, ranges inside the data section, no two overlapping, no holes, no
 * duplicate names. Any violation is SDXL_ERR_FORMAT (or SDXL_ERR_UNSUPPORTED for an unknown
 * dtype) with a message that names the file, the tensor and the problem. Tensor data pointers
 * point into the mapping and are valid until safetensors_close; they may be unaligned.
 *
 * The writer streams: it is given every tensor's name, dtype and shape up front (so it can
 * write the header), then receives the data bytes in that order, in chunks of any size, so a
 * 7 GB file never needs to be in memory. It writes to PATH.tmp and renames on success, so a
 * reader never sees a half-written file. The same inputs give byte-identical files.
 */
#ifndef SDXL_IO_SAFETENSORS_H
#define SDXL_IO_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/dtype.h"
#include "base/status.h"

#define SAFETENSORS_MAX_DIMS 8
#define SAFETENSORS_MAX_HEADER (100u * 1000u * 1000u)

typedef struct st_tensor {
    const char *name; /* NUL-terminated, owned by the file */
    dtype type;
    int ndim;
    int64_t shape[SAFETENSORS_MAX_DIMS];
    size_t numel;
    size_t nbytes;
    const void *data; /* inside the file's mapping; may be unaligned */
} st_tensor;

typedef struct st_metadata_entry {
    const char *key;
    const char *value;
} st_metadata_entry;

typedef struct safetensors_file {
    char path[1024];
    void *map;       /* whole file, when opened from a path */
    size_t map_size;
    st_tensor *tensors; /* sorted by name */
    size_t n_tensors;
    st_metadata_entry *metadata;
    size_t n_metadata;
    char *strings; /* storage for names, keys and values */
} safetensors_file;

/* Maps and validates the file at path. On failure f is left closed. */
sdxl_status safetensors_open(safetensors_file *f, const char *path, sdxl_error *err);
/* Validates an in-memory image of a file (not copied: must outlive f); label names it in
 * messages. Used by tests and the fuzz target. */
sdxl_status safetensors_parse(safetensors_file *f, const void *data, size_t size,
                              const char *label, sdxl_error *err);
void safetensors_close(safetensors_file *f);

/* NULL when absent. */
const st_tensor *safetensors_find(const safetensors_file *f, const char *name);
const char *safetensors_metadata(const safetensors_file *f, const char *key);

/* A tensor to be written: name, dtype and shape. */
typedef struct st_tensor_info {
    const char *name;
    dtype type;
    int ndim;
    int64_t shape[SAFETENSORS_MAX_DIMS];
} st_tensor_info;

typedef struct safetensors_writer {
    FILE *out;
    char path[1024];
    char tmp_path[1040];
    uint64_t data_bytes;    /* total expected */
    uint64_t written_bytes; /* so far */
} safetensors_writer;

/* Writes the header for tensors[0..n) (in that order) and metadata (NULL-terminated list of
 * key, value, key, value, ..., NULL; may be NULL). As in Python's safetensors, NULL metadata
 * writes no "__metadata__" entry and an empty list writes an empty one. Names must be unique
 * UTF-8 strings other than "__metadata__" (else SDXL_ERR_INVALID_ARGUMENT). */
sdxl_status safetensors_writer_open(safetensors_writer *w, const char *path,
                                    const st_tensor_info *tensors, size_t n,
                                    const char *const *metadata, sdxl_error *err);
/* Appends data bytes (tensor after tensor, in the order given to open). Writing more bytes than
 * the tensors declare is SDXL_ERR_INVALID_ARGUMENT. After any failed write or close the file is
 * already abandoned (PATH.tmp removed) and later calls fail. */
sdxl_status safetensors_writer_write(safetensors_writer *w, const void *data, size_t nbytes,
                                     sdxl_error *err);
/* Checks every byte was written (else SDXL_ERR_INVALID_ARGUMENT), flushes, syncs and renames
 * into place. */
sdxl_status safetensors_writer_close(safetensors_writer *w, sdxl_error *err);
/* Abandons the file (removes PATH.tmp). Safe after a failed write, after close, and twice. */
void safetensors_writer_abort(safetensors_writer *w);

/* One-shot: writes tensors whose data are in memory (data[i] has tensors[i]'s bytes). */
sdxl_status safetensors_write_file(const char *path, const st_tensor_info *tensors,
                                   const void *const *data, size_t n,
                                   const char *const *metadata, sdxl_error *err);

#endif /* SDXL_IO_SAFETENSORS_H */
