/*
 * bpe.c — vocab.json and merges.txt loading, and the byte-pair merge loop (see bpe.h).
 *
 * Every string the loop can meet is interned as a symbol once, at load: the 512 byte symbols
 * (with and without "</w>"), every vocab.json token, both halves and the result of every merge.
 * The loop then works on symbol numbers only. Its cost is O(n log n) in the piece length (a heap
 * of candidate pairs), so a prompt of one very long word cannot stall the server, while it keeps
 * the reference's order of merges exactly: all occurrences of the lowest-ranked pair are merged
 * in one left-to-right pass before any pair that pass created is considered.
 */
#include "engine/bpe.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "base/json.h"
#include "engine/tokenizer_buffer.h"
#include "engine/unicode.h"

#define BPE_MAX_FILE_BYTES (64u << 20)
#define END_OF_WORD "</w>"

typedef struct symbol {
    uint32_t offset; /* spelling: b->chars[offset .. offset + length) */
    uint32_t length;
    int32_t id; /* -1: no id (encodes as unk) */
} symbol;

typedef struct merge_slot {
    uint64_t key; /* (left << 32 | right) + 1; 0 = empty */
    int32_t rank;
    int32_t merged;
} merge_slot;

struct bpe {
    char *chars; /* symbol spellings, back to back */
    size_t chars_len, chars_cap;
    symbol *symbols;
    size_t n_symbols, symbols_cap;
    int32_t *symbol_slots; /* open addressing: symbol index + 1, 0 = empty */
    size_t symbol_slots_cap;
    merge_slot *merges;
    size_t merges_cap;
    size_t vocab_size;
    int32_t byte_symbol[256];     /* the byte's symbol inside a word */
    int32_t byte_end_symbol[256]; /* the same with "</w>": the last byte of a word */
};

/* FNV-1a. */
static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t hash_u64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static int32_t symbol_find(const bpe *b, const char *s, size_t len)
{
    if (b->symbol_slots_cap == 0)
        return -1;
    size_t mask = b->symbol_slots_cap - 1;
    for (size_t i = hash_bytes(s, len) & mask;; i = (i + 1) & mask) {
        int32_t slot = b->symbol_slots[i];
        if (slot == 0)
            return -1;
        const symbol *sym = &b->symbols[slot - 1];
        if (sym->length == len && memcmp(b->chars + sym->offset, s, len) == 0)
            return slot - 1;
    }
}

static void symbol_slots_insert(bpe *b, int32_t index)
{
    const symbol *sym = &b->symbols[index];
    size_t mask = b->symbol_slots_cap - 1;
    size_t i = hash_bytes(b->chars + sym->offset, sym->length) & mask;
    while (b->symbol_slots[i] != 0)
        i = (i + 1) & mask;
    b->symbol_slots[i] = index + 1;
}

/* The symbol spelled s[0..len), created (without an id) if new. */
static sdxl_status symbol_intern(bpe *b, const char *s, size_t len, int32_t *out, sdxl_error *err)
{
    int32_t found = symbol_find(b, s, len);
    if (found >= 0) {
        *out = found;
        return SDXL_OK;
    }
    if (b->n_symbols >= INT32_MAX / 2 || b->chars_len + len >= UINT32_MAX)
        return error_set(err, SDXL_ERR_LIMIT, "tokenizer: too many tokens");
    sdxl_status st;
    if ((st = tokenizer_buffer_reserve((void **)&b->chars, &b->chars_cap, b->chars_len + len, 1,
                                       err)) ||
        (st = tokenizer_buffer_reserve((void **)&b->symbols, &b->symbols_cap, b->n_symbols + 1,
                                       sizeof(symbol), err)))
        return st;
    memcpy(b->chars + b->chars_len, s, len);
    b->symbols[b->n_symbols] =
        (symbol){.offset = (uint32_t)b->chars_len, .length = (uint32_t)len, .id = -1};
    b->chars_len += len;
    int32_t index = (int32_t)b->n_symbols++;
    if (2 * b->n_symbols > b->symbol_slots_cap) {
        free(b->symbol_slots);
        b->symbol_slots_cap = b->symbol_slots_cap ? 2 * b->symbol_slots_cap : 1 << 16;
        b->symbol_slots = calloc(b->symbol_slots_cap, sizeof *b->symbol_slots);
        if (!b->symbol_slots) {
            b->symbol_slots_cap = 0;
            return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
        }
        for (size_t i = 0; i < b->n_symbols; i++)
            symbol_slots_insert(b, (int32_t)i);
    } else {
        symbol_slots_insert(b, index);
    }
    *out = index;
    return SDXL_OK;
}

