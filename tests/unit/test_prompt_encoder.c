// needs: model_tiny-a model_tiny-b
/*
 * test_prompt_encoder.c — SDXL prompt encoding (prompt_encoder.h) against diffusers 0.31's
 * encode_prompt, from the prompt text (both tokenizers and both encoders) to prompt_embeds and
 * pooled_prompt_embeds, within relative L2 1e-4 on every prompt of
 * tests/golden/data/text_<model>.safetensors; with guidance, the zeroed negative (no negative
 * prompt, force_zeros_for_empty_prompt) and an encoded one. Then the behaviour around it: an
 * empty negative prompt is encoded, not zeroed; batch rows are bit-identical repeats; the
 * prompt cache gives bit-identical embeddings on a hit and evicts the least recently used
 * text; planning measures exactly the memory a call takes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/prompt_encoder.h"
#include "support/backend_test.h"
#include "support/golden.h"
#include "support/golden_tensor.h"
#include "support/paths.h"
#include "support/remove_tree.h"

#define ARENA_BYTES (16u << 20)

static prompt_encoder *load_dir_or_fail(backend *be, const char *dir, size_t cache_entries)
{
    char vocab[4096];
    snprintf(vocab, sizeof vocab, "%s/models/vocab", test_source_dir());
    prompt_encoder *pe = NULL;
    sdxl_error err;
    GOLDEN_ASSERT_OK(prompt_encoder_load(dir, be,
                                         &(prompt_encoder_params){.shipped_vocab_dir = vocab,
                                                                  .cache_entries = cache_entries},
                                         &pe, &err),
                     err);
    return pe;
}

static prompt_encoder *load_or_fail(backend *be, const char *model, size_t cache_entries)
{
    char dir[4096];
    test_model_dir(model, dir, sizeof dir);
    return load_dir_or_fail(be, dir, cache_entries);
}

static prompt_embeddings encode_or_fail(prompt_encoder *pe, arena *a, const char *prompt,
                                        const char *negative, bool cfg, int64_t batch)
{
    prompt_embeddings pr;
    sdxl_error err;
    GOLDEN_ASSERT_OK(prompt_encoder_encode(pe, NULL, a, prompt, negative, cfg, batch, &pr, &err),
                     err);
    int64_t rows = cfg ? 2 * batch : batch;
    assert_int_equal(pr.embeds.ndim, 3);
    assert_int_equal(pr.embeds.shape[0], rows);
    assert_int_equal(pr.embeds.shape[1], prompt_encoder_tokens(pe));
    assert_int_equal(pr.embeds.shape[2], prompt_encoder_embed_dim(pe));
    assert_int_equal(pr.pooled.ndim, 2);
    assert_int_equal(pr.pooled.shape[0], rows);
    assert_int_equal(pr.pooled.shape[1], prompt_encoder_pooled_dim(pe));
    return pr;
}

/* Rows first .. first+count-1 of t compared with golden NAME within rel L2 1e-4 (max_abs for
 * the all-zeros goldens, whose relative error is undefined). */
static void expect_rows(backend *be, const golden *g, const char *name, const tensor *t,
                        int64_t first, double max_abs, const char *label)
{
    golden_expect_rows(be, g, name, t, first, max_abs, max_abs == 0 ? INFINITY : 1e-4, label);
}

