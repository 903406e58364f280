/*
 * method.h — the RPC methods sdxld serves: their ids, full paths and short names (one table,
 * used by registration, dispatch, logs and metric labels).
 */
#ifndef SDXL_SERVER_METHOD_H
#define SDXL_SERVER_METHOD_H

#include <stdbool.h>

typedef enum server_method {
    METHOD_IMG2IMG = 0,
    METHOD_IMG2IMG_BATCH,
    METHOD_IMG2IMG_STREAM,
    METHOD_TXT2IMG,
    METHOD_GET_STATUS,
    METHOD_HEALTH_CHECK,
    METHOD_HEALTH_WATCH,
    METHOD_REFLECTION_V1,
    METHOD_REFLECTION_V1ALPHA,
    METHOD_UNKNOWN, /* any path not above: answered UNIMPLEMENTED */
    METHOD_COUNT,
} server_method;

/* "/sdxl.v1.ImageGeneration/Img2Img", ...; NULL for METHOD_UNKNOWN. */
const char *method_path(server_method method);
/* "Img2Img", "Health.Check", ..., "unknown". */
const char *method_name(server_method method);
/* The generation methods (queued, counted as requests, answered with images). */
bool method_is_generation(server_method method);
/* Methods whose request is one message (delivered with the call); the others are streams the
 * handler reads itself. */
bool method_has_unary_request(server_method method);

#endif /* SDXL_SERVER_METHOD_H */