static const merge_slot *merge_find(const bpe *b, int32_t left, int32_t right)
{
    if (left < 0 || right < 0)
        return NULL;
    uint64_t key = ((uint64_t)(uint32_t)left << 32 | (uint32_t)right) + 1;
    size_t mask = b->merges_cap - 1;
    for (size_t i = hash_u64(key) & mask;; i = (i + 1) & mask) {
        if (b->merges[i].key == key)
            return &b->merges[i];
        if (b->merges[i].key == 0)
            return NULL;
    }
}

/* A later line with the same pair replaces the earlier rank, as dict(zip(...)) does. */
static void merge_insert(bpe *b, int32_t left, int32_t right, int32_t rank, int32_t merged)
{
    uint64_t key = ((uint64_t)(uint32_t)left << 32 | (uint32_t)right) + 1;
    size_t mask = b->merges_cap - 1;
    size_t i = hash_u64(key) & mask;
    while (b->merges[i].key != 0 && b->merges[i].key != key)
        i = (i + 1) & mask;
    b->merges[i] = (merge_slot){.key = key, .rank = rank, .merged = merged};
}

static sdxl_status read_whole_file(const char *path, char **out, size_t *len, sdxl_error *err)
{
    uint8_t *data;
    sdxl_status st = file_read_all(path, BPE_MAX_FILE_BYTES, &data, len, err);
    if (st == SDXL_ERR_LIMIT)
        return error_set(err, st, "%s: larger than %u bytes, not a CLIP tokenizer file", path,
                         BPE_MAX_FILE_BYTES);
    *out = (char *)data;
    return st;
}

/* GPT-2's bytes_to_unicode(): printable Latin-1 bytes stand for themselves, the other 68 bytes
 * for U+0100, U+0101, ... in byte order. */
static uint32_t byte_to_unicode(unsigned b)
{
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))
        return b;
    uint32_t n = 0;
    for (unsigned c = 0; c < b; c++) {
        if (!((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF)))
            n++;
    }
    return 0x100 + n;
}

static sdxl_status intern_byte_symbols(bpe *b, sdxl_error *err)
{
    for (unsigned byte = 0; byte < 256; byte++) {
        unsigned char s[4 + sizeof END_OF_WORD];
        size_t n = utf8_encode_one(byte_to_unicode(byte), s);
        sdxl_status st = symbol_intern(b, (const char *)s, n, &b->byte_symbol[byte], err);
        if (st)
            return st;
        memcpy(s + n, END_OF_WORD, strlen(END_OF_WORD));
        st = symbol_intern(b, (const char *)s, n + strlen(END_OF_WORD), &b->byte_end_symbol[byte],
                           err);
        if (st)
            return st;
    }
    return SDXL_OK;
}

