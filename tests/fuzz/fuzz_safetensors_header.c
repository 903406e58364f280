/*
 * fuzz_safetensors_header.c — safetensors_parse on arbitrary bytes.
 *
 * Every input must be either refused with a message or accepted as a file whose every tensor
 * lies inside the input, is found again by name, and whose bytes can all be read (ASan reports
 * a read outside the input). The libFuzzer input buffer has exactly the input's size, so any
 * read past the end of the file is caught.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Keeps the reads of tensor bytes from being optimised away. */
static volatile unsigned checksum_sink;

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_safetensors_header: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    safetensors_file f;
    sdxl_error err = {.code = SDXL_OK};
    if (safetensors_parse(&f, data, size, "fuzz", &err) != SDXL_OK) {
        check(err.code != SDXL_OK && strncmp(err.message, "fuzz: ", 6) == 0,
              "a refusal has a code and a message naming the file");
        check(f.tensors == NULL && f.n_tensors == 0, "a refused file is left closed");
        return 0;
    }
    size_t covered = 0;
    unsigned checksum = 0;
    for (size_t i = 0; i < f.n_tensors; i++) {
        const st_tensor *t = &f.tensors[i];
        check(safetensors_find(&f, t->name) == t, "every tensor is found by its name");
        check(i == 0 || strcmp(f.tensors[i - 1].name, t->name) < 0, "names sorted, unique");
        check(t->ndim >= 0 && t->ndim <= SAFETENSORS_MAX_DIMS, "ndim in range");
        check(t->nbytes == t->numel * dtype_size(t->type), "nbytes is numel × dtype size");
        const uint8_t *p = t->data;
        check(p >= data && p + t->nbytes <= data + size, "tensor data inside the input");
        for (size_t b = 0; b < t->nbytes; b++)
            checksum += p[b];
        covered += t->nbytes;
    }
    uint64_t header_len = 0;
    for (int b = 7; b >= 0; b--)
        header_len = header_len << 8 | data[b];
    check(covered == size - 8 - header_len, "tensors cover the data section exactly once");
    for (size_t i = 0; i < f.n_metadata; i++)
        check(safetensors_metadata(&f, f.metadata[i].key) == f.metadata[i].value,
              "every metadata key is found");
    safetensors_close(&f);
    checksum_sink = checksum;
    return 0;
}
