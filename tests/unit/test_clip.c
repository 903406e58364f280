// needs: model_tiny-a model_tiny-b
/*
 * test_clip.c — the CLIP text encoders (clip.h) against transformers 4.46.3.
 *
 * For every prompt of tests/golden/data/text_<model>.safetensors, fed the reference's own
 * token ids: text_encoder's hidden_states[-2], text_encoder_2's hidden_states[-2],
 * last_hidden_state and pooled projection, within relative L2 1e-4 (fp32 CPU; the tolerance of
 * tests/golden/data/README.md). Prompt 5 types "<|endoftext|>" inside the text, so its pooled
 * row is the typed one, not the appended one. Then: a batch of prompts gives each row the bits
 * it gets alone; the memory a planning pass measures is exactly enough; pooling at the first
 * eos_token_id with a non-legacy config; and the errors for weights that do not fit the config.
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
#include <sys/stat.h>
#include <unistd.h>

#include "engine/clip.h"
#include "engine/clip_tensors.h"
#include "io/safetensors.h"
#include "support/backend_test.h"
#include "support/golden.h"
#include "support/golden_tensor.h"
#include "support/paths.h"
#include "support/remove_tree.h"

#define T 77
#define ARENA_BYTES (16u << 20)

static clip_model *load_or_fail(backend *be, const char *model, const char *component)
{
    char dir[4096];
    test_model_dir(model, dir, sizeof dir);
    clip_model *m = NULL;
    sdxl_error err;
    GOLDEN_ASSERT_OK(clip_load(dir, component, be, NULL, &m, &err), err);
    return m;
}

/* Golden ids NAME [1, 77] as int32. */
static int32_t *golden_ids(const golden *g, const char *name)
{
    golden_shape s;
    int64_t *ids64;
    sdxl_error err;
    GOLDEN_ASSERT_OK(golden_get_i64(g, name, &s, &ids64, &err), err);
    assert_int_equal(s.numel, T);
    int32_t *ids = malloc(T * sizeof *ids);
    for (size_t i = 0; i < T; i++)
        ids[i] = (int32_t)ids64[i];
    free(ids64);
    return ids;
}

/* Compares the tensor with golden NAME (same number of elements) within rel L2 1e-4. */
static void expect_close(backend *be, const golden *g, const char *name, const tensor *t,
                         const char *label)
{
    golden_expect_rows(be, g, name, t, 0, INFINITY, 1e-4, label);
}

static tensor make(arena *a, int ndim, const int64_t *shape)
{
    tensor t;
    sdxl_error err;
    GOLDEN_ASSERT_OK(tensor_alloc(&t, a, DTYPE_F32, ndim, shape, &err), err);
    return t;
}

static void golden_encoders(void **state)
{
    const char *model = *state;
    backend *be = bt_backend("cpu", 2);
    clip_model *te1 = load_or_fail(be, model, "text_encoder");
    clip_model *te2 = load_or_fail(be, model, "text_encoder_2");
    assert_false(te1->cfg.has_projection);
    assert_true(te2->cfg.has_projection);
    golden g;
    sdxl_error err;
    GOLDEN_ASSERT_OK(golden_open_model(&g, "text", model, &err), err);
    arena a;
    bt_arena(&a, ARENA_BYTES);
    int64_t d1 = te1->cfg.hidden_size, d2 = te2->cfg.hidden_size, p = te2->cfg.projection_dim;
    int prompts = 0;
    for (int i = 0;; i++, prompts++) {
        char name[64], label[96];
        snprintf(name, sizeof name, "p%d.ids1", i);
        if (!golden_has(&g, name))
            break;
        int32_t *ids1 = golden_ids(&g, name);
        snprintf(name, sizeof name, "p%d.ids2", i);
        int32_t *ids2 = golden_ids(&g, name);
        arena_reset_to(&a, 0);
        tensor h1 = make(&a, 3, (int64_t[]){1, T, d1});
        tensor h2 = make(&a, 3, (int64_t[]){1, T, d2});
        tensor last2 = make(&a, 3, (int64_t[]){1, T, d2});
        tensor pooled2 = make(&a, 2, (int64_t[]){1, p});
        GOLDEN_ASSERT_OK(clip_forward(te1, &a, ids1, 1, T, &(clip_outputs){.penultimate = &h1},
                                      &err),
                         err);
        GOLDEN_ASSERT_OK(clip_forward(te2, &a, ids2, 1, T,
                                      &(clip_outputs){&h2, &last2, &pooled2}, &err),
                         err);
        const struct {
            const char *field;
            const tensor *t;
        } checks[] = {{"hidden1", &h1}, {"hidden2", &h2}, {"last2", &last2}, {"pooled2", &pooled2}};
        for (size_t c = 0; c < sizeof checks / sizeof checks[0]; c++) {
            snprintf(name, sizeof name, "p%d.%s", i, checks[c].field);
            snprintf(label, sizeof label, "%s %s", model, name);
            expect_close(be, &g, name, checks[c].t, label);
        }
        free(ids1);
        free(ids2);
    }
    assert_int_equal(prompts, 6);
    arena_free(&a);
    golden_close(&g);
    clip_free(te1);
    clip_free(te2);
    backend_destroy(be);
}

