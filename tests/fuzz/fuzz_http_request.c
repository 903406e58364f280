/*
 * fuzz_http_request.c — the metrics endpoint's HTTP request-head parser on arbitrary bytes:
 * no read outside the input (an exact-size copy, so ASan sees one), and the reported lengths
 * always inside it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/http_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    http_request req;
    if (http_parse_request(copy, size, &req) == HTTP_PARSE_OK) {
        if (req.head_len > size || req.method + req.method_len > copy + size ||
            req.target + req.target_len > copy + size || req.path_len > req.target_len)
            abort();
    }
    free(copy);
    return 0;
}
