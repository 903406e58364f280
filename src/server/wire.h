/*
 * wire.h — protobuf messages to and from gRPC byte buffers, for the server's calls and for the
 * command-line client alike.
 */
#ifndef SDXL_SERVER_WIRE_H
#define SDXL_SERVER_WIRE_H

#include <stdbool.h>

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

/* msg packed into a new byte buffer (grpc_byte_buffer_destroy), or NULL when out of memory. */
grpc_byte_buffer *wire_pack(const ProtobufCMessage *msg);

/* A received message as contiguous bytes: *slice must be grpc_slice_unref'd. False for no
 * message, or one that cannot be read (a compressed payload that does not decompress). */
bool wire_payload_bytes(grpc_byte_buffer *payload, grpc_slice *slice);

#endif /* SDXL_SERVER_WIRE_H */