/* Three different prompts in one call: each row has the bits of the prompt encoded alone, for
 * every output. */
static void batch_rows_equal_single_prompts(void **state)
{
    (void)state;
    backend *be = bt_backend("cpu", 2);
    clip_model *m = load_or_fail(be, "tiny-a", "text_encoder_2");
    golden g;
    sdxl_error err;
    GOLDEN_ASSERT_OK(golden_open(&g, "text_tiny-a.safetensors", &err), err);
    int32_t ids[3 * T];
    const char *names[3] = {"p1.ids2", "p5.ids2", "p0.ids2"};
    for (int b = 0; b < 3; b++) {
        int32_t *one = golden_ids(&g, names[b]);
        memcpy(ids + b * T, one, sizeof(int32_t) * T);
        free(one);
    }
    int64_t d = m->cfg.hidden_size, p = m->cfg.projection_dim;
    arena a;
    bt_arena(&a, ARENA_BYTES);
    tensor h = make(&a, 3, (int64_t[]){3, T, d}), last = make(&a, 3, (int64_t[]){3, T, d});
    tensor pooled = make(&a, 2, (int64_t[]){3, p});
    GOLDEN_ASSERT_OK(clip_forward(m, &a, ids, 3, T, &(clip_outputs){&h, &last, &pooled}, &err),
                     err);
    float *hb = bt_read(be, &h), *lb = bt_read(be, &last), *pb = bt_read(be, &pooled);
    for (int b = 0; b < 3; b++) {
        arena_mark mark = arena_get_mark(&a);
        tensor h1 = make(&a, 3, (int64_t[]){1, T, d}), l1 = make(&a, 3, (int64_t[]){1, T, d});
        tensor p1 = make(&a, 2, (int64_t[]){1, p});
        GOLDEN_ASSERT_OK(clip_forward(m, &a, ids + b * T, 1, T,
                                      &(clip_outputs){&h1, &l1, &p1}, &err),
                         err);
        float *hs = bt_read(be, &h1), *ls = bt_read(be, &l1), *ps = bt_read(be, &p1);
        assert_memory_equal(hs, hb + b * T * d, sizeof(float) * T * d);
        assert_memory_equal(ls, lb + b * T * d, sizeof(float) * T * d);
        assert_memory_equal(ps, pb + b * p, sizeof(float) * p);
        free(hs);
        free(ls);
        free(ps);
        arena_reset_to(&a, mark);
    }
    free(hb);
    free(lb);
    free(pb);
    arena_free(&a);
    golden_close(&g);
    clip_free(m);
    backend_destroy(be);
}

/* A planning pass with no ids measures the memory; an arena of exactly that size runs the same
 * call, one byte less does not, and the arena is back at its mark after either. */
