/*
 * bpe.h — CLIP's byte-level byte-pair encoding: vocab.json, merges.txt and the merge loop.
 *
 * A piece of text (one match of the CLIP split pattern, as UTF-8 bytes) becomes one symbol per
 * byte, spelled with GPT-2's byte-to-unicode map, the last one with "</w>" appended; then the
 * lowest-ranked adjacent pair of merges.txt is merged, everywhere it occurs (left to right), until
 * no pair has a rank — exactly transformers' CLIPTokenizer.bpe(). Each final symbol's id is the
 * one set by bpe_set_token_id (added tokens), else its vocab.json id, else the caller's unk id.
 *
 * Loading follows CLIPTokenizer.__init__: merges.txt's first line (the "#version" header) is
 * skipped and at most 48894 merges (49152 - 256 - 2) are read; later lines are ignored.
 * Lookups are hash maps: token strings to symbols, symbol pairs to (rank, merged symbol).
 */
#ifndef SDXL_ENGINE_BPE_H
#define SDXL_ENGINE_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

/* CLIPTokenizer reads merges.txt lines [1, 49152 - 256 - 2]. */
#define BPE_MAX_MERGES 48894

typedef struct bpe bpe;

/* Per-call working memory of bpe_encode (one per thread); zero-initialise, bpe_scratch_free. */
typedef struct bpe_scratch {
    void *mem;
    size_t capacity;
} bpe_scratch;

sdxl_status bpe_load(const char *vocab_path, const char *merges_path, bpe **out, sdxl_error *err);
void bpe_free(bpe *b);

/* Number of distinct tokens in vocab.json. */
size_t bpe_vocab_size(const bpe *b);

/* Id of the token spelled token[0..len) (as in vocab.json, e.g. "cat</w>"), or -1. */
int32_t bpe_token_id(const bpe *b, const char *token, size_t len);

/* Makes token[0..len) map to id (an added token: it takes precedence over vocab.json). */
sdxl_status bpe_set_token_id(bpe *b, const char *token, size_t len, int32_t id, sdxl_error *err);

/* Encodes one piece (bytes[0..len), len >= 1). Writes the first min(count, max_ids) ids to ids
 * and returns count, the number of tokens of the piece. Symbols without an id give unk_id. */
sdxl_status bpe_encode(const bpe *b, const unsigned char *bytes, size_t len, int32_t unk_id,
                       bpe_scratch *scratch, int32_t *ids, size_t max_ids, size_t *count,
                       sdxl_error *err);

void bpe_scratch_free(bpe_scratch *scratch);

#endif /* SDXL_ENGINE_BPE_H */