static sdxl_status load_vocab(bpe *b, const char *path, sdxl_error *err)
{
    json_doc doc;
    sdxl_status st = json_doc_load(&doc, path, BPE_MAX_FILE_BYTES, err);
    if (st)
        return st;
    const cJSON *root = json_doc_root(&doc);
    if (!cJSON_IsObject(root)) {
        json_doc_free(&doc);
        return error_set(err, SDXL_ERR_FORMAT,
                         "%s: not a JSON object of token -> id (is this a CLIP vocab.json?)", path);
    }
    const cJSON *item;
    size_t count = 0;
    cJSON_ArrayForEach(item, root)
    {
        size_t len = strlen(item->string), bad;
        double v = cJSON_IsNumber(item) ? item->valuedouble : -1.0;
        if (!utf8_validate((const unsigned char *)item->string, len, &bad)) {
            st = error_set(err, SDXL_ERR_FORMAT, "%s: token #%zu is not valid UTF-8 (byte %zu)",
                           path, count, bad);
            break;
        }
        if (!(v >= 0 && v <= INT32_MAX && v == (double)(int32_t)v)) {
            st = error_set(err, SDXL_ERR_FORMAT,
                           "%s: token \"%.64s\": its id must be an integer from 0 to %d", path,
                           item->string, INT32_MAX);
            break;
        }
        int32_t sym = -1;
        if ((st = symbol_intern(b, item->string, len, &sym, err)))
            break;
        if (b->symbols[sym].id < 0)
            count++;
        b->symbols[sym].id = (int32_t)v;
    }
    json_doc_free(&doc);
    if (st)
        return st;
    if (count == 0)
        return error_set(err, SDXL_ERR_FORMAT, "%s: no tokens", path);
    b->vocab_size = count;
    return SDXL_OK;
}

static bool is_line_space(char c)
{
    return c == ' ' || c == '\t' || c == '\v' || c == '\f';
}

/* One merges.txt line "left right": both halves interned, the pair recorded with its rank. */
static sdxl_status load_merge_line(bpe *b, const char *path, const char *line, size_t len,
                                   size_t line_no, int32_t rank, sdxl_error *err)
{
    const char *part[3];
    size_t part_len[3], n_parts = 0, i = 0;
    while (i < len) {
        while (i < len && is_line_space(line[i]))
            i++;
        if (i == len)
            break;
        size_t start = i;
        while (i < len && !is_line_space(line[i]))
            i++;
        if (n_parts == 2) {
            n_parts = 3;
            break;
        }
        part[n_parts] = line + start;
        part_len[n_parts++] = i - start;
    }
    if (n_parts != 2)
        return error_set(err, SDXL_ERR_FORMAT,
                         "%s: line %zu: expected two symbols separated by a space, got \"%.*s\"; "
                         "the file is damaged: restore it from the model's source",
                         path, line_no, (int)(len > 80 ? 80 : len), line);
    int32_t left = -1, right = -1, merged = -1;
    sdxl_status st;
    if ((st = symbol_intern(b, part[0], part_len[0], &left, err)) ||
        (st = symbol_intern(b, part[1], part_len[1], &right, err)))
        return st;
    char joined[512];
    if (part_len[0] + part_len[1] > sizeof joined)
        return error_set(err, SDXL_ERR_FORMAT, "%s: line %zu: merged symbol longer than %zu bytes",
                         path, line_no, sizeof joined);
    memcpy(joined, part[0], part_len[0]);
    memcpy(joined + part_len[0], part[1], part_len[1]);
    if ((st = symbol_intern(b, joined, part_len[0] + part_len[1], &merged, err)))
        return st;
    merge_insert(b, left, right, rank, merged);
    return SDXL_OK;
}

