// needs: model_tiny-a model_tiny-b
/*
 * test_tokenizer.c — SDXL's two CLIP tokenizers against transformers' slow CLIPTokenizer.
 *
 * Every prompt of tests/golden/data/tokenizer.safetensors must give exactly the reference ids,
 * padded to 77 and untruncated, for both tokenizers, however they are loaded: from the
 * sdxl-turbo config folders (configs only: the vocabulary comes from models/vocab), from nothing
 * at all (the built-in sdxl-turbo settings), and from the tiny model directories mkmodel writes
 * (every file present). Then the loading rules (legacy special_tokens_map.json/added_tokens.json,
 * clear errors for damaged files), invalid UTF-8, and the Unicode primitives, with values
 * computed by the reference (transformers 4.46.3, Python 3.11 unicodedata 14.0).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/tokenizer.h"
#include "engine/unicode.h"
#include "support/golden.h"
#include "support/paths.h"

#define MAX_IDS 77
#define BIG_IDS 1024 /* more than any golden prompt's untruncated length */

static void vocab_dir(char *out, size_t n)
{
    snprintf(out, n, "%s/models/vocab", test_source_dir());
}

static tokenizer *load_or_fail(const char *dir, tokenizer_kind kind)
{
    char shipped[4096];
    vocab_dir(shipped, sizeof shipped);
    sdxl_error err;
    tokenizer *tok = NULL;
    GOLDEN_ASSERT_OK(tokenizer_load(dir, kind, shipped, &tok, &err), err);
    return tok;
}

static void encode_or_fail(const tokenizer *tok, const char *text, size_t len, int32_t *ids,
                           size_t n_ids, tokenizer_encoding *enc)
{
    sdxl_error err;
    GOLDEN_ASSERT_OK(tokenizer_encode(tok, text, len, ids, n_ids, enc, &err), err);
}

/* One tokenizer ("1" or "2") on every golden prompt: padded ids, untruncated ids, flags. */
static void check_golden(const tokenizer *tok, const char *which, const char *how)
{
    sdxl_error err;
    golden g;
    GOLDEN_ASSERT_OK(golden_open(&g, "tokenizer.safetensors", &err), err);
    const char *count_text = golden_meta(&g, "count");
    assert_non_null(count_text);
    int count = atoi(count_text);
    assert_true(count > 0);
    for (int i = 0; i < count; i++) {
        char key[64], label[128];
        snprintf(key, sizeof key, "prompt.%d", i);
        const char *prompt = golden_meta(&g, key);
        assert_non_null(prompt);

        golden_shape shape;
        int64_t *want, *want_full;
        snprintf(key, sizeof key, "ids%s.%d", which, i);
        GOLDEN_ASSERT_OK(golden_get_i64(&g, key, &shape, &want, &err), err);
        assert_int_equal(shape.numel, MAX_IDS);
        snprintf(key, sizeof key, "ids%s_full.%d", which, i);
        golden_shape full_shape;
        GOLDEN_ASSERT_OK(golden_get_i64(&g, key, &full_shape, &want_full, &err), err);
        assert_true(full_shape.numel >= 2 && full_shape.numel <= BIG_IDS);

        int32_t ids[BIG_IDS];
        int64_t got[BIG_IDS];
        tokenizer_encoding enc;
        encode_or_fail(tok, prompt, strlen(prompt), ids, MAX_IDS, &enc);
        for (size_t k = 0; k < MAX_IDS; k++)
            got[k] = ids[k];
        snprintf(label, sizeof label, "%s: tokenizer%s prompt %d padded", how, which, i);
        GOLDEN_ASSERT_IDS_EQUAL(label, got, want, MAX_IDS);
        assert_int_equal(enc.truncated, full_shape.numel > MAX_IDS);
        size_t n_tokens = full_shape.numel < MAX_IDS ? full_shape.numel : MAX_IDS;
        assert_int_equal(enc.n_tokens, n_tokens);
        assert_int_equal(enc.eos_index, n_tokens - 1);
        assert_int_equal(ids[enc.eos_index], tokenizer_eos_id(tok));

        encode_or_fail(tok, prompt, strlen(prompt), ids, BIG_IDS, &enc);
        assert_false(enc.truncated);
        assert_int_equal(enc.n_tokens, full_shape.numel);
        for (size_t k = 0; k < full_shape.numel; k++)
            got[k] = ids[k];
        snprintf(label, sizeof label, "%s: tokenizer%s prompt %d untruncated", how, which, i);
        GOLDEN_ASSERT_IDS_EQUAL(label, got, want_full, full_shape.numel);
        free(want);
        free(want_full);
    }
    golden_close(&g);
}

