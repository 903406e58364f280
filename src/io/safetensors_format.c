/*
 * safetensors_format.c — the pieces of the safetensors format that the reader and the writer
 * share (see safetensors_internal.h).
 */
#include "io/safetensors_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

bool st_shape_size(const uint64_t *shape, int ndim, dtype type, uint64_t *numel, uint64_t *nbytes)
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

bool st_utf8_valid(const uint8_t *s, size_t n)
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

int st_compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

sdxl_status st_tensor_error(sdxl_error *err, sdxl_status code, const char *label,
                            const char *name, const char *fmt, ...)
{
    char problem[SDXL_ERROR_MESSAGE_MAX];
    va_list args;
    va_start(args, fmt);
    vsnprintf(problem, sizeof problem, fmt, args);
    va_end(args);
    size_t name_len = strlen(name);
    return error_set(err, code, "%s: tensor \"%.*s%s\": %s", label, ST_NAME_SHOWN, name,
                     name_len > ST_NAME_SHOWN ? "..." : "", problem);
}
