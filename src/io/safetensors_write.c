/*
 * safetensors_write.c — the streaming safetensors writer (see safetensors.h for its contract).
 *
 * It writes what safetensors' save_file writes for the same tensors in the same order (compact
 * JSON in serde_json's spelling, header padded with spaces to a multiple of 8), so its files
 * are byte-identical on every machine.
 */
#include "io/safetensors.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/safetensors_internal.h"

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
    return st_shape_size(shape, t->ndim, t->type, &numel, &nbytes) ? nbytes : UINT64_MAX;
}

static bool string_valid(const char *s)
{
    return s && st_utf8_valid((const uint8_t *)s, strlen(s));
}

/* Names the first string that appears twice in names[0..n) (which it sorts), or NULL. */
static const char *first_duplicate(const char **names, size_t n)
{
    qsort(names, n, sizeof *names, st_compare_strings);
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
                       path, ST_NAME_SHOWN, dup);
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
        if (!string_valid(t->name) || strcmp(t->name, ST_METADATA_KEY) == 0)
            return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                             "%s: tensor %zu: the name must be a UTF-8 string other than "
                             "\"__metadata__\"",
                             path, i);
        if ((unsigned)t->type >= DTYPE_COUNT)
            return st_tensor_error(err, SDXL_ERR_INVALID_ARGUMENT, path, t->name,
                                   "unknown dtype value %d", (int)t->type);
        if (t->ndim < 0 || t->ndim > SAFETENSORS_MAX_DIMS)
            return st_tensor_error(err, SDXL_ERR_INVALID_ARGUMENT, path, t->name,
                                   "ndim %d is outside 0..%d", t->ndim, SAFETENSORS_MAX_DIMS);
        for (int d = 0; d < t->ndim; d++)
            if (t->shape[d] < 0)
                return st_tensor_error(err, SDXL_ERR_INVALID_ARGUMENT, path, t->name,
                                       "dimension %d is negative (%lld)", d,
                                       (long long)t->shape[d]);
        uint64_t nbytes = info_nbytes(t);
        if (nbytes > (uint64_t)ST_JSON_MAX_EXACT - total)
            return st_tensor_error(err, SDXL_ERR_INVALID_ARGUMENT, path, t->name,
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
        st = st_tensor_error(err, SDXL_ERR_INVALID_ARGUMENT, path, dup, "given twice");
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
        text_json_string(h, ST_METADATA_KEY);
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
    while (h->len % ST_LENGTH_BYTES != 0)
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
    uint8_t length[ST_LENGTH_BYTES];
    for (int i = 0; i < ST_LENGTH_BYTES; i++)
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
