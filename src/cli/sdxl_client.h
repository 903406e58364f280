/*
 * sdxl_client.h — the command-line client's connection to sdxld: one channel, unary and
 * server-streaming calls made synchronously, and error statuses printed with their
 * google.rpc details (reason, field, violations, resolution).
 */
#ifndef SDXL_CLI_SDXL_CLIENT_H
#define SDXL_CLI_SDXL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

typedef struct client {
    grpc_channel *channel;
    grpc_completion_queue *cq;
    char authorization[4200]; /* "Bearer <token>" or empty */
    double timeout_s;         /* per call; 0: none */
} client;

/* Called for each message of the answer; returns false to stop reading. */
typedef bool (*message_fn)(void *user, const uint8_t *data, size_t len);

/* Starts gRPC and opens cl's channel to server (HOST:PORT or unix:PATH); cl->authorization and
 * cl->timeout_s are left as the caller set them. */
void client_open(client *cl, const char *server);
/* Closes the channel and shuts gRPC down. */
void client_close(client *cl);

/* Makes one call: sends request, hands each answer message to fn, then reads the status.
 * Returns 0 on OK, 1 on an error status (printed on stderr). */
int client_call(client *cl, const char *method, const ProtobufCMessage *request, message_fn fn,
                void *user);

#endif /* SDXL_CLI_SDXL_CLIENT_H */
