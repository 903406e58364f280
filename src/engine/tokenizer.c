/*
 * tokenizer.c — a prompt to the ids of a loaded CLIP tokenizer (see tokenizer.h for the steps
 * and the reference they reproduce; tokenizer_load.c builds the tokenizer).
 *
 * Added tokens are cut out of the raw prompt before any normalisation, longest match first at
 * the leftmost position, as transformers' Trie.split does for the CLIP tokens.
 *
 * Encoding streams through the prompt word by word (a word: what str.split() yields after
 * _clean_text and the CJK spacing). Normalising each word alone equals normalising the whole
 * text because no whitespace character takes part in NFC or lower-casing (checked by the table
 * generator), and it lets encoding stop as soon as max_length - 1 tokens are known.
 */
#include "engine/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "engine/tokenizer_buffer.h"
#include "engine/tokenizer_internal.h"
#include "engine/unicode.h"

size_t tokenizer_max_length(const tokenizer *tok)
{
    return tok->max_length;
}

int32_t tokenizer_bos_id(const tokenizer *tok)
{
    return tok->bos_id;
}

int32_t tokenizer_eos_id(const tokenizer *tok)
{
    return tok->eos_id;
}

int32_t tokenizer_pad_id(const tokenizer *tok)
{
    return tok->pad_id;
}

/* Growable buffers of one tokenizer_encode call. */
typedef struct encoder {
    const tokenizer *tok;
    uint32_t *word, *nfc, *nfc_work, *lower;
    size_t word_len, word_cap, nfc_cap, nfc_work_cap, lower_cap;
    unsigned char *piece;
    size_t piece_cap;
    bpe_scratch scratch;
    int32_t *ids; /* the text tokens go to ids[0 .. limit) */
    size_t limit, count;
} encoder;

static void emit_id(encoder *e, int32_t id)
{
    if (e->count < e->limit)
        e->ids[e->count] = id;
    e->count++;
}

static bool done(const encoder *e)
{
    return e->count > e->limit;
}

/* One match of the CLIP pattern: its UTF-8 bytes, then the BPE (or the cached special). */
static sdxl_status emit_piece(encoder *e, const uint32_t *cps, size_t n, sdxl_error *err)
{
    sdxl_status st = tokenizer_buffer_reserve((void **)&e->piece, &e->piece_cap, 4 * n, 1, err);
    if (st)
        return st;
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += utf8_encode_one(cps[i], e->piece + len);
    if (len == strlen(STARTOFTEXT) && memcmp(e->piece, STARTOFTEXT, len) == 0) {
        emit_id(e, e->tok->startoftext_id);
        return SDXL_OK;
    }
    if (len == strlen(ENDOFTEXT) && memcmp(e->piece, ENDOFTEXT, len) == 0) {
        emit_id(e, e->tok->endoftext_id);
        return SDXL_OK;
    }
    size_t room = e->count < e->limit ? e->limit - e->count : 0, produced;
    st = bpe_encode(e->tok->bpe, e->piece, len, e->tok->unk_id, &e->scratch,
                    room ? e->ids + e->count : NULL, room, &produced, err);
    if (st)
        return st;
    e->count += produced;
    return SDXL_OK;
}

/* The pattern's literal alternatives, in the pattern's order (they come before the classes). */
static const char *const literal_alternatives[] = {
    "<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d",
};

static size_t match_literal(const uint32_t *cps, size_t n)
{
    /* Every alternative starts with '<' or '\'', which match only themselves. */
    if (cps[0] != '<' && cps[0] != '\'')
        return 0;
    for (size_t a = 0; a < sizeof literal_alternatives / sizeof literal_alternatives[0]; a++) {
        const char *lit = literal_alternatives[a];
        size_t k = 0;
        while (lit[k] && k < n && unicode_literal_matches(lit[k], cps[k]))
            k++;
        if (!lit[k])
            return k;
    }
    return 0;
}

/* The CLIP pattern over one lower-cased word (findall: unmatched characters are skipped). */
static sdxl_status split_word(encoder *e, const uint32_t *w, size_t n, sdxl_error *err)
{
    size_t i = 0;
    while (i < n && !done(e)) {
        size_t len = match_literal(w + i, n - i);
        if (len == 0) {
            unsigned f = unicode_flags(w[i]);
            unsigned run = f & UNICODE_RE_LETTER   ? UNICODE_RE_LETTER
                           : f & UNICODE_RE_NUMBER ? 0
                           : f & UNICODE_RE_OTHER  ? UNICODE_RE_OTHER
                                                   : ~0u;
            if (run == ~0u) {
                i++;
                continue;
            }
            len = 1;
            while (run && i + len < n && (unicode_flags(w[i + len]) & run))
                len++;
        }
        sdxl_status st = emit_piece(e, w + i, len, err);
        if (st)
            return st;
        i += len;
    }
    return SDXL_OK;
}