static sdxl_status load_merges(bpe *b, const char *path, sdxl_error *err)
{
    char *text = NULL;
    size_t len = 0, bad;
    sdxl_status st = read_whole_file(path, &text, &len, err);
    if (st)
        return st;
    if (!utf8_validate((const unsigned char *)text, len, &bad)) {
        free(text);
        return error_set(err, SDXL_ERR_FORMAT, "%s: not valid UTF-8 (byte %zu)", path, bad);
    }
    b->merges_cap = 1 << 17; /* > 2 * BPE_MAX_MERGES */
    b->merges = calloc(b->merges_cap, sizeof *b->merges);
    if (!b->merges) {
        free(text);
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    }
    /* Python: read() (universal newlines), .strip(), .split("\n")[1 : 48895]. */
    size_t begin = 0, end = len;
    while (begin < end &&
           (is_line_space(text[begin]) || text[begin] == '\n' || text[begin] == '\r'))
        begin++;
    while (end > begin &&
           (is_line_space(text[end - 1]) || text[end - 1] == '\n' || text[end - 1] == '\r'))
        end--;
    size_t line_no = 0, n_merges = 0;
    for (size_t i = begin; i < end && n_merges < BPE_MAX_MERGES;) {
        size_t start = i;
        while (i < end && text[i] != '\n' && text[i] != '\r')
            i++;
        size_t line_len = i - start;
        if (i < end && text[i] == '\r' && i + 1 < end && text[i + 1] == '\n')
            i++;
        i++;
        line_no++;
        if (line_no == 1) {
            /* CLIPTokenizer skips the first line whatever it holds; a file without the header
             * would silently lose its first merge, so refuse it. */
            if (line_len < 8 || memcmp(text + start, "#version", 8) != 0) {
                st = error_set(err, SDXL_ERR_FORMAT,
                               "%s: the first line is not a \"#version\" header; CLIP merges files "
                               "start with \"#version: 0.2\"",
                               path);
                break;
            }
            continue;
        }
        if ((st =
                 load_merge_line(b, path, text + start, line_len, line_no, (int32_t)n_merges, err)))
            break;
        n_merges++;
    }
    free(text);
    if (!st && n_merges == 0)
        st = error_set(err, SDXL_ERR_FORMAT, "%s: no merges after the header line", path);
    return st;
}

sdxl_status bpe_load(const char *vocab_path, const char *merges_path, bpe **out, sdxl_error *err)
{
    bpe *b = calloc(1, sizeof *b);
    if (!b)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    sdxl_status st = load_vocab(b, vocab_path, err);
    if (!st)
        st = load_merges(b, merges_path, err);
    if (!st)
        st = intern_byte_symbols(b, err);
    if (st) {
        bpe_free(b);
        return st;
    }
    *out = b;
    return SDXL_OK;
}

void bpe_free(bpe *b)
{
    if (!b)
        return;
    free(b->chars);
    free(b->symbols);
    free(b->symbol_slots);
    free(b->merges);
    free(b);
}

size_t bpe_vocab_size(const bpe *b)
{
    return b->vocab_size;
}

int32_t bpe_token_id(const bpe *b, const char *token, size_t len)
{
    int32_t sym = symbol_find(b, token, len);
    return sym < 0 ? -1 : b->symbols[sym].id;
}

sdxl_status bpe_set_token_id(bpe *b, const char *token, size_t len, int32_t id, sdxl_error *err)
{
    int32_t sym = -1;
    sdxl_status st = symbol_intern(b, token, len, &sym, err);
    if (st)
        return st;
    b->symbols[sym].id = id;
    return SDXL_OK;
}

/* A candidate merge: the pair (left_symbol, right_symbol) at node `left` (the pair's first
 * symbol), valid while both nodes still hold those symbols next to each other. */
typedef struct candidate {
    int32_t rank;
    uint32_t left;
    int32_t left_symbol, right_symbol;
} candidate;

static bool candidate_before(const candidate *a, const candidate *c)
{
    return a->rank < c->rank || (a->rank == c->rank && a->left < c->left);
}

static void heap_push(candidate *heap, size_t *n, candidate c)
{
    size_t i = (*n)++;
    while (i > 0 && candidate_before(&c, &heap[(i - 1) / 2])) {
        heap[i] = heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    heap[i] = c;
}

static candidate heap_pop(candidate *heap, size_t *n)
{
    candidate top = heap[0], last = heap[--*n];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= *n)
            break;
        if (child + 1 < *n && candidate_before(&heap[child + 1], &heap[child]))
            child++;
        if (!candidate_before(&heap[child], &last))
            break;
        heap[i] = heap[child];
        i = child;
    }
    if (*n > 0)
        heap[i] = last;
    return top;
}