static void planned_memory_is_exact(void **state)
{
    (void)state;
    backend *be = bt_backend("cpu", 2);
    clip_model *m = load_or_fail(be, "tiny-b", "text_encoder_2");
    int64_t d = m->cfg.hidden_size, p = m->cfg.projection_dim;
    sdxl_error err;
    arena plan;
    arena_init_planning(&plan);
    tensor h = make(&plan, 3, (int64_t[]){2, T, d});
    tensor pooled = make(&plan, 2, (int64_t[]){2, p});
    size_t outputs = plan.used;
    GOLDEN_ASSERT_OK(clip_forward(m, &plan, NULL, 2, T,
                                  &(clip_outputs){.penultimate = &h, .pooled = &pooled}, &err),
                     err);
    assert_int_equal(plan.used, outputs);
    size_t need = arena_peak(&plan);
    assert_true(need > outputs);

    int32_t ids[2 * T];
    for (int i = 0; i < 2 * T; i++)
        ids[i] = i % T == 0 ? 49406 : i % T < 5 ? 320 + i % T : 49407;
    for (int fits = 1; fits >= 0; fits--) {
        arena a;
        bt_arena(&a, need - (size_t)(1 - fits));
        h = make(&a, 3, (int64_t[]){2, T, d});
        pooled = make(&a, 2, (int64_t[]){2, p});
        sdxl_status st = clip_forward(
            m, &a, ids, 2, T, &(clip_outputs){.penultimate = &h, .pooled = &pooled}, &err);
        assert_int_equal(st, fits ? SDXL_OK : SDXL_ERR_OUT_OF_MEMORY);
        assert_int_equal(a.used, outputs);
        arena_free(&a);
    }
    clip_free(m);
    backend_destroy(be);
}

/* A new model directory dst holding only COMPONENT: src_model's config.json with the first
 * "from" replaced by "to", and a link to src_model's weights. */
