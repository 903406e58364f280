/*
 * errors.h — sdxld's structured errors: a gRPC status code, a stable reason string, a message,
 * the offending field(s) and a suggested resolution, and their encoding as the google.rpc.Status
 * that goes in the trailing metadata `grpc-status-details-bin`.
 *
 * The detail holds a google.rpc.ErrorInfo {reason, domain "sdxl.v1", metadata {"field",
 * "resolution"}} and, for parameter errors, a google.rpc.BadRequest with one field violation
 * per bad field, so grpcio's grpc_status.rpc_status.from_call() reads it with stock types.
 */
#ifndef SDXL_SERVER_ERRORS_H
#define SDXL_SERVER_ERRORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/status.h>

#include "base/status.h"

/* Stable reason strings (the names below without the prefix); never renumbered or renamed. */
typedef enum server_reason {
    REASON_NONE = 0,
    REASON_INVALID_IMAGE,     /* INVALID_ARGUMENT: not a decodable PNG/JPEG/WEBP */
    REASON_IMAGE_TOO_LARGE,   /* INVALID_ARGUMENT: over --max-image-bytes / --max-pixels */
    REASON_INVALID_PARAMETER, /* INVALID_ARGUMENT: a parameter out of range (field named) */
    REASON_INVALID_REQUEST,   /* INVALID_ARGUMENT: the request message does not parse */
    REASON_QUEUE_FULL,        /* RESOURCE_EXHAUSTED: --queue-size jobs are waiting */
    REASON_MODEL_NOT_READY,   /* UNAVAILABLE: the model is still loading */
    REASON_SHUTTING_DOWN,     /* UNAVAILABLE: the server is stopping */
    REASON_OUT_OF_MEMORY,     /* RESOURCE_EXHAUSTED: the run does not fit in memory */
    REASON_UNAUTHENTICATED,   /* UNAUTHENTICATED: missing or wrong bearer token */
    REASON_CANCELLED,         /* CANCELLED: the client cancelled */
    REASON_DEADLINE_EXCEEDED, /* DEADLINE_EXCEEDED: the deadline passed before the answer */
    REASON_UNKNOWN_SERVICE,   /* NOT_FOUND: health check of a service not served */
    REASON_UNIMPLEMENTED,     /* UNIMPLEMENTED: a method this server does not have */
    REASON_DEVICE_ERROR,      /* INTERNAL: the compute device or its library failed */
    REASON_INTERNAL,          /* INTERNAL: a bug */
    REASON_COUNT,
} server_reason;

#define SERVER_ERROR_MESSAGE_MAX 512
#define SERVER_ERROR_FIELD_MAX 64
#define SERVER_ERROR_RESOLUTION_MAX 256
#define SERVER_ERROR_MAX_VIOLATIONS 16
#define SERVER_ERROR_DOMAIN "sdxl.v1"

typedef struct server_field_violation {
    char field[SERVER_ERROR_FIELD_MAX];
    char description[SERVER_ERROR_MESSAGE_MAX];
} server_field_violation;

typedef struct server_error {
    grpc_status_code code;
    server_reason reason;
    char message[SERVER_ERROR_MESSAGE_MAX];
    char field[SERVER_ERROR_FIELD_MAX]; /* the first offending field, or empty */
    char resolution[SERVER_ERROR_RESOLUTION_MAX];
    int n_violations; /* BadRequest entries (parameter errors) */
    server_field_violation violations[SERVER_ERROR_MAX_VIOLATIONS];
} server_error;

/* "INVALID_IMAGE", ...; "NONE" for REASON_NONE. */
const char *server_reason_name(server_reason reason);
/* The gRPC code a reason is answered with. */
grpc_status_code server_reason_code(server_reason reason);
/* "OK", "INVALID_ARGUMENT", ... (the canonical names, as in metrics labels). */
const char *server_grpc_code_name(grpc_status_code code);

/* Sets reason (and its code), message and resolution; clears fields and violations. */
void server_error_set(server_error *e, server_reason reason, const char *resolution,
                      const char *fmt, ...) SDXL_PRINTF(4, 5);

/* Adds a BadRequest field violation (the first one added also becomes e->field); a parameter
 * error lists every bad field. Violations past SERVER_ERROR_MAX_VIOLATIONS are dropped. */
void server_error_add_violation(server_error *e, const char *field, const char *fmt, ...)
    SDXL_PRINTF(3, 4);

/* Maps an engine error: INVALID_ARGUMENT/LIMIT → INVALID_PARAMETER (with its field),
 * OUT_OF_MEMORY → OUT_OF_MEMORY, CANCELLED → CANCELLED, BACKEND → DEVICE_ERROR, others →
 * INTERNAL. */
void server_error_from_engine(server_error *e, const sdxl_error *err);

/* Serializes e as a google.rpc.Status (malloc'd; the caller frees *out). False on allocation
 * failure. */
bool server_error_pack_details(const server_error *e, uint8_t **out, size_t *len);

/* Reads a google.rpc.Status from grpc-status-details-bin back into e (clients and tests): the
 * code and message, and from its ErrorInfo the reason, field and resolution, from its
 * BadRequest the violations. False when the bytes are not a Status. */
bool server_error_unpack_details(const uint8_t *data, size_t len, server_error *e);

#endif /* SDXL_SERVER_ERRORS_H */