static void golden_prompts(void **state)
{
    const char *model = *state;
    backend *be = bt_backend("cpu", 2);
    prompt_encoder *pe = load_or_fail(be, model, 0);
    char name[64], label[128];
    golden g;
    sdxl_error err;
    GOLDEN_ASSERT_OK(golden_open_model(&g, "text", model, &err), err);
    arena a;
    bt_arena(&a, ARENA_BYTES);
    int prompts = 0;
    for (int i = 0;; i++, prompts++) {
        snprintf(name, sizeof name, "prompt.%d", i);
        const char *prompt = golden_meta(&g, name);
        if (!prompt)
            break;
        arena_reset_to(&a, 0);
        prompt_embeddings pr = encode_or_fail(pe, &a, prompt, NULL, false, 1);
        snprintf(name, sizeof name, "p%d.prompt_embeds", i);
        snprintf(label, sizeof label, "%s %s", model, name);
        expect_rows(be, &g, name, &pr.embeds, 0, INFINITY, label);
        snprintf(name, sizeof name, "p%d.pooled_embeds", i);
        snprintf(label, sizeof label, "%s %s", model, name);
        expect_rows(be, &g, name, &pr.pooled, 0, INFINITY, label);
    }
    assert_int_equal(prompts, 6);

    /* guidance: rows [negative, positive] */
    const char *cases[] = {"cfg_zero", "cfg_neg"};
    for (int c = 0; c < 2; c++) {
        char key[64];
        snprintf(key, sizeof key, "%s.prompt", cases[c]);
        const char *prompt = golden_meta(&g, key);
        snprintf(key, sizeof key, "%s.negative_prompt", cases[c]);
        const char *negative = golden_meta(&g, key);
        assert_non_null(prompt);
        assert_true((negative == NULL) == (c == 0));
        arena_reset_to(&a, 0);
        prompt_embeddings pr = encode_or_fail(pe, &a, prompt, negative, true, 1);
        const struct {
            const char *field;
            const tensor *t;
            int64_t row;
        } checks[] = {{"negative_prompt_embeds", &pr.embeds, 0},
                      {"prompt_embeds", &pr.embeds, 1},
                      {"negative_pooled_embeds", &pr.pooled, 0},
                      {"pooled_embeds", &pr.pooled, 1}};
        for (int k = 0; k < 4; k++) {
            snprintf(name, sizeof name, "%s.%s", cases[c], checks[k].field);
            snprintf(label, sizeof label, "%s %s", model, name);
            bool zeros = c == 0 && checks[k].row == 0; /* exactly zero */
            expect_rows(be, &g, name, checks[k].t, checks[k].row, zeros ? 0 : INFINITY, label);
        }
    }
    arena_free(&a);
    golden_close(&g);
    prompt_encoder_free(pe);
    backend_destroy(be);
}

/* negative_prompt="" is encoded like the empty prompt (golden prompt 0), not zeroed. */
static void empty_negative_prompt_is_encoded(void **state)
{
    (void)state;
    backend *be = bt_backend("cpu", 2);
    prompt_encoder *pe = load_or_fail(be, "tiny-b", 0);
    golden g;
    sdxl_error err;
    GOLDEN_ASSERT_OK(golden_open(&g, "text_tiny-b.safetensors", &err), err);
    assert_string_equal(golden_meta(&g, "prompt.0"), "");
    arena a;
    bt_arena(&a, ARENA_BYTES);
    prompt_embeddings pr = encode_or_fail(pe, &a, "a photo of a cat", "", true, 1);
    expect_rows(be, &g, "p0.prompt_embeds", &pr.embeds, 0, INFINITY, "negative \"\" embeds");
    expect_rows(be, &g, "p0.pooled_embeds", &pr.pooled, 0, INFINITY, "negative \"\" pooled");
    arena_free(&a);
    golden_close(&g);
    prompt_encoder_free(pe);
    backend_destroy(be);
}

/* The bits of rows first .. first+count-1 are all equal to `want` (one row). */
static void expect_repeats(backend *be, const tensor *t, int64_t first, int64_t count,
                           const float *want)
{
    float *all = bt_read(be, t);
    size_t row = (size_t)(tensor_numel(t) / t->shape[0]);
    for (int64_t r = first; r < first + count; r++)
        assert_memory_equal(all + (size_t)r * row, want, row * sizeof(float));
    free(all);
}

/* A batch of 3 with guidance: rows 0-2 are the negative, 3-5 the prompt, each bit-identical to
 * the row of a batch of 1. */
static void batch_rows_repeat_single(void **state)
{
    (void)state;
    backend *be = bt_backend("cpu", 2);
    prompt_encoder *pe = load_or_fail(be, "tiny-a", 0);
    arena a;
    bt_arena(&a, ARENA_BYTES);
    prompt_embeddings one = encode_or_fail(pe, &a, "a red fox", "blurry", true, 1);
    float *e1 = bt_read(be, &one.embeds), *p1 = bt_read(be, &one.pooled);
    prompt_embeddings three = encode_or_fail(pe, &a, "a red fox", "blurry", true, 3);
    size_t erow = (size_t)(prompt_encoder_tokens(pe) * prompt_encoder_embed_dim(pe));
    size_t prow = (size_t)prompt_encoder_pooled_dim(pe);
    expect_repeats(be, &three.embeds, 0, 3, e1);
    expect_repeats(be, &three.embeds, 3, 3, e1 + erow);
    expect_repeats(be, &three.pooled, 0, 3, p1);
    expect_repeats(be, &three.pooled, 3, 3, p1 + prow);
    assert_true(memcmp(e1, e1 + erow, erow * sizeof(float)) != 0);
    /* without guidance: just the prompt's rows */
    prompt_embeddings two = encode_or_fail(pe, &a, "a red fox", "ignored", false, 2);
    expect_repeats(be, &two.embeds, 0, 2, e1 + erow);
    expect_repeats(be, &two.pooled, 0, 2, p1 + prow);
    free(e1);
    free(p1);
    arena_free(&a);
    prompt_encoder_free(pe);
    backend_destroy(be);
}

