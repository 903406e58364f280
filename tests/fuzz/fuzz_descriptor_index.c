/*
 * fuzz_descriptor_index.c — the FileDescriptorSet reader behind server reflection on arbitrary
 * bytes, then lookups: malformed sets are refused, never read past their end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/descriptor_index.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    desc_index idx;
    if (desc_index_build(copy, size, &idx, NULL) == SDXL_OK) {
        for (int i = 0; i < idx.n_files; i++) {
            const desc_file *f = &idx.files[i];
            if (f->data < copy || f->data + f->size > copy + size)
                abort();
            if (desc_index_find_file(&idx, f->name) == NULL)
                abort();
            for (int k = 0; k < f->n_symbols; k++)
                if (desc_index_find_symbol(&idx, f->symbols[k]) == NULL)
                    abort();
        }
        desc_index_free(&idx);
    }
    free(copy);
    return 0;
}
