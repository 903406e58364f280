/*
 * errors.c — server errors and their google.rpc.Status encoding (see errors.h).
 */
#include "server/errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"

#define TYPE_URL_PREFIX "type.googleapis.com/"

static const struct {
    const char *name;
    grpc_status_code code;
} reasons[REASON_COUNT] = {
    [REASON_NONE] = {"NONE", GRPC_STATUS_OK},
    [REASON_INVALID_IMAGE] = {"INVALID_IMAGE", GRPC_STATUS_INVALID_ARGUMENT},
    [REASON_IMAGE_TOO_LARGE] = {"IMAGE_TOO_LARGE", GRPC_STATUS_INVALID_ARGUMENT},
    [REASON_INVALID_PARAMETER] = {"INVALID_PARAMETER", GRPC_STATUS_INVALID_ARGUMENT},
    [REASON_INVALID_REQUEST] = {"INVALID_REQUEST", GRPC_STATUS_INVALID_ARGUMENT},
    [REASON_QUEUE_FULL] = {"QUEUE_FULL", GRPC_STATUS_RESOURCE_EXHAUSTED},
    [REASON_MODEL_NOT_READY] = {"MODEL_NOT_READY", GRPC_STATUS_UNAVAILABLE},
    [REASON_SHUTTING_DOWN] = {"SHUTTING_DOWN", GRPC_STATUS_UNAVAILABLE},
    [REASON_OUT_OF_MEMORY] = {"OUT_OF_MEMORY", GRPC_STATUS_RESOURCE_EXHAUSTED},
    [REASON_UNAUTHENTICATED] = {"UNAUTHENTICATED", GRPC_STATUS_UNAUTHENTICATED},
    [REASON_CANCELLED] = {"CANCELLED", GRPC_STATUS_CANCELLED},
    [REASON_DEADLINE_EXCEEDED] = {"DEADLINE_EXCEEDED", GRPC_STATUS_DEADLINE_EXCEEDED},
    [REASON_UNKNOWN_SERVICE] = {"UNKNOWN_SERVICE", GRPC_STATUS_NOT_FOUND},
    [REASON_UNIMPLEMENTED] = {"UNIMPLEMENTED", GRPC_STATUS_UNIMPLEMENTED},
    [REASON_DEVICE_ERROR] = {"DEVICE_ERROR", GRPC_STATUS_INTERNAL},
    [REASON_INTERNAL] = {"INTERNAL", GRPC_STATUS_INTERNAL},
};

const char *server_reason_name(server_reason reason)
{
    return reason < REASON_COUNT ? reasons[reason].name : "INTERNAL";
}

grpc_status_code server_reason_code(server_reason reason)
{
    return reason < REASON_COUNT ? reasons[reason].code : GRPC_STATUS_INTERNAL;
}

const char *server_grpc_code_name(grpc_status_code code)
{
    static const char *const names[] = {
        "OK",        "CANCELLED",          "UNKNOWN",           "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED", "NOT_FOUND",  "ALREADY_EXISTS",    "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
        "UNIMPLEMENTED", "INTERNAL",       "UNAVAILABLE",       "DATA_LOSS",
        "UNAUTHENTICATED",
    };
    if ((int)code < 0 || (size_t)code >= sizeof names / sizeof names[0])
        return "UNKNOWN";
    return names[code];
}

