/*
 * tokenizer_load.c — building a CLIP tokenizer from a model's tokenizer folder (tokenizer.h
 * says which files are read and what is refused).
 *
 * Loading follows transformers' from_pretrained for a slow tokenizer: tokenizer_config.json
 * gives the special tokens and model_max_length; its added_tokens_decoder, when present, is the
 * whole set of added tokens and special_tokens_map.json / added_tokens.json are then ignored;
 * finally every special token that is not yet an added token becomes one (with its vocab.json
 * id).
 */
#include "engine/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/json.h"
#include "base/log.h"
#include "engine/tokenizer_internal.h"
#include "engine/unicode.h"

#define PATH_MAX_LEN 4096

/* The tokenizer configs of sdxl-turbo (models/configs/sdxl-turbo/tokenizer*), used for a
 * directory that has none. Only the keys the tokenizer reads. */
static const char default_config_clip_l[] =
    "{\"added_tokens_decoder\": {\"49406\": {\"content\": \"<|startoftext|>\"},"
    " \"49407\": {\"content\": \"<|endoftext|>\"}},"
    " \"bos_token\": \"<|startoftext|>\", \"eos_token\": \"<|endoftext|>\","
    " \"model_max_length\": 77, \"pad_token\": \"<|endoftext|>\", \"unk_token\": "
    "\"<|endoftext|>\"}";
static const char default_config_openclip[] =
    "{\"added_tokens_decoder\": {\"0\": {\"content\": \"!\"},"
    " \"49406\": {\"content\": \"<|startoftext|>\"}, \"49407\": {\"content\": \"<|endoftext|>\"}},"
    " \"bos_token\": \"<|startoftext|>\", \"eos_token\": \"<|endoftext|>\","
    " \"model_max_length\": 77, \"pad_token\": \"!\", \"unk_token\": \"<|endoftext|>\"}";

/* transformers' SPECIAL_TOKENS_ATTRIBUTES order, which is also the order in which special
 * tokens missing from the added tokens get new ids. */
enum {
    SPECIAL_BOS,
    SPECIAL_EOS,
    SPECIAL_UNK,
    SPECIAL_SEP,
    SPECIAL_PAD,
    SPECIAL_CLS,
    SPECIAL_MASK,
    SPECIAL_COUNT
};
static const char *const special_keys[SPECIAL_COUNT] = {
    "bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token",
};

/* What the config files say, gathered before the tokenizer is built. */
typedef struct config {
    char *special[SPECIAL_COUNT]; /* NULL: not set */
    char **additional;            /* additional_special_tokens */
    size_t n_additional;
    long long max_length;
} config;

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static sdxl_status join_path(char *out, const char *dir, const char *name, sdxl_error *err)
{
    int n = snprintf(out, PATH_MAX_LEN, "%s/%s", dir, name);
    if (n < 0 || n >= PATH_MAX_LEN)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "tokenizer: path too long: %s/%s", dir,
                         name);
    return SDXL_OK;
}

static char *copy_string(const char *s)
{
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    if (c)
        memcpy(c, s, n);
    return c;
}

static void config_free(config *c)
{
    for (int i = 0; i < SPECIAL_COUNT; i++)
        free(c->special[i]);
    for (size_t i = 0; i < c->n_additional; i++)
        free(c->additional[i]);
    free(c->additional);
}

/* A token as configs write it: a string, an AddedToken object {"content": ..., "lstrip": ...},
 * or null (*out = NULL). */
static sdxl_status parse_token(const char *file, const char *what, const cJSON *v, char **out,
                               sdxl_error *err)
{
    *out = NULL;
    if (cJSON_IsNull(v))
        return SDXL_OK;
    const char *content = NULL;
    if (cJSON_IsString(v)) {
        content = v->valuestring;
    } else if (cJSON_IsObject(v)) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(v, "content");
        if (!cJSON_IsString(c))
            return error_set(err, SDXL_ERR_FORMAT,
                             "%s: %s: an added token without a \"content\" string", file, what);
        content = c->valuestring;
        static const char *const flags[] = {"lstrip", "rstrip", "single_word"};
        for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
            if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, flags[i])))
                return error_set(err, SDXL_ERR_UNSUPPORTED,
                                 "%s: %s (\"%.64s\") has %s set, which sdxld's tokenizer does not "
                                 "support (no CLIP tokenizer uses it)",
                                 file, what, content, flags[i]);
        }
    } else {
        return error_set(err, SDXL_ERR_FORMAT, "%s: %s: expected a string or an object", file,
                         what);
    }
    size_t bad;
    if (!utf8_validate((const unsigned char *)content, strlen(content), &bad))
        return error_set(err, SDXL_ERR_FORMAT, "%s: %s is not valid UTF-8", file, what);
    *out = copy_string(content);
    return *out ? SDXL_OK : error_set(err, SDXL_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
}

