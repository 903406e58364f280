/*
 * read_file.h — reading a whole file into memory, for tests and the fuzz replay driver.
 */
#ifndef SDXL_TESTS_SUPPORT_READ_FILE_H
#define SDXL_TESTS_SUPPORT_READ_FILE_H

#include <stddef.h>
#include <stdint.h>

/* Reads a whole file into a malloc'd buffer (size 0 gives a 1-byte buffer); NULL, with the
 * reason on stderr, on failure. */
uint8_t *test_read_file(const char *path, size_t *size);

#endif /* SDXL_TESTS_SUPPORT_READ_FILE_H */