/* With a cache of 2 texts: a repeated prompt hits and gives the bits the encoders gave (and
 * that an encoder without a cache gives); a negative prompt is the same text as a prompt; the
 * least recently used text is evicted. */
static void cache_hits_are_bit_identical(void **state)
{
    (void)state;
    backend *be = bt_backend("cpu", 2);
    prompt_encoder *plain = load_or_fail(be, "tiny-a", 0);
    prompt_encoder *pe = load_or_fail(be, "tiny-a", 2);
    arena a;
    bt_arena(&a, ARENA_BYTES);
    prompt_embeddings ref = encode_or_fail(plain, &a, "a photo of a cat", NULL, false, 1);
    float *re = bt_read(be, &ref.embeds), *rp = bt_read(be, &ref.pooled);
    size_t ne = (size_t)tensor_numel(&ref.embeds), np = (size_t)tensor_numel(&ref.pooled);
    prompt_cache_stats s = prompt_encoder_cache_stats(plain);
    assert_int_equal(s.entries, 0);
    assert_int_equal(s.capacity, 0);

    for (int round = 0; round < 2; round++) { /* a miss, then a hit */
        arena_reset_to(&a, 0);
        prompt_embeddings pr = encode_or_fail(pe, &a, "a photo of a cat", NULL, false, 1);
        float *e = bt_read(be, &pr.embeds), *p = bt_read(be, &pr.pooled);
        assert_memory_equal(e, re, ne * sizeof(float));
        assert_memory_equal(p, rp, np * sizeof(float));
        free(e);
        free(p);
        s = prompt_encoder_cache_stats(pe);
        assert_int_equal(s.hits, (uint64_t)round);
        assert_int_equal(s.misses, 1);
    }
    /* as a negative prompt: a hit, in row 0 */
    arena_reset_to(&a, 0);
    prompt_embeddings pr = encode_or_fail(pe, &a, "a dog", "a photo of a cat", true, 1);
    expect_repeats(be, &pr.embeds, 0, 1, re);
    expect_repeats(be, &pr.pooled, 0, 1, rp);
    s = prompt_encoder_cache_stats(pe);
    assert_int_equal(s.hits, 2);
    assert_int_equal(s.misses, 2); /* "a dog" */
    /* "a photo of a cat" was used last: a third text evicts "a dog" */
    encode_or_fail(pe, &a, "a bird", NULL, false, 1);
    encode_or_fail(pe, &a, "a photo of a cat", NULL, false, 1);
    s = prompt_encoder_cache_stats(pe);
    assert_int_equal(s.hits, 3);
    assert_int_equal(s.evictions, 1);
    encode_or_fail(pe, &a, "a dog", NULL, false, 1);
    s = prompt_encoder_cache_stats(pe);
    assert_int_equal(s.misses, 4);
    assert_int_equal(s.entries, 2);
    free(re);
    free(rp);
    arena_free(&a);
    prompt_encoder_free(pe);
    prompt_encoder_free(plain);
    backend_destroy(be);
}

/* A planning pass without texts measures the memory of a request; an arena of exactly that
 * size runs it, one byte less fails with OUT_OF_MEMORY and leaves the arena as it was. */
static void planned_memory_is_exact(void **state)
{
    (void)state;
    backend *be = bt_backend("cpu", 2);
    prompt_encoder *pe = load_or_fail(be, "tiny-b", 1);
    arena plan;
    arena_init_planning(&plan);
    prompt_embeddings pr;
    sdxl_error err;
    GOLDEN_ASSERT_OK(prompt_encoder_encode(pe, NULL, &plan, NULL, "-", true, 2, &pr, &err), err);
    size_t outputs = plan.used, need = arena_peak(&plan);
    assert_true(outputs >= tensor_nbytes(&pr.embeds) + tensor_nbytes(&pr.pooled));
    assert_true(need > outputs);
    for (int fits = 1; fits >= 0; fits--) {
        arena a;
        bt_arena(&a, need - (size_t)(1 - fits));
        sdxl_status st = prompt_encoder_encode(pe, NULL, &a, "a cat", "a dog", true, 2, &pr, &err);
        assert_int_equal(st, fits ? SDXL_OK : SDXL_ERR_OUT_OF_MEMORY);
        assert_int_equal(a.used, fits ? outputs : 0);
        arena_free(&a);
    }
    prompt_encoder_free(pe);
    backend_destroy(be);
}

