/*
 * file.c — whole files into and out of memory (see file.h).
 */
#include "base/file.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sdxl_status file_read_all(const char *path, size_t max_bytes, uint8_t **data, size_t *size,
                          sdxl_error *err)
{
    *data = NULL;
    *size = 0;
    if (max_bytes == 0 || max_bytes > SIZE_MAX / 4)
        max_bytes = SIZE_MAX / 4;
    FILE *f = fopen(path, "rb");
    if (!f)
        return error_set(err, errno == ENOENT ? SDXL_ERR_NOT_FOUND : SDXL_ERR_IO,
                         "%s: cannot open: %s", path, strerror(errno));
    /* Growing blocks up to one byte more than allowed, which tells "exactly at the limit" from
     * "over it" without trusting a size reported before the read; the buffer always keeps one
     * spare byte past the data for a terminating NUL. */
    size_t cap = 0, len = 0;
    uint8_t *buf = NULL;
    sdxl_status st = SDXL_OK;
    for (;;) {
        if (len + 1 >= cap) {
            size_t grown_cap = cap == 0 ? 65536 : cap * 2;
            if (grown_cap > max_bytes + 2)
                grown_cap = max_bytes + 2;
            uint8_t *grown = realloc(buf, grown_cap);
            if (!grown) {
                st = error_set(err, SDXL_ERR_OUT_OF_MEMORY,
                               "%s: cannot allocate %zu bytes to read it", path, grown_cap);
                break;
            }
            buf = grown;
            cap = grown_cap;
        }
        size_t n = fread(buf + len, 1, cap - 1 - len, f);
        len += n;
        if (len > max_bytes) {
            st = error_set(err, SDXL_ERR_LIMIT, "%s: larger than the limit of %zu bytes", path,
                           max_bytes);
            break;
        }
        if (n == 0) {
            if (ferror(f))
                st = error_set(err, SDXL_ERR_IO, "%s: read error: %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (st != SDXL_OK) {
        free(buf);
        return st;
    }
    *data = buf;
    *size = len;
    return SDXL_OK;
}

sdxl_status file_write_all(const char *path, const void *data, size_t size, sdxl_error *err)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return error_set(err, SDXL_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    bool ok = fwrite(data, 1, size, f) == size;
    ok = fclose(f) == 0 && ok;
    if (!ok)
        return error_set(err, SDXL_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    return SDXL_OK;
}