static void check_both(const char *dir1, const char *dir2, const char *how)
{
    tokenizer *t1 = load_or_fail(dir1, TOKENIZER_KIND_CLIP_L);
    tokenizer *t2 = load_or_fail(dir2, TOKENIZER_KIND_OPENCLIP);
    assert_int_equal(tokenizer_max_length(t1), 77);
    assert_int_equal(tokenizer_pad_id(t1), 49407);
    assert_int_equal(tokenizer_pad_id(t2), 0);
    assert_int_equal(tokenizer_bos_id(t2), 49406);
    check_golden(t1, "1", how);
    check_golden(t2, "2", how);
    tokenizer_free(t1);
    tokenizer_free(t2);
}

static void golden_ids_from_sdxl_turbo_configs(void **state)
{
    (void)state;
    char d1[4096], d2[4096];
    snprintf(d1, sizeof d1, "%s/models/configs/sdxl-turbo/tokenizer", test_source_dir());
    snprintf(d2, sizeof d2, "%s/models/configs/sdxl-turbo/tokenizer_2", test_source_dir());
    check_both(d1, d2, "sdxl-turbo configs");
}

static void golden_ids_without_any_tokenizer_files(void **state)
{
    (void)state;
    check_both(NULL, "/nonexistent/sdxld/tokenizer_2", "built-in defaults");
}

static void golden_ids_from_tiny_model_dirs(void **state)
{
    (void)state;
    const char *models[] = {"tiny-a", "tiny-b"};
    for (size_t m = 0; m < 2; m++) {
        char model[4096], d1[4200], d2[4200];
        test_model_dir(models[m], model, sizeof model);
        snprintf(d1, sizeof d1, "%s/tokenizer", model);
        snprintf(d2, sizeof d2, "%s/tokenizer_2", model);
        check_both(d1, d2, models[m]);
    }
}

/* ---- temporary tokenizer folders ---- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_tree(const char *dir)
{
    assert_int_equal(nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS), 0);
}

static void write_file(const char *dir, const char *name, const char *text, size_t len)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void write_text(const char *dir, const char *name, const char *text)
{
    write_file(dir, name, text, strlen(text));
}

static void copy_vocab_file(const char *dir, const char *name)
{
    char shipped[4096], path[4200];
    vocab_dir(shipped, sizeof shipped);
    snprintf(path, sizeof path, "%s/%s", shipped, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    assert_true(size > 0);
    rewind(f);
    char *buf = malloc((size_t)size);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    write_file(dir, name, buf, (size_t)size);
    free(buf);
}

static void make_dir(char *out, size_t n)
{
    assert_int_equal(test_make_temp_dir(out, n), SDXL_OK);
}

/* Expects tokenizer_load(dir) to fail with code and a message containing `needle`. */
static void expect_load_error(const char *dir, const char *shipped, sdxl_status code,
                              const char *needle)
{
    sdxl_error err;
    tokenizer *tok = (tokenizer *)&err; /* must be reset to NULL */
    sdxl_status st = tokenizer_load(dir, TOKENIZER_KIND_CLIP_L, shipped, &tok, &err);
    printf("expected error: %s: %s\n", sdxl_status_name(st), err.message);
    assert_int_equal(st, code);
    assert_null(tok);
    assert_non_null(strstr(err.message, needle));
}

/* A folder laid out the pre-2023 way: no added_tokens_decoder, so special_tokens_map.json and
 * added_tokens.json count. Expected ids from transformers on the same files. */