static sdxl_status add_additional(config *c, const char *file, const cJSON *list, sdxl_error *err)
{
    if (!list || cJSON_IsNull(list))
        return SDXL_OK;
    if (!cJSON_IsArray(list))
        return error_set(err, SDXL_ERR_FORMAT, "%s: additional_special_tokens: expected a list",
                         file);
    const cJSON *item;
    cJSON_ArrayForEach(item, list)
    {
        char *tok;
        sdxl_status st = parse_token(file, "additional_special_tokens", item, &tok, err);
        if (st)
            return st;
        bool seen = !tok;
        for (size_t i = 0; !seen && i < c->n_additional; i++)
            seen = strcmp(c->additional[i], tok) == 0;
        if (seen) {
            free(tok);
            continue;
        }
        char **grown = realloc(c->additional, (c->n_additional + 1) * sizeof *grown);
        if (!grown) {
            free(tok);
            return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
        }
        c->additional = grown;
        c->additional[c->n_additional++] = tok;
    }
    return SDXL_OK;
}

/* Reads the special token keys present in obj over c's values. */
static sdxl_status read_special_tokens(config *c, const char *file, const cJSON *obj,
                                       sdxl_error *err)
{
    for (int i = 0; i < SPECIAL_COUNT; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, special_keys[i]);
        if (!v)
            continue;
        char *tok;
        sdxl_status st = parse_token(file, special_keys[i], v, &tok, err);
        if (st)
            return st;
        free(c->special[i]);
        c->special[i] = tok;
    }
    return add_additional(c, file,
                          cJSON_GetObjectItemCaseSensitive(obj, "additional_special_tokens"), err);
}

static added_token *find_added(tokenizer *tok, const char *content)
{
    size_t len = strlen(content);
    for (size_t i = 0; i < tok->n_added; i++) {
        if (tok->added[i].len == len && memcmp(tok->added[i].content, content, len) == 0)
            return &tok->added[i];
    }
    return NULL;
}

/* Records content -> id; a later entry for the same content replaces the id, as the
 * reference's dict does. Empty contents are never matched (the Trie skips them). */
static sdxl_status add_token(tokenizer *tok, const char *content, int32_t id, sdxl_error *err)
{
    added_token *known = find_added(tok, content);
    if (known) {
        known->id = id;
        return SDXL_OK;
    }
    size_t len = strlen(content);
    added_token *grown = realloc(tok->added, (tok->n_added + 1) * sizeof *grown);
    if (!grown)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    tok->added = grown;
    char *copy = copy_string(content);
    if (!copy)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    tok->added[tok->n_added++] = (added_token){.content = copy, .len = len, .id = id};
    return SDXL_OK;
}

static sdxl_status parse_id(const char *file, const char *what, const char *text, int32_t *out,
                            sdxl_error *err)
{
    char *end;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end || v < 0 || v > INT32_MAX)
        return error_set(err, SDXL_ERR_FORMAT, "%s: %s: \"%.32s\" is not a token id", file, what,
                         text);
    *out = (int32_t)v;
    return SDXL_OK;
}

/* added_tokens_decoder: {"49406": {"content": "<|startoftext|>", ...}, ...} */
static sdxl_status read_added_decoder(tokenizer *tok, const char *file, const cJSON *decoder,
                                      sdxl_error *err)
{
    if (!cJSON_IsObject(decoder))
        return error_set(err, SDXL_ERR_FORMAT, "%s: added_tokens_decoder: expected an object",
                         file);
    const cJSON *item;
    cJSON_ArrayForEach(item, decoder)
    {
        int32_t id = 0;
        char *content = NULL;
        sdxl_status st = parse_id(file, "added_tokens_decoder", item->string, &id, err);
        if (!st && !cJSON_IsObject(item))
            st = error_set(err, SDXL_ERR_FORMAT, "%s: added_tokens_decoder[%s]: expected an object",
                           file, item->string);
        if (!st)
            st = parse_token(file, "added_tokens_decoder entry", item, &content, err);
        if (st)
            return st;
        st = add_token(tok, content, id, err);
        free(content);
        if (st)
            return st;
    }
    return SDXL_OK;
}

