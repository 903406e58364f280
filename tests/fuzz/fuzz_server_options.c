/*
 * fuzz_server_options.c — sdxld's flag parser on arbitrary argument vectors (the input split at
 * NUL bytes): every outcome is a status with a message, never a crash or an overflow of the
 * fixed-size option fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_ARGS = 32 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    char *argv[MAX_ARGS + 1] = {"sdxld"};
    int argc = 1;
    for (size_t start = 0; start <= size && argc < MAX_ARGS; argc++) {
        argv[argc] = copy + start;
        start += strlen(copy + start) + 1;
    }
    server_options opts;
    options_default(&opts);
    sdxl_error err;
    if (options_parse(argc, argv, &opts, &err) != SDXL_OK && err.message[0] == '\0')
        abort();
    if (strlen(opts.model_dir) >= sizeof opts.model_dir || strlen(opts.listen) >= sizeof opts.listen)
        abort();
    free(copy);
    return 0;
}