static void copy_text(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

void server_error_set(server_error *e, server_reason reason, const char *resolution,
                      const char *fmt, ...)
{
    memset(e, 0, sizeof *e);
    e->reason = reason;
    e->code = server_reason_code(reason);
    copy_text(e->resolution, sizeof e->resolution, resolution);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

void server_error_add_violation(server_error *e, const char *field, const char *fmt, ...)
{
    if (!e->field[0])
        copy_text(e->field, sizeof e->field, field);
    if (e->n_violations >= SERVER_ERROR_MAX_VIOLATIONS)
        return;
    server_field_violation *v = &e->violations[e->n_violations++];
    copy_text(v->field, sizeof v->field, field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->description, sizeof v->description, fmt, ap);
    va_end(ap);
}

void server_error_from_engine(server_error *e, const sdxl_error *err)
{
    switch (err->code) {
    case SDXL_ERR_INVALID_ARGUMENT:
    case SDXL_ERR_LIMIT:
        server_error_set(e, REASON_INVALID_PARAMETER, "change the named parameter to a value in "
                         "the range the message gives", "%s", err->message);
        if (err->field[0])
            server_error_add_violation(e, err->field, "%s", err->message);
        break;
    case SDXL_ERR_OUT_OF_MEMORY:
        server_error_set(e, REASON_OUT_OF_MEMORY, "ask for a smaller width × height or batch_size, "
                         "or start sdxld with more memory", "%s", err->message);
        break;
    case SDXL_ERR_CANCELLED:
        server_error_set(e, REASON_CANCELLED, "", "%s", err->message);
        break;
    case SDXL_ERR_BACKEND:
        server_error_set(e, REASON_DEVICE_ERROR, "retry; if it persists, check the server's log "
                         "and the device", "%s", err->message);
        break;
    default:
        server_error_set(e, REASON_INTERNAL, "retry; if it persists, report it with the server's "
                         "log", "%s: %s", sdxl_status_name(err->code), err->message);
        break;
    }
}

/* Packs msg into a google.protobuf.Any named by its full type name. */
static bool any_pack(const ProtobufCMessage *msg, Google__Protobuf__Any *any, char *url,
                     size_t url_cap)
{
    snprintf(url, url_cap, TYPE_URL_PREFIX "%s", msg->descriptor->name);
    any->type_url = url;
    any->value.len = protobuf_c_message_get_packed_size(msg);
    any->value.data = malloc(any->value.len ? any->value.len : 1);
    if (!any->value.data)
        return false;
    protobuf_c_message_pack(msg, any->value.data);
    return true;
}

bool server_error_pack_details(const server_error *e, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    Google__Rpc__ErrorInfo info = GOOGLE__RPC__ERROR_INFO__INIT;
    info.reason = (char *)server_reason_name(e->reason);
    info.domain = SERVER_ERROR_DOMAIN;
    Google__Rpc__ErrorInfo__MetadataEntry entries[2] = {GOOGLE__RPC__ERROR_INFO__METADATA_ENTRY__INIT,
                                                        GOOGLE__RPC__ERROR_INFO__METADATA_ENTRY__INIT};
    Google__Rpc__ErrorInfo__MetadataEntry *entry_ptrs[2];
    size_t n_entries = 0;
    if (e->field[0]) {
        entries[n_entries].key = "field";
        entries[n_entries].value = (char *)e->field;
        n_entries++;
    }
    if (e->resolution[0]) {
        entries[n_entries].key = "resolution";
        entries[n_entries].value = (char *)e->resolution;
        n_entries++;
    }
    for (size_t i = 0; i < n_entries; i++)
        entry_ptrs[i] = &entries[i];
    info.n_metadata = n_entries;
    info.metadata = entry_ptrs;

    Google__Rpc__BadRequest bad = GOOGLE__RPC__BAD_REQUEST__INIT;
    Google__Rpc__BadRequest__FieldViolation violations[SERVER_ERROR_MAX_VIOLATIONS];
    Google__Rpc__BadRequest__FieldViolation *violation_ptrs[SERVER_ERROR_MAX_VIOLATIONS];
    for (int i = 0; i < e->n_violations; i++) {
        Google__Rpc__BadRequest__FieldViolation v = GOOGLE__RPC__BAD_REQUEST__FIELD_VIOLATION__INIT;
        v.field = (char *)e->violations[i].field;
        v.description = (char *)e->violations[i].description;
        violations[i] = v;
        violation_ptrs[i] = &violations[i];
    }
    bad.n_field_violations = (size_t)e->n_violations;
    bad.field_violations = violation_ptrs;

    Google__Protobuf__Any anys[2] = {GOOGLE__PROTOBUF__ANY__INIT, GOOGLE__PROTOBUF__ANY__INIT};
    Google__Protobuf__Any *any_ptrs[2] = {&anys[0], &anys[1]};
    char urls[2][128];
    size_t n_any = 0;
    bool ok = any_pack(&info.base, &anys[n_any], urls[n_any], sizeof urls[n_any]);
    n_any++;
    if (ok && e->n_violations > 0) {
        ok = any_pack(&bad.base, &anys[n_any], urls[n_any], sizeof urls[n_any]);
        n_any++;
    }

    Google__Rpc__Status status = GOOGLE__RPC__STATUS__INIT;
    status.code = (int32_t)e->code;
    status.message = (char *)e->message;
    status.n_details = n_any;
    status.details = any_ptrs;
    if (ok) {
        *len = google__rpc__status__get_packed_size(&status);
        *out = malloc(*len ? *len : 1);
        ok = *out != NULL;
        if (ok)
            google__rpc__status__pack(&status, *out);
    }
    for (size_t i = 0; i < n_any; i++)
        free(anys[i].value.data);
    if (!ok)
        *len = 0;
    return ok;
}

static bool any_is(const Google__Protobuf__Any *any, const ProtobufCMessageDescriptor *desc)
{
    const char *url = any->type_url ? any->type_url : "";
    const char *slash = strrchr(url, '/');
    return strcmp(slash ? slash + 1 : url, desc->name) == 0;
}

bool server_error_unpack_details(const uint8_t *data, size_t len, server_error *e)
{
    memset(e, 0, sizeof *e);
    Google__Rpc__Status *status = google__rpc__status__unpack(NULL, len, data);
    if (!status)
        return false;
    e->code = (grpc_status_code)status->code;
    e->reason = REASON_INTERNAL;
    copy_text(e->message, sizeof e->message, status->message);
    for (size_t i = 0; i < status->n_details; i++) {
        const Google__Protobuf__Any *any = status->details[i];
        if (any_is(any, &google__rpc__error_info__descriptor)) {
            Google__Rpc__ErrorInfo *info =
                google__rpc__error_info__unpack(NULL, any->value.len, any->value.data);
            if (!info)
                continue;
            for (int r = 0; r < REASON_COUNT; r++)
                if (info->reason && strcmp(info->reason, reasons[r].name) == 0)
                    e->reason = (server_reason)r;
            for (size_t m = 0; m < info->n_metadata; m++) {
                const char *key = info->metadata[m]->key, *value = info->metadata[m]->value;
                if (key && strcmp(key, "field") == 0)
                    copy_text(e->field, sizeof e->field, value);
                else if (key && strcmp(key, "resolution") == 0)
                    copy_text(e->resolution, sizeof e->resolution, value);
            }
            google__rpc__error_info__free_unpacked(info, NULL);
        } else if (any_is(any, &google__rpc__bad_request__descriptor)) {
            Google__Rpc__BadRequest *bad =
                google__rpc__bad_request__unpack(NULL, any->value.len, any->value.data);
            if (!bad)
                continue;
            for (size_t v = 0; v < bad->n_field_violations && e->n_violations <
                                   SERVER_ERROR_MAX_VIOLATIONS; v++) {
                server_field_violation *out = &e->violations[e->n_violations++];
                copy_text(out->field, sizeof out->field, bad->field_violations[v]->field);
                copy_text(out->description, sizeof out->description,
                          bad->field_violations[v]->description);
            }
            google__rpc__bad_request__free_unpacked(bad, NULL);
        }
    }
    google__rpc__status__free_unpacked(status, NULL);
    return true;
}
