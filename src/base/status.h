/*
 * status.h — filling sdxl_error values (the error model of every sdxld layer).
 *
 * Functions that can fail return an sdxl_status and take an `sdxl_error *err` (which may be
 * NULL) as their last argument. On failure they set both code and message through error_set,
 * whose return value is the code, so a failure is one line:
 *
 *     if (size > limit)
 *         return error_set(err, SDXL_ERR_LIMIT, "%s: %zu bytes is over the limit of %zu", ...);
 *
 * Callers that add context keep the inner message: error_prefix(err, st, "loading %s", path)
 * turns "bad dtype" into "loading unet: bad dtype" and returns st.
 *
 * A run of calls where any failure simply ends the caller (nothing to undo; the failing call
 * has filled err) reads as one call a line with SDXL_TRY:
 *
 *     SDXL_TRY(tensor_alloc(&h, a, DTYPE_F32, 2, shape, err));
 *     SDXL_TRY(backend_silu(be, x, &h, err));
 */
#ifndef SDXL_BASE_STATUS_H
#define SDXL_BASE_STATUS_H

#include "sdxl.h"

#if defined(__GNUC__)
#define SDXL_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define SDXL_PRINTF(fmt_index, first_arg)
#endif

/* Evaluates call (an sdxl_status expression) once and returns its status from the enclosing
 * function when it is not SDXL_OK. */
#define SDXL_TRY(call)                                                                           \
    do {                                                                                         \
        sdxl_status sdxl_try_st_ = (call);                                                       \
        if (sdxl_try_st_ != SDXL_OK)                                                             \
            return sdxl_try_st_;                                                                 \
    } while (0)

/* Sets err (when not NULL) to code and the formatted message; returns code. */
sdxl_status error_set(sdxl_error *err, sdxl_status code, const char *fmt, ...) SDXL_PRINTF(3, 4);

/* Prepends "<formatted>: " to err's message (when err is not NULL); returns code. */
sdxl_status error_prefix(sdxl_error *err, sdxl_status code, const char *fmt, ...)
    SDXL_PRINTF(3, 4);

/* Sets err's field (the name of the offending parameter) when err is not NULL; returns code.
 * Used after error_set: return error_field(err, error_set(err, ..., "..."), "strength"); */
sdxl_status error_field(sdxl_error *err, sdxl_status code, const char *field);

/* Resets err (when not NULL) to SDXL_OK with empty message and field. */
void error_clear(sdxl_error *err);

#endif /* SDXL_BASE_STATUS_H */
