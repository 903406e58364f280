/*
 * fuzz_auth_header.c — the bearer-token reader on arbitrary header values: the token it finds
 * lies inside the value, and a value accepted for a token is exactly "Bearer <token>"-shaped.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    const char *token;
    size_t len;
    if (auth_parse_bearer(copy, size, &token, &len)) {
        if (token < copy || token + len > copy + size || len == 0)
            abort();
        auth_token expected;
        memset(&expected, 0, sizeof expected);
        if (len <= AUTH_TOKEN_MAX) {
            memcpy(expected.value, token, len);
            expected.len = len;
            if (!auth_check(&expected, copy, size))
                abort(); /* the token found must be the one accepted */
        }
    }
    static const auth_token fixed = {.value = "s3cret", .len = 6};
    if (auth_check(&fixed, copy, size) && (size < 13 || !memmem(copy, size, "s3cret", 6)))
        abort();
    free(copy);
    return 0;
}
