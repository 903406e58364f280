/*
 * file.h — whole files into and out of memory, with errors that name the path: what the
 * command-line programs read (input images, token files) and write (results), and config
 * and vocabulary files.
 */
#ifndef SDXL_BASE_FILE_H
#define SDXL_BASE_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

/* Reads the whole file at path into *data (malloc'd, freed by the caller; one byte longer than
 * *size, so that a text can be NUL-terminated). A file longer than max_bytes (0: no limit) is
 * refused with SDXL_ERR_LIMIT, a missing one with SDXL_ERR_NOT_FOUND, any other failure with
 * SDXL_ERR_IO. The size is found by reading, so pipes and growing files work too. */
sdxl_status file_read_all(const char *path, size_t max_bytes, uint8_t **data, size_t *size,
                          sdxl_error *err);

/* Creates or truncates the file at path and writes size bytes to it (SDXL_ERR_IO on failure,
 * which may leave a partial file). */
sdxl_status file_write_all(const char *path, const void *data, size_t size, sdxl_error *err);

#endif /* SDXL_BASE_FILE_H */
