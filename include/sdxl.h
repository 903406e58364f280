/*
 * sdxl.h — the public C API of the sdxld engine (libsdxl).
 *
 * The only header other programs include. Every call that can fail returns an sdxl_status and,
 * when given a non-NULL sdxl_error, fills it with a message a user can act on. The library
 * never exits or aborts on bad input.
 *
 * (The model, session and generation calls are added by the pipeline work; this part is the
 * error model every layer already uses.)
 */
#ifndef SDXL_H
#define SDXL_H

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes. Stable: values are never renumbered, new codes are appended. */
typedef enum sdxl_status {
    SDXL_OK = 0,
    SDXL_ERR_INVALID_ARGUMENT = 1, /* a value given by the caller is malformed or out of range */
    SDXL_ERR_NOT_FOUND = 2,        /* a file, tensor or configuration key does not exist */
    SDXL_ERR_IO = 3,               /* the operating system failed a read, write or map */
    SDXL_ERR_FORMAT = 4,           /* a file's or buffer's contents are malformed */
    SDXL_ERR_UNSUPPORTED = 5,      /* well-formed but not supported (a dtype, a class name) */
    SDXL_ERR_OUT_OF_MEMORY = 6,    /* an allocation failed or would exceed the memory budget */
    SDXL_ERR_LIMIT = 7,            /* over a configured limit (bytes, pixels, batch, steps) */
    SDXL_ERR_CANCELLED = 8,        /* stopped on request (progress callback, client) */
    SDXL_ERR_BACKEND = 9,          /* the compute device or its library failed */
    SDXL_ERR_INTERNAL = 10,        /* a bug: an invariant did not hold */
} sdxl_status;

#define SDXL_ERROR_MESSAGE_MAX 512

/* A status code and a human-readable message saying what went wrong and what to do. */
typedef struct sdxl_error {
    sdxl_status code;
    char message[SDXL_ERROR_MESSAGE_MAX];
} sdxl_error;

/* The name of a status code, e.g. "SDXL_ERR_FORMAT"; "SDXL_ERR_UNKNOWN" for other values. */
const char *sdxl_status_name(sdxl_status code);

#ifdef __cplusplus
}
#endif

#endif /* SDXL_H */
