/*
 * tokenizer_internal.h — the loaded tokenizer, shared by tokenizer_load.c (which builds it from
 * the model's files) and tokenizer.c (which encodes prompts with it). Not for other modules.
 */
#ifndef SDXL_ENGINE_TOKENIZER_INTERNAL_H
#define SDXL_ENGINE_TOKENIZER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/bpe.h"
#include "engine/tokenizer.h"

/* The pieces the reference's BPE cache is seeded with: matched by the CLIP pattern, they are
 * these tokens rather than BPE of their bytes. */
#define STARTOFTEXT "<|startoftext|>"
#define ENDOFTEXT "<|endoftext|>"

typedef struct added_token {
    char *content;
    size_t len;
    int32_t id;
} added_token;

struct tokenizer {
    bpe *bpe;
    size_t max_length;
    int32_t bos_id, eos_id, unk_id, pad_id;
    int32_t startoftext_id, endoftext_id; /* the pieces the reference's BPE cache holds */
    added_token *added;
    size_t n_added;
    bool added_first_byte[256]; /* some added token starts with this byte */
};

#endif /* SDXL_ENGINE_TOKENIZER_INTERNAL_H */
