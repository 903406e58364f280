/*
 * tokenizer.h — SDXL's CLIP tokenizers: a prompt to the ids the text encoders read.
 *
 * Reproduces transformers 4.46's slow CLIPTokenizer as diffusers calls it
 * (padding="max_length", max_length=model_max_length, truncation=True), in the environment the
 * goldens pin: WITHOUT ftfy, so text goes through transformers' BasicTokenizer fallback. For each
 * piece of the prompt between added tokens (typed "<|endoftext|>", and "!" for tokenizer_2):
 *   1. _clean_text: NUL, U+FFFD and every category C* character except \t \n \r are dropped;
 *      \t \n \r, space and Zs become " ";
 *   2. spaces around CJK ideographs; NFC; split into words at Python whitespace (str.split());
 *   3. each word lower-cased with Python's str.lower() (full mappings, Final_Sigma); accents kept;
 *   4. the CLIP pattern (regex module, IGNORECASE):
 *      <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 *      then byte-level BPE of each match (bpe.h). A match spelled exactly "<|startoftext|>" or
 *      "<|endoftext|>" is that token, not BPE (the reference's BPE cache is seeded with them).
 * The ids are [BOS] + the first n_ids - 2 tokens + [EOS], padded with the pad token.
 * Encoding stops as soon as the kept tokens are known; a single word is always encoded whole,
 * in O(n log n) time with up to a few hundred bytes of working memory per byte of it, so the
 * server should bound the prompt's size (its message size limit does).
 *
 * Input must be valid UTF-8 (prompts arrive as protobuf strings, which are UTF-8 by definition):
 * anything else is refused with SDXL_ERR_INVALID_ARGUMENT naming the byte offset, rather than
 * guessing at what the client meant.
 *
 * A loaded tokenizer is immutable: tokenizer_encode may be called from several threads at once.
 */
#ifndef SDXL_ENGINE_TOKENIZER_H
#define SDXL_ENGINE_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

/* The longest model_max_length accepted from a tokenizer_config.json. */
#define TOKENIZER_MAX_LENGTH_LIMIT 4096

/* Which of SDXL's tokenizers a directory holds. Only used where the directory has no
 * tokenizer_config.json: the special tokens, padding and length are then sdxl-turbo's. */
typedef enum tokenizer_kind {
    TOKENIZER_KIND_CLIP_L = 0,   /* tokenizer/: pads with <|endoftext|> (49407) */
    TOKENIZER_KIND_OPENCLIP = 1, /* tokenizer_2/: pads with "!" (id 0), an added token */
} tokenizer_kind;

typedef struct tokenizer tokenizer;

/* What tokenizer_encode found besides the ids. */
typedef struct tokenizer_encoding {
    size_t n_tokens;  /* BOS + the kept text tokens + EOS: the ids before padding (>= 2) */
    size_t eos_index; /* = n_tokens - 1, the EOS the tokenizer appended. NOTE: transformers'
                         CLIP pools at the FIRST id equal to eos_token_id (or the argmax of the
                         ids with legacy configs), which is earlier when the prompt itself
                         contains "<|endoftext|>": text encoders must search the ids. */
    bool truncated;   /* the text had more than n_ids - 2 tokens; the rest was dropped */
} tokenizer_encoding;

/*
 * Loads a tokenizer from dir, a model directory's tokenizer/ or tokenizer_2/ folder:
 *   - vocab.json and merges.txt from dir; when dir is NULL, does not exist, or has neither file,
 *     from shipped_vocab_dir (the project's models/vocab); one without the other is an error;
 *   - tokenizer_config.json (bos/eos/unk/pad tokens, model_max_length, added_tokens_decoder),
 *     and, as transformers does only when that has no added_tokens_decoder,
 *     special_tokens_map.json and added_tokens.json; when dir has no tokenizer_config.json,
 *     sdxl-turbo's settings for `kind`.
 * Added tokens with lstrip, rstrip or single_word set are refused (SDXL_ERR_UNSUPPORTED).
 */
sdxl_status tokenizer_load(const char *dir, tokenizer_kind kind, const char *shipped_vocab_dir,
                           tokenizer **out, sdxl_error *err);
void tokenizer_free(tokenizer *tok);

/* model_max_length (77 for both SDXL tokenizers): the n_ids to pass to tokenizer_encode. */
size_t tokenizer_max_length(const tokenizer *tok);
int32_t tokenizer_bos_id(const tokenizer *tok);
int32_t tokenizer_eos_id(const tokenizer *tok);
int32_t tokenizer_pad_id(const tokenizer *tok);

/* Tokenizes text[0..len) (UTF-8, may contain NUL) into exactly n_ids ids (n_ids >= 2):
 * BOS, up to n_ids - 2 text tokens, EOS, then padding. enc may be NULL. */
sdxl_status tokenizer_encode(const tokenizer *tok, const char *text, size_t len, int32_t *ids,
                             size_t n_ids, tokenizer_encoding *enc, sdxl_error *err);

#endif /* SDXL_ENGINE_TOKENIZER_H */