static void legacy_special_tokens_map_and_added_tokens(void **state)
{
    (void)state;
    char dir[4096];
    make_dir(dir, sizeof dir);
    copy_vocab_file(dir, "vocab.json");
    copy_vocab_file(dir, "merges.txt");
    write_text(dir, "tokenizer_config.json",
               "{\"model_max_length\": 16, \"tokenizer_class\": \"CLIPTokenizer\"}");
    write_text(dir, "special_tokens_map.json",
               "{\"pad_token\": \"!\", \"additional_special_tokens\": [{\"content\": "
               "\"<cat-toy>\", \"lstrip\": false, \"rstrip\": false, \"single_word\": false, "
               "\"normalized\": false}]}");
    write_text(dir, "added_tokens.json", "{\"<dog>\": 49408}");
    sdxl_error err;
    tokenizer *tok = NULL;
    GOLDEN_ASSERT_OK(tokenizer_load(dir, TOKENIZER_KIND_CLIP_L, NULL, &tok, &err), err);
    assert_int_equal(tokenizer_max_length(tok), 16);
    assert_int_equal(tokenizer_pad_id(tok), 0);
    int32_t ids[16];
    const char *text = "a!b <cat-toy>x<dog> !";
    encode_or_fail(tok, text, strlen(text), ids, 16, NULL);
    const int32_t want[16] = {49406, 320, 0, 321, 49409, 343, 49408, 0, 49407, 0, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(ids, want, sizeof want);
    tokenizer_free(tok);
    remove_tree(dir);
}

static void config_in_folder_overrides_defaults(void **state)
{
    (void)state;
    char dir[4096];
    make_dir(dir, sizeof dir);
    /* tokenizer_2's settings in a folder loaded as kind CLIP_L: the folder wins. */
    write_text(dir, "tokenizer_config.json",
               "{\"added_tokens_decoder\": {\"0\": {\"content\": \"!\"}}, \"pad_token\": \"!\","
               " \"model_max_length\": 12}");
    tokenizer *tok = load_or_fail(dir, TOKENIZER_KIND_CLIP_L);
    assert_int_equal(tokenizer_max_length(tok), 12);
    int32_t ids[12];
    tokenizer_encoding enc;
    encode_or_fail(tok, "a photo of a cat!", 17, ids, 12, &enc);
    const int32_t want[12] = {49406, 320, 1125, 539, 320, 2368, 0, 49407, 0, 0, 0, 0};
    assert_memory_equal(ids, want, sizeof want);
    assert_int_equal(enc.n_tokens, 8);
    tokenizer_free(tok);
    remove_tree(dir);
}

static void damaged_files_give_clear_errors(void **state)
{
    (void)state;
    char shipped[4096], dir[4096];
    vocab_dir(shipped, sizeof shipped);

    make_dir(dir, sizeof dir);
    copy_vocab_file(dir, "vocab.json");
    expect_load_error(dir, shipped, SDXL_ERR_NOT_FOUND, "no merges.txt");
    write_text(dir, "merges.txt", "#version: 0.2\ni n\nt h e\n");
    expect_load_error(dir, shipped, SDXL_ERR_FORMAT, "line 3: expected two symbols");
    write_text(dir, "merges.txt", "#version: 0.2\ni n\n\nt h\n");
    expect_load_error(dir, shipped, SDXL_ERR_FORMAT, "line 3");
    write_text(dir, "merges.txt", "i n\nt h\n");
    expect_load_error(dir, shipped, SDXL_ERR_FORMAT, "#version");
    write_file(dir, "merges.txt", "#version: 0.2\n\xc3\x28 n\n", 18);
    expect_load_error(dir, shipped, SDXL_ERR_FORMAT, "not valid UTF-8 (byte 14)");
    write_text(dir, "merges.txt", "#version: 0.2\ni n\n");
    write_text(dir, "vocab.json", "{\"a\": 1, \"b\": 2.5}");
    expect_load_error(dir, shipped, SDXL_ERR_FORMAT, "token \"b\": its id must be an integer");
    write_text(dir, "vocab.json", "[1, 2]");
    expect_load_error(dir, shipped, SDXL_ERR_FORMAT, "object");
    write_text(dir, "vocab.json", "{\"a\": ");
    expect_load_error(dir, shipped, SDXL_ERR_FORMAT, "vocab.json");
    remove_tree(dir);

    make_dir(dir, sizeof dir);
    write_text(dir, "tokenizer_config.json",
               "{\"added_tokens_decoder\": {\"49407\": {\"content\": \"<|endoftext|>\", "
               "\"lstrip\": true}}, \"model_max_length\": 77}");
    expect_load_error(dir, shipped, SDXL_ERR_UNSUPPORTED, "lstrip");
    write_text(dir, "tokenizer_config.json", "{\"pad_token\": \"!\"}");
    expect_load_error(dir, shipped, SDXL_ERR_FORMAT, "model_max_length");
    write_text(dir, "tokenizer_config.json", "{\"pad_token\": null, \"model_max_length\": 77}");
    expect_load_error(dir, shipped, SDXL_ERR_FORMAT, "pad_token");
    remove_tree(dir);

    expect_load_error(NULL, NULL, SDXL_ERR_NOT_FOUND, "no shipped vocabulary");
    expect_load_error(NULL, "/nonexistent/sdxld-vocab", SDXL_ERR_NOT_FOUND, "sdxld-vocab");
}

/* Prompts are refused unless they are UTF-8, with the offset of the first bad byte. */
static void invalid_utf8_is_refused_with_its_offset(void **state)
{
    (void)state;
    tokenizer *tok = load_or_fail(NULL, TOKENIZER_KIND_CLIP_L);
    static const struct {
        const char *bytes;
        size_t len;
        const char *where;
    } cases[] = {
        {"abc\xff", 4, "0xFF at offset 3"},   {"a\xc0\xaf", 3, "offset 1"}, /* overlong "/" */
        {"ab\xed\xa0\x80", 5, "offset 2"},                                  /* a UTF-16 surrogate */
        {"\xe2\x82", 2, "offset 0"},          /* truncated euro sign */
        {"x\xf4\x90\x80\x80", 5, "offset 1"}, /* above U+10FFFF */
        {"ok \x80", 4, "0x80 at offset 3"},   /* stray continuation byte */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int32_t ids[MAX_IDS];
        sdxl_error err;
        assert_int_equal(
            tokenizer_encode(tok, cases[i].bytes, cases[i].len, ids, MAX_IDS, NULL, &err),
            SDXL_ERR_INVALID_ARGUMENT);
        printf("refused: %s\n", err.message);
        assert_non_null(strstr(err.message, cases[i].where));
    }
    /* The largest code point and NUL are valid: NUL is dropped like other controls, and
     * U+10FFFF (a noncharacter, category Cn) too: both give the ids of "ab". */
    int32_t ids[MAX_IDS], want[MAX_IDS];
    encode_or_fail(tok, "ab", 2, want, MAX_IDS, NULL);
    assert_int_equal(want[1], 3937);
    encode_or_fail(tok, "a\0b", 3, ids, MAX_IDS, NULL);
    assert_memory_equal(ids, want, sizeof want);
    encode_or_fail(tok,
                   "a\xf4\x8f\xbf\xbf"
                   "b",
                   6, ids, MAX_IDS, NULL);
    assert_memory_equal(ids, want, sizeof want);
    sdxl_error err;
    assert_int_equal(tokenizer_encode(tok, "a", 1, ids, 1, NULL, &err), SDXL_ERR_INVALID_ARGUMENT);
    tokenizer_free(tok);
}

/* A prompt of one 100000-letter word: merged in O(n log n) and truncated. The reference gives
 * "xxxx" (32035) for every token of such runs (checked on 3000 and 3001 letters). */
static void very_long_word_is_truncated(void **state)
{
    (void)state;
    tokenizer *tok = load_or_fail(NULL, TOKENIZER_KIND_OPENCLIP);
    size_t n = 100000;
    char *text = malloc(n);
    assert_non_null(text);
    memset(text, 'x', n);
    int32_t ids[MAX_IDS];
    tokenizer_encoding enc;
    encode_or_fail(tok, text, n, ids, MAX_IDS, &enc);
    assert_true(enc.truncated);
    assert_int_equal(enc.n_tokens, MAX_IDS);
    assert_int_equal(ids[0], 49406);
    for (size_t i = 1; i < MAX_IDS - 1; i++)
        assert_int_equal(ids[i], 32035);
    assert_int_equal(ids[MAX_IDS - 1], 49407);
    free(text);
    tokenizer_free(tok);
}

/* ---- Unicode primitives (expected values from Python 3.11's unicodedata and str) ---- */

static void check_nfc(const uint32_t *in, size_t n, const uint32_t *want, size_t n_want)
{
    uint32_t out[64], work[64];
    assert_true(n * UNICODE_MAX_DECOMPOSITION <= 64);
    size_t m = unicode_nfc(in, n, out, work);
    assert_int_equal(m, n_want);
    assert_memory_equal(out, want, n_want * sizeof *want);
}

static void nfc_matches_unicodedata(void **state)
{
    (void)state;
    /* e + acute -> é; Å (U+212B, a singleton) -> U+00C5; Hangul L V T -> U+AC01. */
    check_nfc((const uint32_t[]){'e', 0x301}, 2, (const uint32_t[]){0xE9}, 1);
    check_nfc((const uint32_t[]){0x212B}, 1, (const uint32_t[]){0xC5}, 1);
    check_nfc((const uint32_t[]){0x1100, 0x1161, 0x11A8}, 3, (const uint32_t[]){0xAC01}, 1);
    /* q + dot above (230) + dot below (220): reordered, nothing composes with q. */
    check_nfc((const uint32_t[]){'q', 0x307, 0x323}, 3, (const uint32_t[]){'q', 0x323, 0x307}, 3);
    /* o + horn + dot below -> U+1EE3; a leading mark stays. */
    check_nfc((const uint32_t[]){0x301, 'o', 0x323, 0x31B}, 4, (const uint32_t[]){0x301, 0x1EE3},
              2);
    /* U+0344 (excluded from composition) -> U+0308 U+0301. */
    check_nfc((const uint32_t[]){0x344}, 1, (const uint32_t[]){0x308, 0x301}, 2);
    /* A run of 20 marks takes the long-run sort: 10 acutes (230) then 10 graves below (220)
     * after 'a'. The 220s sort first and compose with nothing; the first acute, not blocked by
     * lower classes, still composes: U+00E1, 10 x U+0316, 9 x U+0301. */
    uint32_t in[21] = {'a'}, want[20] = {0xE1};
    for (size_t i = 1; i <= 10; i++)
        in[i] = 0x301, in[i + 10] = 0x316, want[i] = 0x316;
    for (size_t i = 11; i < 20; i++)
        want[i] = 0x301;
    uint32_t out[84], work[84];
    assert_int_equal(unicode_nfc(in, 21, out, work), 20);
    assert_memory_equal(out, want, sizeof want);
}

static void lower_matches_python(void **state)
{
    (void)state;
    uint32_t out[16];
    /* "İΣ" -> "i̇ς": U+0130 lowers to two code points; the Σ ends a word after a cased letter. */
    size_t n = unicode_lower((const uint32_t[]){0x130, 0x3A3}, 2, out);
    assert_int_equal(n, 3);
    assert_memory_equal(out, ((const uint32_t[]){'i', 0x307, 0x3C2}), 3 * sizeof(uint32_t));
    /* "ΣΑ" -> "σα" (not final); "Α'Σ'" -> "α'ς'" (apostrophes are case-ignorable). */
    n = unicode_lower((const uint32_t[]){0x3A3, 0x391}, 2, out);
    assert_memory_equal(out, ((const uint32_t[]){0x3C3, 0x3B1}), 2 * sizeof(uint32_t));
    n = unicode_lower((const uint32_t[]){0x391, '\'', 0x3A3, '\''}, 4, out);
    assert_memory_equal(out, ((const uint32_t[]){0x3B1, '\'', 0x3C2, '\''}), 4 * sizeof(uint32_t));
    /* ẞ (U+1E9E) -> ß; Kelvin sign -> k; ſ stays (it is lower case already). */
    n = unicode_lower((const uint32_t[]){0x1E9E, 0x212A, 0x17F}, 3, out);
    assert_memory_equal(out, ((const uint32_t[]){0xDF, 'k', 0x17F}), 3 * sizeof(uint32_t));
    assert_true(unicode_literal_matches('s', 0x17F));
    assert_false(unicode_literal_matches('k', 0x17F));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(golden_ids_from_sdxl_turbo_configs),
        cmocka_unit_test(golden_ids_without_any_tokenizer_files),
        cmocka_unit_test(golden_ids_from_tiny_model_dirs),
        cmocka_unit_test(legacy_special_tokens_map_and_added_tokens),
        cmocka_unit_test(config_in_folder_overrides_defaults),
        cmocka_unit_test(damaged_files_give_clear_errors),
        cmocka_unit_test(invalid_utf8_is_refused_with_its_offset),
        cmocka_unit_test(very_long_word_is_truncated),
        cmocka_unit_test(nfc_matches_unicodedata),
        cmocka_unit_test(lower_matches_python),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
