/*
 * fuzz_server_request.c — parsing and validating a generation request from arbitrary bytes
 * (the first byte picks Img2Img or Txt2Img): protobuf decoding, every parameter check, the
 * image decoder behind it. Either a request with every value in range comes out, or an error
 * with a reason and a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    server_method method = data[0] & 1 ? METHOD_TXT2IMG : METHOD_IMG2IMG_BATCH;
    uint8_t *copy = malloc(size);
    if (!copy)
        return 0;
    memcpy(copy, data + 1, size - 1);
    request_limits limits = {.max_image_bytes = 1 << 20, .max_pixels = 512 * 512,
                             .max_batch = 4, .max_steps = 50, .default_width = 64,
                             .default_height = 64};
    gen_request r;
    server_error e;
    if (request_parse(method, copy, size - 1, &limits, &r, &e)) {
        if (r.steps < 1 || r.steps > 50 || r.batch_size < 1 || r.batch_size > 4 ||
            r.width % 8 || r.height % 8 || (size_t)r.width * r.height > limits.max_pixels ||
            r.quality < 1 || r.quality > 100 || !r.prompt || !r.request_id[0])
            abort();
        gen_request_free(&r);
    } else if (e.reason == REASON_NONE || !e.message[0]) {
        abort();
    }
    free(copy);
    return 0;
}