/* The legacy files read only when tokenizer_config.json has no added_tokens_decoder. */
static sdxl_status read_legacy_files(tokenizer *tok, config *c, const char *dir, sdxl_error *err)
{
    char path[PATH_MAX_LEN];
    json_doc doc;
    sdxl_status st = join_path(path, dir, "special_tokens_map.json", err);
    if (st)
        return st;
    if (is_file(path)) {
        if ((st = json_doc_load(&doc, path, 0, err)))
            return st;
        st = cJSON_IsObject(json_doc_root(&doc))
                 ? read_special_tokens(c, path, json_doc_root(&doc), err)
                 : error_set(err, SDXL_ERR_FORMAT, "%s: expected a JSON object", path);
        json_doc_free(&doc);
        if (st)
            return st;
    }
    if ((st = join_path(path, dir, "added_tokens.json", err)))
        return st;
    if (!is_file(path))
        return SDXL_OK;
    if ((st = json_doc_load(&doc, path, 0, err)))
        return st;
    const cJSON *root = json_doc_root(&doc), *item;
    if (!cJSON_IsObject(root)) {
        json_doc_free(&doc);
        return error_set(err, SDXL_ERR_FORMAT, "%s: expected an object of token -> id", path);
    }
    cJSON_ArrayForEach(item, root)
    {
        double v = cJSON_IsNumber(item) ? item->valuedouble : -1.0;
        if (!(v >= 0 && v <= INT32_MAX && v == (double)(int32_t)v)) {
            st = error_set(err, SDXL_ERR_FORMAT, "%s: \"%.64s\": expected a token id", path,
                           item->string);
            break;
        }
        if ((st = add_token(tok, item->string, (int32_t)v, err)))
            break;
    }
    json_doc_free(&doc);
    return st;
}

static sdxl_status read_config(tokenizer *tok, config *c, const char *dir, tokenizer_kind kind,
                               sdxl_error *err)
{
    static const char *const defaults[SPECIAL_COUNT] = {
        [SPECIAL_BOS] = STARTOFTEXT,
        [SPECIAL_EOS] = ENDOFTEXT,
        [SPECIAL_UNK] = ENDOFTEXT,
        [SPECIAL_PAD] = ENDOFTEXT,
    };
    for (int i = 0; i < SPECIAL_COUNT; i++) {
        if (defaults[i] && !(c->special[i] = copy_string(defaults[i])))
            return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    }
    char path[PATH_MAX_LEN];
    json_doc doc;
    sdxl_status st;
    if (dir && (st = join_path(path, dir, "tokenizer_config.json", err)))
        return st;
    if (dir && is_file(path)) {
        st = json_doc_load(&doc, path, 0, err);
    } else {
        const char *text =
            kind == TOKENIZER_KIND_OPENCLIP ? default_config_openclip : default_config_clip_l;
        snprintf(path, sizeof path, "sdxl-turbo's %s config",
                 kind == TOKENIZER_KIND_OPENCLIP ? "tokenizer_2" : "tokenizer");
        st = json_doc_parse(&doc, text, strlen(text), path, err);
        dir = NULL; /* no legacy files either */
    }
    if (st)
        return st;
    const cJSON *root = json_doc_root(&doc);
    if (!cJSON_IsObject(root))
        st = error_set(err, SDXL_ERR_FORMAT, "%s: expected a JSON object", path);
    if (!st)
        st = read_special_tokens(c, path, root, err);
    if (!st) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "model_max_length");
        double v = cJSON_IsNumber(m) ? m->valuedouble : 0;
        if (!(v >= 2 && v <= TOKENIZER_MAX_LENGTH_LIMIT && v == (double)(long long)v))
            st = error_set(err, SDXL_ERR_FORMAT,
                           "%s: model_max_length must be an integer from 2 to %d (CLIP: 77); "
                           "diffusers pads every prompt to it",
                           path, TOKENIZER_MAX_LENGTH_LIMIT);
        c->max_length = (long long)v;
    }
    const cJSON *decoder = cJSON_GetObjectItemCaseSensitive(root, "added_tokens_decoder");
    if (!st && decoder)
        st = read_added_decoder(tok, path, decoder, err);
    else if (!st && dir)
        st = read_legacy_files(tok, c, dir, err);
    json_doc_free(&doc);
    return st;
}

/* PreTrainedTokenizer.__init__: special tokens that are not added tokens yet become ones, with
 * their vocab.json id, or new ids after the vocabulary for tokens it does not have. */
static sdxl_status add_special_tokens(tokenizer *tok, const config *c, sdxl_error *err)
{
    size_t n_distinct = bpe_vocab_size(tok->bpe);
    for (size_t i = 0; i < tok->n_added; i++) {
        if (bpe_token_id(tok->bpe, tok->added[i].content, tok->added[i].len) < 0)
            n_distinct++;
    }
    size_t n_new = 0;
    for (size_t i = 0; i < SPECIAL_COUNT + c->n_additional; i++) {
        const char *s = i < SPECIAL_COUNT ? c->special[i] : c->additional[i - SPECIAL_COUNT];
        if (!s || !*s || find_added(tok, s))
            continue;
        int32_t id = bpe_token_id(tok->bpe, s, strlen(s));
        if (id < 0) {
            if (n_distinct + n_new >= INT32_MAX)
                return error_set(err, SDXL_ERR_LIMIT, "tokenizer: too many tokens");
            id = (int32_t)(n_distinct + n_new++);
        }
        sdxl_status st = add_token(tok, s, id, err);
        if (st)
            return st;
    }
    for (size_t i = 0; i < tok->n_added; i++) {
        sdxl_status st = bpe_set_token_id(tok->bpe, tok->added[i].content, tok->added[i].len,
                                          tok->added[i].id, err);
        if (st)
            return st;
        if (tok->added[i].len > 0)
            tok->added_first_byte[(unsigned char)tok->added[i].content[0]] = true;
    }
    return SDXL_OK;
}