/* A model directory linking to tiny-a's text parts, with model_index.json's
 * force_zeros_for_empty_prompt false: no negative prompt then means "" (golden prompt 0). */
static void no_forced_zeros_encodes_empty_negative(void **state)
{
    (void)state;
    char src[4096], dir[4096], from[8192], to[8192];
    test_model_dir("tiny-a", src, sizeof src);
    assert_int_equal(test_make_temp_dir(dir, sizeof dir), SDXL_OK);
    const char *parts[] = {"tokenizer", "tokenizer_2", "text_encoder", "text_encoder_2"};
    for (int i = 0; i < 4; i++) {
        snprintf(from, sizeof from, "%s/%s", src, parts[i]);
        snprintf(to, sizeof to, "%s/%s", dir, parts[i]);
        assert_int_equal(symlink(from, to), 0);
    }
    snprintf(to, sizeof to, "%s/model_index.json", dir);
    FILE *f = fopen(to, "wb");
    assert_non_null(f);
    fputs("{\"_class_name\": \"StableDiffusionXLPipeline\", "
          "\"force_zeros_for_empty_prompt\": false}",
          f);
    fclose(f);

    backend *be = bt_backend("cpu", 2);
    prompt_encoder *pe = load_dir_or_fail(be, dir, 0);
    golden g;
    sdxl_error err;
    GOLDEN_ASSERT_OK(golden_open(&g, "text_tiny-a.safetensors", &err), err);
    arena a;
    bt_arena(&a, ARENA_BYTES);
    prompt_embeddings pr = encode_or_fail(pe, &a, "a photo of a cat", NULL, true, 1);
    expect_rows(be, &g, "p0.prompt_embeds", &pr.embeds, 0, INFINITY, "no zeros: embeds");
    expect_rows(be, &g, "p0.pooled_embeds", &pr.pooled, 0, INFINITY, "no zeros: pooled");
    expect_rows(be, &g, "cfg_zero.prompt_embeds", &pr.embeds, 1, INFINITY, "no zeros: prompt");
    arena_free(&a);
    golden_close(&g);
    prompt_encoder_free(pe);

    /* without model_index.json the directory is not a diffusers model */
    assert_int_equal(unlink(to), 0);
    pe = (prompt_encoder *)&pe; /* must be set to NULL */
    assert_int_not_equal(prompt_encoder_load(dir, be, &(prompt_encoder_params){0}, &pe, &err),
                         SDXL_OK);
    assert_null(pe);
    assert_non_null(strstr(err.message, "model_index.json"));
    backend_destroy(be);
    assert_int_equal(test_remove_tree(dir), 0);
}

/* Bad calls are refused with a message, the arena untouched. */
static void bad_calls_are_refused(void **state)
{
    (void)state;
    backend *be = bt_backend("cpu", 1);
    prompt_encoder *pe = load_or_fail(be, "tiny-b", 0);
    arena a;
    bt_arena(&a, ARENA_BYTES);
    prompt_embeddings pr;
    sdxl_error err;
    assert_int_equal(prompt_encoder_encode(pe, NULL, &a, "a cat", NULL, false, 0, &pr, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_int_equal(prompt_encoder_encode(pe, NULL, &a, NULL, NULL, false, 1, &pr, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_int_equal(prompt_encoder_encode(pe, NULL, &a, "caf\xc3", NULL, false, 1, &pr, &err),
                     SDXL_ERR_INVALID_ARGUMENT); /* invalid UTF-8, refused by the tokenizer */
    assert_int_equal(a.used, 0);
    tensor e, p;
    GOLDEN_ASSERT_OK(tensor_alloc(&e, &a, DTYPE_F32, 3, (int64_t[]){2, 77, 7}, &err), err);
    GOLDEN_ASSERT_OK(tensor_alloc(&p, &a, DTYPE_F32, 2,
                                  (int64_t[]){2, prompt_encoder_pooled_dim(pe)}, &err),
                     err);
    assert_int_equal(prompt_encoder_encode_rows(pe, NULL, &a, "a cat", &e, &p, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "[2, 77, 7]"));
    arena_free(&a);
    prompt_encoder_free(pe);
    backend_destroy(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        GOLDEN_MODEL_TEST(golden_prompts, "tiny-a"),
        GOLDEN_MODEL_TEST(golden_prompts, "tiny-b"),
        cmocka_unit_test(empty_negative_prompt_is_encoded),
        cmocka_unit_test(batch_rows_repeat_single),
        cmocka_unit_test(cache_hits_are_bit_identical),
        cmocka_unit_test(planned_memory_is_exact),
        cmocka_unit_test(no_forced_zeros_encodes_empty_negative),
        cmocka_unit_test(bad_calls_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
