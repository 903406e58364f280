/*
 * request.h — turning a generation request's bytes into a validated job description: parse the
 * protobuf, check every parameter (each bad one named, all of them reported), decode the input
 * image within the limits, resolve defaults, and assign a request id.
 *
 * No gRPC and no engine here (the engine's own sdxl_validate_params runs after, in the
 * handler), so hostile requests can be fuzzed directly (tests/fuzz/fuzz_server_request.c).
 */
#ifndef SDXL_SERVER_REQUEST_H
#define SDXL_SERVER_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io/image.h"
#include "server/call.h"
#include "server/errors.h"
#include "server/method.h"

#define REQUEST_PROMPT_MAX 16384 /* bytes; the tokenizers keep 77 tokens anyway */

typedef struct request_limits {
    size_t max_image_bytes;
    size_t max_pixels;
    int max_batch;
    int max_steps;
    int default_width;  /* txt2img without width/height: the model's size */
    int default_height;
} request_limits;

/* A validated generation request, defaults applied. */
typedef struct gen_request {
    server_method method;
    char *prompt;          /* owned, NUL-terminated UTF-8 */
    char *negative_prompt; /* owned; empty when not given */
    bool has_input;
    image input;           /* the decoded input image (img2img) */
    int width, height;     /* resolved output size */
    int steps;
    float strength;        /* 0 for txt2img */
    float guidance_scale;
    bool seed_set;
    uint64_t seed;
    int batch_size;
    image_format format;
    int quality;
    bool thumbnail;
    char request_id[REQUEST_ID_MAX];
} gen_request;

/* Parses and validates a request of `method` (a generation method). On failure fills e (reason
 * INVALID_REQUEST, INVALID_PARAMETER with every bad field, INVALID_IMAGE or IMAGE_TOO_LARGE)
 * and leaves out empty. */
bool request_parse(server_method method, const uint8_t *data, size_t len,
                   const request_limits *limits, gen_request *out, server_error *e);

void gen_request_free(gen_request *r);

/* A new random request id, "req-" and 16 hex digits. */
void request_new_id(char out[REQUEST_ID_MAX]);

/* True for well-formed UTF-8 of len bytes (no overlongs, no surrogates, ≤ U+10FFFF). */
bool request_utf8_valid(const char *s, size_t len);

#endif /* SDXL_SERVER_REQUEST_H */
