/*
 * sdxl_client.c — the command-line client's gRPC calls on gRPC core's C API (see
 * sdxl_client.h).
 */
#include "cli/sdxl_client.h"

#include <stdio.h>
#include <string.h>

#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "server/errors.h"
#include "server/wire.h"

/* A Txt2Img answer holds every image of its batch in one message. */
#define MAX_MESSAGE (256 << 20)

void client_open(client *cl, const char *server)
{
    grpc_init();
    grpc_arg args[1];
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = MAX_MESSAGE;
    grpc_channel_args channel_args = {1, args};
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    cl->channel = grpc_channel_create(server, creds, &channel_args);
    grpc_channel_credentials_release(creds);
    cl->cq = grpc_completion_queue_create_for_pluck(NULL);
}

void client_close(client *cl)
{
    grpc_channel_destroy(cl->channel);
    grpc_completion_queue_shutdown(cl->cq);
    while (grpc_completion_queue_pluck(cl->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
               .type != GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cl->cq);
    grpc_shutdown_blocking();
}

static void pluck(client *cl, void *tag)
{
    grpc_completion_queue_pluck(cl->cq, tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
}

static void print_error(grpc_status_code code, grpc_slice details, const grpc_metadata_array *md)
{
    char *text = grpc_slice_to_c_string(details);
    fprintf(stderr, "sdxl: error %s: %s\n", server_grpc_code_name(code), text);
    gpr_free(text);
    for (size_t i = 0; i < md->count; i++) {
        const grpc_metadata *m = &md->metadata[i];
        if (grpc_slice_str_cmp(m->key, "grpc-status-details-bin") != 0)
            continue;
        server_error e;
        if (!server_error_unpack_details(GRPC_SLICE_START_PTR(m->value),
                                         GRPC_SLICE_LENGTH(m->value), &e))
            continue;
        fprintf(stderr, "  reason:     %s\n", server_reason_name(e.reason));
        if (e.field[0])
            fprintf(stderr, "  field:      %s\n", e.field);
        for (int v = 0; v < e.n_violations; v++)
            fprintf(stderr, "  violation:  %s: %s\n", e.violations[v].field,
                    e.violations[v].description);
        if (e.resolution[0])
            fprintf(stderr, "  resolution: %s\n", e.resolution);
    }
}

int client_call(client *cl, const char *method, const ProtobufCMessage *request,
                message_fn fn, void *user)
{
    gpr_timespec deadline =
        cl->timeout_s > 0
            ? gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
                           gpr_time_from_millis((int64_t)(cl->timeout_s * 1000), GPR_TIMESPAN))
            : gpr_inf_future(GPR_CLOCK_REALTIME);
    grpc_slice method_slice = grpc_slice_from_static_string(method);
    grpc_call *call = grpc_channel_create_call(cl->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cl->cq,
                                               method_slice, NULL, deadline, NULL);
    grpc_byte_buffer *send = wire_pack(request);
    grpc_metadata auth;
    size_t n_md = 0;
    if (cl->authorization[0]) {
        auth.key = grpc_slice_from_static_string("authorization");
        auth.value = grpc_slice_from_static_string(cl->authorization);
        n_md = 1;
    }
    grpc_metadata_array initial, trailing;
    grpc_metadata_array_init(&initial);
    grpc_metadata_array_init(&trailing);
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();

    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = n_md;
    ops[0].data.send_initial_metadata.metadata = n_md ? &auth : NULL;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
    int tag_send = 1, tag_recv = 2, tag_status = 3;
    grpc_call_start_batch(call, ops, 4, &tag_send, NULL);
    pluck(cl, &tag_send);

    for (;;) {
        grpc_byte_buffer *msg = NULL;
        grpc_op op;
        memset(&op, 0, sizeof op);
        op.op = GRPC_OP_RECV_MESSAGE;
        op.data.recv_message.recv_message = &msg;
        grpc_call_start_batch(call, &op, 1, &tag_recv, NULL);
        pluck(cl, &tag_recv);
        if (!msg)
            break;
        grpc_slice slice;
        bool readable = wire_payload_bytes(msg, &slice);
        grpc_byte_buffer_destroy(msg);
        if (!readable) {
            fprintf(stderr, "sdxl: the server sent a message that cannot be read\n");
            grpc_call_cancel(call, NULL);
            break;
        }
        bool more = fn(user, GRPC_SLICE_START_PTR(slice), GRPC_SLICE_LENGTH(slice));
        grpc_slice_unref(slice);
        if (!more) {
            grpc_call_cancel(call, NULL);
            break;
        }
    }
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    op.data.recv_status_on_client.trailing_metadata = &trailing;
    op.data.recv_status_on_client.status = &status;
    op.data.recv_status_on_client.status_details = &details;
    grpc_call_start_batch(call, &op, 1, &tag_status, NULL);
    pluck(cl, &tag_status);
    int rc = 0;
    if (status != GRPC_STATUS_OK) {
        print_error(status, details, &trailing);
        rc = 1;
    }
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&initial);
    grpc_metadata_array_destroy(&trailing);
    grpc_byte_buffer_destroy(send);
    grpc_call_unref(call);
    return rc;
}
