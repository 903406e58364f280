/*
 * reflection.c — grpc.reflection.v1 and v1alpha ServerReflectionInfo: list_services,
 * file_by_filename, file_containing_symbol (each file with its transitive dependencies),
 * file_containing_extension and all_extension_numbers_of_type (sdxld's protos define no
 * extensions), answered on the poller from the embedded descriptor set.
 */
#include <stdlib.h>
#include <string.h>

#include "grpc/reflection/v1/reflection.pb-c.h"
#include "server/descriptor_index.h"
#include "server/handlers.h"
#include "server/server.h"
#include "server/wire.h"

static desc_index the_index;

sdxl_status reflection_init(sdxl_error *err)
{
    return desc_index_build(sdxl_descriptor_set, sdxl_descriptor_set_size, &the_index, err);
}

void reflection_free(void)
{
    desc_index_free(&the_index);
}

static void start_recv(call *c)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &c->recv_buffer;
    call_ref(c);
    if (grpc_call_start_batch(c->grpc, &op, 1, &c->tag_recv, NULL) != GRPC_CALL_OK) {
        server_error e;
        server_error_set(&e, REASON_INTERNAL, "retry", "could not read the reflection stream");
        call_finish(c, NULL, &e);
        call_unref(c); /* the read's */
        call_unref(c); /* the logic's */
    }
}

void reflection_start(call *c)
{
    start_recv(c);
}

/* Adds file and (depth first) its dependencies to out, each once. */
static void collect_file(const desc_file *file, const desc_file **out, int *n, int max)
{
    for (int i = 0; i < *n; i++)
        if (out[i] == file)
            return;
    if (*n >= max)
        return;
    out[(*n)++] = file;
    for (int d = 0; d < file->n_deps; d++) {
        const desc_file *dep = desc_index_find_file(&the_index, file->deps[d]);
        if (dep)
            collect_file(dep, out, n, max);
    }
}

static void answer(call *c, Grpc__Reflection__V1__ServerReflectionRequest *req)
{
    Grpc__Reflection__V1__ServerReflectionResponse resp =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
    resp.valid_host = req->host;
    resp.original_request = req;
    Grpc__Reflection__V1__ErrorResponse error = GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
    Grpc__Reflection__V1__FileDescriptorResponse files =
        GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
    Grpc__Reflection__V1__ListServiceResponse list =
        GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT;
    Grpc__Reflection__V1__ExtensionNumberResponse numbers =
        GRPC__REFLECTION__V1__EXTENSION_NUMBER_RESPONSE__INIT;
    int n_files = the_index.n_files > 0 ? the_index.n_files : 1;
    const desc_file **found = calloc((size_t)n_files, sizeof *found);
    ProtobufCBinaryData *blobs = calloc((size_t)n_files, sizeof *blobs);
    int n_services = the_index.n_services > 0 ? the_index.n_services : 1;
    Grpc__Reflection__V1__ServiceResponse *services = calloc((size_t)n_services, sizeof *services);
    Grpc__Reflection__V1__ServiceResponse **service_ptrs =
        calloc((size_t)n_services, sizeof *service_ptrs);
    if (!found || !blobs || !services || !service_ptrs) {
        server_error e;
        server_error_set(&e, REASON_OUT_OF_MEMORY, "retry later", "out of memory");
        call_finish(c, NULL, &e);
        goto done;
    }
    const desc_file *file = NULL;
    const char *missing = NULL;
    switch (req->message_request_case) {
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
        file = desc_index_find_file(&the_index, req->file_by_filename);
        missing = "file";
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
        file = desc_index_find_symbol(&the_index, req->file_containing_symbol);
        missing = "symbol";
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
        missing = "extension";
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
        if (desc_index_find_symbol(&the_index, req->all_extension_numbers_of_type)) {
            numbers.base_type_name = req->all_extension_numbers_of_type;
            resp.message_response_case =
                GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
            resp.all_extension_numbers_response = &numbers;
        } else {
            missing = "type";
        }
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
        for (int i = 0; i < the_index.n_services; i++) {
            grpc__reflection__v1__service_response__init(&services[i]);
            services[i].name = the_index.services[i];
            service_ptrs[i] = &services[i];
        }
        list.n_service = (size_t)the_index.n_services;
        list.service = service_ptrs;
        resp.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
        resp.list_services_response = &list;
        break;
    default:
        missing = "request kind";
        break;
    }
    if (file) {
        int n = 0;
        collect_file(file, found, &n, n_files);
        for (int i = 0; i < n; i++) {
            blobs[i].data = (uint8_t *)found[i]->data;
            blobs[i].len = found[i]->size;
        }
        files.n_file_descriptor_proto = (size_t)n;
        files.file_descriptor_proto = blobs;
        resp.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
        resp.file_descriptor_response = &files;
    } else if (resp.message_response_case ==
               GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE__NOT_SET) {
        char message[96];
        snprintf(message, sizeof message, "%s not found", missing ? missing : "request");
        error.error_code = GRPC_STATUS_NOT_FOUND;
        error.error_message = message;
        resp.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
        resp.error_response = &error;
        call_send(c, &resp.base, OUTBOX_PLAIN, 0);
        goto done;
    }
    call_send(c, &resp.base, OUTBOX_PLAIN, 0);
done:
    free(found);
    free(blobs);
    free(services);
    free(service_ptrs);
}

void reflection_on_recv(call *c, bool success)
{
    grpc_byte_buffer *buffer = c->recv_buffer;
    c->recv_buffer = NULL;
    if (!success || !buffer) {
        /* The client half-closed (or left): end the stream. */
        if (buffer)
            grpc_byte_buffer_destroy(buffer);
        call_finish(c, NULL, NULL);
        call_unref(c); /* the read's */
        call_unref(c); /* the logic's */
        return;
    }
    grpc_slice slice;
    Grpc__Reflection__V1__ServerReflectionRequest *req = NULL;
    if (wire_payload_bytes(buffer, &slice)) {
        req = grpc__reflection__v1__server_reflection_request__unpack(
            NULL, GRPC_SLICE_LENGTH(slice), GRPC_SLICE_START_PTR(slice));
        grpc_slice_unref(slice);
    }
    grpc_byte_buffer_destroy(buffer);
    if (!req) {
        server_error e;
        server_error_set(&e, REASON_INVALID_REQUEST, "send a ServerReflectionRequest",
                         "the message is not a ServerReflectionRequest");
        call_finish(c, NULL, &e);
        call_unref(c);
        call_unref(c);
        return;
    }
    answer(c, req);
    grpc__reflection__v1__server_reflection_request__free_unpacked(req, NULL);
    start_recv(c);
    call_unref(c); /* the completed read's */
}
