/*
 * fuzz_tokenizer.c — tokenizer_encode on arbitrary bytes, with both SDXL tokenizers loaded
 * once from the shipped vocabulary (models/vocab). Nothing may crash, read out of bounds or
 * leak; the result must be well-formed: refused exactly when the bytes are not UTF-8, otherwise
 * BOS, vocabulary ids, EOS and padding, for the usual 77 ids and for other lengths.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/tokenizer.h"
#include "engine/unicode.h"
#include "support/paths.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define VOCAB_SIZE 49408

static tokenizer *tokenizers[2];

static void load_once(void)
{
    if (tokenizers[0])
        return;
    char vocab[4096];
    snprintf(vocab, sizeof vocab, "%s/models/vocab", test_source_dir());
    for (int k = 0; k < 2; k++) {
        sdxl_error err;
        if (tokenizer_load(NULL, k == 0 ? TOKENIZER_KIND_CLIP_L : TOKENIZER_KIND_OPENCLIP, vocab,
                           &tokenizers[k], &err) != SDXL_OK) {
            fprintf(stderr, "fuzz_tokenizer: cannot load the shipped vocabulary: %s\n",
                    err.message);
            abort();
        }
    }
}

static void check(const tokenizer *tok, const char *text, size_t size, size_t n_ids)
{
    int32_t ids[300];
    tokenizer_encoding enc;
    sdxl_error err;
    size_t bad;
    sdxl_status st = tokenizer_encode(tok, text, size, ids, n_ids, &enc, &err);
    if (st != SDXL_OK) {
        if (st != SDXL_ERR_INVALID_ARGUMENT ||
            utf8_validate((const unsigned char *)text, size, &bad))
            abort();
        return;
    }
    if (enc.n_tokens < 2 || enc.n_tokens > n_ids || enc.eos_index != enc.n_tokens - 1 ||
        ids[0] != tokenizer_bos_id(tok) || ids[enc.eos_index] != tokenizer_eos_id(tok))
        abort();
    for (size_t i = 0; i < n_ids; i++) {
        if (ids[i] < 0 || ids[i] >= VOCAB_SIZE ||
            (i > enc.eos_index && ids[i] != tokenizer_pad_id(tok)))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    load_once();
    /* An exact-size copy, so a read past the end is caught by ASan. */
    char *text = malloc(size ? size : 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    for (int k = 0; k < 2; k++)
        check(tokenizers[k], text, size, tokenizer_max_length(tokenizers[k]));
    check(tokenizers[size % 2], text, size, 2 + size % 298);
    free(text);
    return 0;
}