static void edited_component(const char *src_model, const char *component, const char *from,
                             const char *to, char *dst, size_t n)
{
    char src[4096], path[8192], target[8192];
    test_model_dir(src_model, src, sizeof src);
    assert_int_equal(test_make_temp_dir(dst, n), SDXL_OK);
    snprintf(path, sizeof path, "%s/%s/config.json", src, component);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char text[8192];
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = '\0';
    char *at = strstr(text, from);
    assert_non_null(at);
    char edited[8192];
    snprintf(edited, sizeof edited, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    snprintf(path, sizeof path, "%s/%s", dst, component);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/%s/config.json", dst, component);
    f = fopen(path, "wb");
    assert_non_null(f);
    fputs(edited, f);
    fclose(f);
    snprintf(target, sizeof target, "%s/%s/model.safetensors", src, component);
    snprintf(path, sizeof path, "%s/%s/model.safetensors", dst, component);
    assert_int_equal(symlink(target, path), 0);
}

/* The text_projection weight [P, D] of MODEL's text_encoder_2, from its file (fp32). */
static float *read_projection(const char *model, int64_t p, int64_t d)
{
    char dir[4096], path[8192];
    test_model_dir(model, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/text_encoder_2/model.safetensors", dir);
    safetensors_file f;
    sdxl_error err;
    GOLDEN_ASSERT_OK(safetensors_open(&f, path, &err), err);
    const st_tensor *t = safetensors_find(&f, "text_projection.weight");
    assert_non_null(t);
    assert_int_equal(t->type, DTYPE_F32);
    assert_int_equal(t->numel, (size_t)(p * d));
    float *w = malloc(t->nbytes);
    memcpy(w, t->data, t->nbytes);
    safetensors_close(&f);
    return w;
}

/* With a config written after transformers' fix (eos_token_id not 2) the pooled row is the
 * first position holding eos_token_id: with 49407 the typed "<|endoftext|>" of prompt 5 (as
 * the reference pools it), with 49406 (BOS) position 0 — checked against
 * text_projection · last_hidden_state[0] computed here in double. */
static void pool_at_first_eos_with_new_config(void **state)
{
    (void)state;
    backend *be = bt_backend("cpu", 2);
    golden g;
    sdxl_error err;
    GOLDEN_ASSERT_OK(golden_open(&g, "text_tiny-a.safetensors", &err), err);
    int32_t *ids = golden_ids(&g, "p5.ids2");
    for (int eos = 49406; eos <= 49407; eos++) {
        char dir[4096], to[64];
        snprintf(to, sizeof to, "\"eos_token_id\": %d", eos);
        edited_component("tiny-a", "text_encoder_2", "\"eos_token_id\": 2", to, dir,
                         sizeof dir);
        clip_model *m = NULL;
        GOLDEN_ASSERT_OK(clip_load(dir, "text_encoder_2", be, NULL, &m, &err), err);
        assert_int_equal(m->cfg.eos_token_id, eos);
        int64_t d = m->cfg.hidden_size, p = m->cfg.projection_dim;
        arena a;
        bt_arena(&a, ARENA_BYTES);
        tensor last = make(&a, 3, (int64_t[]){1, T, d}), pooled = make(&a, 2, (int64_t[]){1, p});
        GOLDEN_ASSERT_OK(clip_forward(m, &a, ids, 1, T,
                                      &(clip_outputs){.last = &last, .pooled = &pooled}, &err),
                         err);
        float *got = bt_read(be, &pooled);
        if (eos == 49407) {
            expect_close(be, &g, "p5.pooled2", &pooled, "tiny-a p5.pooled2, eos_token_id 49407");
        } else {
            float *lh = bt_read(be, &last), *w = read_projection("tiny-a", p, d);
            float *want = malloc(sizeof(float) * (size_t)p);
            for (int64_t o = 0; o < p; o++) {
                double acc = 0;
                for (int64_t i = 0; i < d; i++)
                    acc += (double)w[o * d + i] * lh[i]; /* row 0 of last */
                want[o] = (float)acc;
            }
            GOLDEN_ASSERT_CLOSE("pooled at BOS, eos_token_id 49406", got, want, (size_t)p,
                                INFINITY, 1e-6);
            free(want);
            free(w);
            free(lh);
        }
        free(got);
        arena_free(&a);
        clip_free(m);
        assert_int_equal(test_remove_tree(dir), 0);
    }
    free(ids);
    golden_close(&g);
    backend_destroy(be);
}

/* A config that does not describe the weights is refused naming the first tensor in doubt, and
 * nothing leaks (the sanitizer build checks). */
static void weights_that_do_not_fit_are_refused(void **state)
{
    (void)state;
    backend *be = bt_backend("cpu", 1);
    const struct {
        const char *from, *to;
        sdxl_status code;
        const char *says;
    } cases[] = {
        /* one layer fewer: the file has a tensor nobody asked for */
        {"\"num_hidden_layers\": 3", "\"num_hidden_layers\": 2", SDXL_ERR_FORMAT,
         "unexpected tensor \"text_model.encoder.layers.2."},
        /* one layer more: a missing tensor */
        {"\"num_hidden_layers\": 3", "\"num_hidden_layers\": 4", SDXL_ERR_NOT_FOUND,
         "\"text_model.encoder.layers.3.self_attn.k_proj.weight\" [32, 32] is missing"},
        /* another width: the first tensor's shape */
        {"\"intermediate_size\": 128", "\"intermediate_size\": 64", SDXL_ERR_FORMAT,
         "\"text_model.encoder.layers.0.mlp.fc1.weight\" has shape [128, 32] but the "
         "model's config.json implies [64, 32]"},
        /* CLIPTextModel weights read as CLIPTextModelWithProjection */
        {"\"CLIPTextModel\"", "\"CLIPTextModelWithProjection\"", SDXL_ERR_NOT_FOUND,
         "\"text_projection.weight\" [32, 32] is missing"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dir[4096];
        edited_component("tiny-a", "text_encoder", cases[i].from, cases[i].to, dir, sizeof dir);
        clip_model *m = (clip_model *)&m; /* must be set to NULL */
        sdxl_error err;
        assert_int_equal(clip_load(dir, "text_encoder", be, NULL, &m, &err), cases[i].code);
        assert_null(m);
        if (!strstr(err.message, cases[i].says))
            fail_msg("case %zu: message \"%s\" does not say \"%s\"", i, err.message,
                     cases[i].says);
        assert_int_equal(test_remove_tree(dir), 0);
    }
    backend_destroy(be);
}

typedef struct listed {
    const safetensors_file *file;
    size_t count;
} listed;

static sdxl_status expect_in_file(void *ctx, const model_tensor *t, sdxl_error *err)
{
    (void)err;
    listed *l = ctx;
    const st_tensor *found = safetensors_find(l->file, t->name);
    if (!found)
        fail_msg("%s: listed tensor %s is not in the file", l->file->path, t->name);
    assert_int_equal(found->ndim, t->ndim);
    for (int i = 0; i < t->ndim; i++)
        assert_int_equal(found->shape[i], t->shape[i]);
    l->count++;
    return SDXL_OK;
}

/* The loader asks for exactly the tensors of clip_tensors.h: the file mkmodel wrote holds the
 * listed tensors and no others, and clip_load, which refuses a file with a tensor it did not
 * ask for, loads it. */
static void loader_takes_exactly_the_listed_tensors(void **state)
{
    (void)state;
    backend *be = bt_backend("cpu", 1);
    const char *const models[] = {"tiny-a", "tiny-b"};
    const char *const components[] = {"text_encoder", "text_encoder_2"};
    for (int i = 0; i < 4; i++) {
        clip_model *m = load_or_fail(be, models[i / 2], components[i % 2]);
        char dir[4096], path[8192];
        test_model_dir(models[i / 2], dir, sizeof dir);
        snprintf(path, sizeof path, "%s/%s/model.safetensors", dir, components[i % 2]);
        safetensors_file f;
        sdxl_error err;
        GOLDEN_ASSERT_OK(safetensors_open(&f, path, &err), err);
        listed l = {&f, 0};
        GOLDEN_ASSERT_OK(clip_tensors_for_each(&m->cfg, expect_in_file, &l, &err), err);
        assert_int_equal(l.count, f.n_tensors);
        assert_int_equal(l.count, 2 + 16 * (size_t)m->cfg.num_hidden_layers + 2 +
                                      (m->cfg.has_projection ? 1 : 0));
        safetensors_close(&f);
        clip_free(m);
    }
    backend_destroy(be);
}

/* Bad calls are refused before anything runs. */
static void bad_calls_are_refused(void **state)
{
    (void)state;
    backend *be = bt_backend("cpu", 1);
    clip_model *m = load_or_fail(be, "tiny-b", "text_encoder");
    int64_t d = m->cfg.hidden_size;
    arena a;
    bt_arena(&a, ARENA_BYTES);
    tensor h = make(&a, 3, (int64_t[]){1, T, d});
    size_t used = a.used;
    int32_t ids[T] = {49406, 320, 49407};
    sdxl_error err;
    clip_outputs out = {.penultimate = &h};
    assert_int_equal(clip_forward(m, &a, NULL, 1, T, &out, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_int_equal(clip_forward(m, &a, ids, 1, 78, &out, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "1 to 77 tokens"));
    assert_int_equal(clip_forward(m, &a, ids, 0, T, &out, &err), SDXL_ERR_INVALID_ARGUMENT);
    ids[1] = 49408;
    assert_int_equal(clip_forward(m, &a, ids, 1, T, &out, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "token id 49408 (prompt 0, position 1)"));
    ids[1] = -1;
    assert_int_equal(clip_forward(m, &a, ids, 1, T, &out, &err), SDXL_ERR_INVALID_ARGUMENT);
    ids[1] = 320;
    assert_int_equal(a.used, used);
    tensor wrong = make(&a, 3, (int64_t[]){1, T, d + 1});
    used = a.used;
    out.penultimate = &wrong;
    assert_int_not_equal(clip_forward(m, &a, ids, 1, T, &out, &err), SDXL_OK);
    assert_int_equal(a.used, used);
    arena_free(&a);
    clip_free(m);
    backend_destroy(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        GOLDEN_MODEL_TEST(golden_encoders, "tiny-a"),
        GOLDEN_MODEL_TEST(golden_encoders, "tiny-b"),
        cmocka_unit_test(batch_rows_equal_single_prompts),
        cmocka_unit_test(planned_memory_is_exact),
        cmocka_unit_test(pool_at_first_eos_with_new_config),
        cmocka_unit_test(loader_takes_exactly_the_listed_tensors),
        cmocka_unit_test(weights_that_do_not_fit_are_refused),
        cmocka_unit_test(bad_calls_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