static sdxl_status resolve_ids(tokenizer *tok, const config *c, const char *dir, sdxl_error *err)
{
    static const int required[] = {SPECIAL_BOS, SPECIAL_EOS, SPECIAL_UNK, SPECIAL_PAD};
    int32_t *ids[] = {&tok->bos_id, &tok->eos_id, &tok->unk_id, &tok->pad_id};
    for (size_t i = 0; i < 4; i++) {
        const char *s = c->special[required[i]];
        const added_token *a = s && *s ? find_added(tok, s) : NULL;
        if (!a)
            return error_set(err, SDXL_ERR_FORMAT,
                             "%s: tokenizer config sets no %s; CLIP tokenizers need bos, eos, unk "
                             "and pad tokens",
                             dir ? dir : "shipped vocabulary", special_keys[required[i]]);
        *ids[i] = a->id;
    }
    int32_t id = bpe_token_id(tok->bpe, STARTOFTEXT, strlen(STARTOFTEXT));
    tok->startoftext_id = id >= 0 ? id : tok->unk_id;
    id = bpe_token_id(tok->bpe, ENDOFTEXT, strlen(ENDOFTEXT));
    tok->endoftext_id = id >= 0 ? id : tok->unk_id;
    tok->max_length = (size_t)c->max_length;
    return SDXL_OK;
}

static sdxl_status load_vocabulary(tokenizer *tok, const char *dir, const char *shipped_vocab_dir,
                                   sdxl_error *err)
{
    char vocab[PATH_MAX_LEN], merges[PATH_MAX_LEN];
    sdxl_status st;
    bool has_vocab = false, has_merges = false;
    if (dir) {
        if ((st = join_path(vocab, dir, "vocab.json", err)) ||
            (st = join_path(merges, dir, "merges.txt", err)))
            return st;
        has_vocab = is_file(vocab);
        has_merges = is_file(merges);
        if (has_vocab != has_merges)
            return error_set(err, SDXL_ERR_NOT_FOUND,
                             "%s has %s but no %s: the tokenizer folder is incomplete; copy both "
                             "files from the model's source (or remove both to use sdxld's copy)",
                             dir, has_vocab ? "vocab.json" : "merges.txt",
                             has_vocab ? "merges.txt" : "vocab.json");
    }
    if (!has_vocab) {
        if (!shipped_vocab_dir)
            return error_set(err, SDXL_ERR_NOT_FOUND,
                             "%s has no vocab.json/merges.txt and no shipped vocabulary folder "
                             "was given",
                             dir ? dir : "tokenizer");
        if ((st = join_path(vocab, shipped_vocab_dir, "vocab.json", err)) ||
            (st = join_path(merges, shipped_vocab_dir, "merges.txt", err)))
            return st;
        LOG_INFO("tokenizer: %s has no vocabulary; using %s", dir ? dir : "the model",
                 shipped_vocab_dir);
    }
    return bpe_load(vocab, merges, &tok->bpe, err);
}

sdxl_status tokenizer_load(const char *dir, tokenizer_kind kind, const char *shipped_vocab_dir,
                           tokenizer **out, sdxl_error *err)
{
    *out = NULL;
    struct stat st_dir;
    if (dir && (stat(dir, &st_dir) != 0 || !S_ISDIR(st_dir.st_mode)))
        dir = NULL; /* a checkpoint without this folder: everything from the defaults */
    tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    config c = {0};
    sdxl_status st = load_vocabulary(tok, dir, shipped_vocab_dir, err);
    if (!st)
        st = read_config(tok, &c, dir, kind, err);
    if (!st)
        st = add_special_tokens(tok, &c, err);
    if (!st)
        st = resolve_ids(tok, &c, dir, err);
    config_free(&c);
    if (st) {
        tokenizer_free(tok);
        return st;
    }
    *out = tok;
    return SDXL_OK;
}

void tokenizer_free(tokenizer *tok)
{
    if (!tok)
        return;
    bpe_free(tok->bpe);
    for (size_t i = 0; i < tok->n_added; i++)
        free(tok->added[i].content);
    free(tok->added);
    free(tok);
}
