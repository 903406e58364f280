/*
 * read_file.c — a whole file into memory (see read_file.h), through the library's own reader.
 */
#include "support/read_file.h"

#include <stdio.h>

#include "base/file.h"

uint8_t *test_read_file(const char *path, size_t *size)
{
    uint8_t *data;
    sdxl_error err;
    if (file_read_all(path, 0, &data, size, &err) != SDXL_OK) {
        fprintf(stderr, "test_read_file: %s\n", err.message);
        return NULL;
    }
    return data;
}