/* A complete word: NFC, lower(), then the pattern. */
static sdxl_status flush_word(encoder *e, sdxl_error *err)
{
    size_t n = e->word_len;
    e->word_len = 0;
    if (n == 0 || done(e))
        return SDXL_OK;
    sdxl_status st;
    size_t nfc_need = n * UNICODE_MAX_DECOMPOSITION;
    if ((st = tokenizer_buffer_reserve((void **)&e->nfc, &e->nfc_cap, nfc_need, 4, err)) ||
        (st = tokenizer_buffer_reserve((void **)&e->nfc_work, &e->nfc_work_cap, nfc_need, 4, err)))
        return st;
    size_t m = unicode_nfc(e->word, n, e->nfc, e->nfc_work);
    if ((st = tokenizer_buffer_reserve((void **)&e->lower, &e->lower_cap, m * UNICODE_MAX_LOWER, 4,
                                       err)))
        return st;
    size_t k = unicode_lower(e->nfc, m, e->lower);
    return split_word(e, e->lower, k, err);
}

static sdxl_status push_char(encoder *e, uint32_t cp, sdxl_error *err)
{
    sdxl_status st =
        tokenizer_buffer_reserve((void **)&e->word, &e->word_cap, e->word_len + 1, 4, err);
    if (st)
        return st;
    e->word[e->word_len++] = cp;
    return SDXL_OK;
}

/* The longest added token at text[pos], or NULL. */
static const added_token *match_added(const tokenizer *tok, const unsigned char *text, size_t len,
                                      size_t pos)
{
    if (!tok->added_first_byte[text[pos]])
        return NULL;
    const added_token *best = NULL;
    for (size_t i = 0; i < tok->n_added; i++) {
        const added_token *a = &tok->added[i];
        if (a->len > 0 && a->len <= len - pos && (!best || a->len > best->len) &&
            memcmp(text + pos, a->content, a->len) == 0)
            best = a;
    }
    return best;
}

static sdxl_status encode_text(encoder *e, const unsigned char *text, size_t len, sdxl_error *err)
{
    sdxl_status st = SDXL_OK;
    size_t pos = 0;
    while (pos < len && !st && !done(e)) {
        const added_token *a = match_added(e->tok, text, len, pos);
        if (a) {
            if (!(st = flush_word(e, err)))
                emit_id(e, a->id);
            pos += a->len;
            continue;
        }
        uint32_t cp;
        pos += utf8_decode_one(text + pos, &cp);
        unsigned f = unicode_flags(cp);
        if (f & UNICODE_DROP)
            continue;
        if (f & (UNICODE_SPACE | UNICODE_PY_SPACE)) {
            st = flush_word(e, err);
        } else if (f & UNICODE_CJK) {
            if (!(st = flush_word(e, err)) && !(st = push_char(e, cp, err)))
                st = flush_word(e, err);
        } else {
            st = push_char(e, cp, err);
        }
    }
    if (!st)
        st = flush_word(e, err);
    return st;
}

sdxl_status tokenizer_encode(const tokenizer *tok, const char *text, size_t len, int32_t *ids,
                             size_t n_ids, tokenizer_encoding *enc, sdxl_error *err)
{
    if (n_ids < 2)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "tokenizer: %zu ids requested; at least 2 (BOS and EOS) are needed",
                         n_ids);
    if (!text && len > 0)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "tokenizer: NULL text");
    size_t bad;
    if (len > 0 && !utf8_validate((const unsigned char *)text, len, &bad))
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "prompt is not valid UTF-8: invalid byte 0x%02X at offset %zu; send text "
                         "encoded as UTF-8",
                         (unsigned char)text[bad], bad);
    encoder e = {.tok = tok, .ids = ids + 1, .limit = n_ids - 2};
    sdxl_status st = len > 0 ? encode_text(&e, (const unsigned char *)text, len, err) : SDXL_OK;
    free(e.word);
    free(e.nfc);
    free(e.nfc_work);
    free(e.lower);
    free(e.piece);
    bpe_scratch_free(&e.scratch);
    if (st)
        return st;
    size_t kept = e.count < e.limit ? e.count : e.limit;
    ids[0] = tok->bos_id;
    ids[kept + 1] = tok->eos_id;
    for (size_t i = kept + 2; i < n_ids; i++)
        ids[i] = tok->pad_id;
    if (enc) {
        enc->n_tokens = kept + 2;
        enc->eos_index = kept + 1;
        enc->truncated = e.count > e.limit;
    }
    return SDXL_OK;
}
