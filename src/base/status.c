/*
 * status.c — status code names and the sdxl_error helpers (see status.h).
 */
#include "base/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *sdxl_status_name(sdxl_status code)
{
    switch (code) {
    case SDXL_OK: return "SDXL_OK";
    case SDXL_ERR_INVALID_ARGUMENT: return "SDXL_ERR_INVALID_ARGUMENT";
    case SDXL_ERR_NOT_FOUND: return "SDXL_ERR_NOT_FOUND";
    case SDXL_ERR_IO: return "SDXL_ERR_IO";
    case SDXL_ERR_FORMAT: return "SDXL_ERR_FORMAT";
    case SDXL_ERR_UNSUPPORTED: return "SDXL_ERR_UNSUPPORTED";
    case SDXL_ERR_OUT_OF_MEMORY: return "SDXL_ERR_OUT_OF_MEMORY";
    case SDXL_ERR_LIMIT: return "SDXL_ERR_LIMIT";
    case SDXL_ERR_CANCELLED: return "SDXL_ERR_CANCELLED";
    case SDXL_ERR_BACKEND: return "SDXL_ERR_BACKEND";
    case SDXL_ERR_INTERNAL: return "SDXL_ERR_INTERNAL";
    }
    return "SDXL_ERR_UNKNOWN";
}

sdxl_status error_set(sdxl_error *err, sdxl_status code, const char *fmt, ...)
{
    if (err) {
        err->code = code;
        err->field[0] = '\0';
        va_list args;
        va_start(args, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, args);
        va_end(args);
    }
    return code;
}

sdxl_status error_prefix(sdxl_error *err, sdxl_status code, const char *fmt, ...)
{
    if (!err)
        return code;
    char joined[SDXL_ERROR_MESSAGE_MAX];
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(joined, sizeof joined, fmt, args);
    va_end(args);
    size_t used = n < 0 ? 0 : (size_t)n < sizeof joined ? (size_t)n : sizeof joined - 1;
    /* Append ": " and the old message, truncating at the buffer's end. */
    const char *parts[2] = {": ", err->message};
    for (int i = 0; i < 2; i++) {
        size_t len = strlen(parts[i]);
        size_t room = sizeof joined - 1 - used;
        if (len > room)
            len = room;
        memcpy(joined + used, parts[i], len);
        used += len;
    }
    joined[used] = '\0';
    memcpy(err->message, joined, used + 1);
    err->code = code;
    return code;
}

sdxl_status error_field(sdxl_error *err, sdxl_status code, const char *field)
{
    if (err)
        snprintf(err->field, sizeof err->field, "%s", field);
    return code;
}

void error_clear(sdxl_error *err)
{
    if (err) {
        err->code = SDXL_OK;
        err->message[0] = '\0';
        err->field[0] = '\0';
    }
}