typedef struct word {
    int32_t *symbol; /* per node; nodes are the piece's bytes, merged nodes absorb their right */
    int32_t *next;   /* next live node, -1 at the end */
    int32_t *prev;
    int32_t *merged; /* nodes merged by the current pass */
    candidate *heap; /* at most n - 1 initial pairs + 2 per merge: < 3n */
    size_t heap_len;
} word;

static void push_pair(const bpe *b, word *w, int32_t left)
{
    if (left < 0 || w->next[left] < 0)
        return;
    int32_t ls = w->symbol[left], rs = w->symbol[w->next[left]];
    const merge_slot *m = merge_find(b, ls, rs);
    if (m)
        heap_push(
            w->heap, &w->heap_len,
            (candidate){
                .rank = m->rank, .left = (uint32_t)left, .left_symbol = ls, .right_symbol = rs});
}

static bool candidate_valid(const word *w, const candidate *c)
{
    int32_t right = w->next[c->left];
    return w->symbol[c->left] == c->left_symbol && right >= 0 &&
           w->symbol[right] == c->right_symbol;
}

sdxl_status bpe_encode(const bpe *b, const unsigned char *bytes, size_t len, int32_t unk_id,
                       bpe_scratch *scratch, int32_t *ids, size_t max_ids, size_t *count,
                       sdxl_error *err)
{
    if (len == 0 || len > INT32_MAX / 4)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "tokenizer: piece of %zu bytes", len);
    size_t need = len * (4 * sizeof(int32_t) + 3 * sizeof(candidate));
    sdxl_status st = tokenizer_buffer_reserve(&scratch->mem, &scratch->capacity, need, 1, err);
    if (st)
        return st;
    word w = {.symbol = scratch->mem};
    w.next = w.symbol + len;
    w.prev = w.next + len;
    w.merged = w.prev + len;
    w.heap = (candidate *)(w.merged + len);

    for (size_t i = 0; i < len; i++) {
        w.symbol[i] = i + 1 < len ? b->byte_symbol[bytes[i]] : b->byte_end_symbol[bytes[i]];
        w.next[i] = i + 1 < len ? (int32_t)(i + 1) : -1;
        w.prev[i] = (int32_t)i - 1;
    }
    for (size_t i = 0; i + 1 < len; i++)
        push_pair(b, &w, (int32_t)i);

    while (w.heap_len > 0) {
        /* One pass: every occurrence of the lowest-ranked pair, in text order. The pairs this
         * pass creates are queued after it, as the reference recomputes its pairs only then. */
        int32_t rank = w.heap[0].rank;
        size_t n_merged = 0;
        while (w.heap_len > 0 && w.heap[0].rank == rank) {
            candidate c = heap_pop(w.heap, &w.heap_len);
            if (!candidate_valid(&w, &c))
                continue;
            int32_t left = (int32_t)c.left, right = w.next[left];
            w.symbol[left] = merge_find(b, c.left_symbol, c.right_symbol)->merged;
            w.next[left] = w.next[right];
            if (w.next[right] >= 0)
                w.prev[w.next[right]] = left;
            w.symbol[right] = -1;
            w.merged[n_merged++] = left;
        }
        for (size_t k = 0; k < n_merged; k++) {
            push_pair(b, &w, w.prev[w.merged[k]]);
            push_pair(b, &w, w.merged[k]);
        }
    }

    size_t n = 0;
    for (int32_t node = 0; node >= 0; node = w.next[node]) {
        int32_t id = b->symbols[w.symbol[node]].id;
        if (n < max_ids)
            ids[n] = id >= 0 ? id : unk_id;
        n++;
    }
    *count = n;
    return SDXL_OK;
}

void bpe_scratch_free(bpe_scratch *scratch)
{
    free(scratch->mem);
    scratch->mem = NULL;
    scratch->capacity = 0;
}
