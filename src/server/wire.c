/*
 * wire.c — packing protobuf messages into gRPC byte buffers and reading them back (see wire.h).
 */
#include "server/wire.h"

#include <stdint.h>
#include <stdlib.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>

grpc_byte_buffer *wire_pack(const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *data = malloc(len ? len : 1);
    if (!data)
        return NULL;
    protobuf_c_message_pack(msg, data);
    /* The slice takes the buffer over (freed with free), no copy. */
    grpc_slice slice = grpc_slice_new(data, len, free);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    return bb;
}

bool wire_payload_bytes(grpc_byte_buffer *payload, grpc_slice *slice)
{
    if (!payload)
        return false;
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, payload))
        return false;
    *slice = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    return true;
}
