// needs: model_tiny-a model_tiny-b
/*
 * test_mkmodel.c — build/mkmodel's model folders: every weight file holds exactly the tensors
 * of the engine's tensor lists, every config and vocabulary file is a byte-for-byte copy, the
 * same arguments give the same bytes, another seed other weights, fp16 the Hub's .fp16 file
 * names with the fp32 values rounded, and the weights follow the distribution documented in
 * tools/mkmodel/README.md (and pinned here, since the golden tensors were made from them).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/dtype.h"
#include "engine/clip_config.h"
#include "engine/clip_tensors.h"
#include "engine/unet_config.h"
#include "engine/unet_tensors.h"
#include "engine/vae_config.h"
#include "engine/vae_tensors.h"
#include "io/safetensors.h"
#include "support/paths.h"
#include "support/remove_tree.h"

static const char *const components[] = {"unet", "vae", "text_encoder", "text_encoder_2"};
static const char *const weight_files[] = {"diffusion_pytorch_model", "diffusion_pytorch_model",
                                           "model", "model"};

/* Every file of a model folder besides the weights. */
static const char *const plain_files[] = {
    "model_index.json",
    "scheduler/scheduler_config.json",
    "unet/config.json",
    "vae/config.json",
    "text_encoder/config.json",
    "text_encoder_2/config.json",
    "tokenizer/tokenizer_config.json",
    "tokenizer/special_tokens_map.json",
    "tokenizer_2/tokenizer_config.json",
    "tokenizer_2/special_tokens_map.json",
};

/* Runs build/mkmodel with the arguments (NULL-terminated), output discarded; its exit code. */
static int run_mkmodel(const char *const *args)
{
    char exe[1024];
    snprintf(exe, sizeof exe, "%s/mkmodel", test_binary_dir());
    const char *argv[16] = {exe};
    int argc = 1;
    for (; args[argc - 1]; argc++)
        argv[argc] = args[argc - 1];
    argv[argc] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, STDOUT_FILENO);
        dup2(devnull, STDERR_FILENO);
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int write_model(const char *name, const char *seed, const char *dtype_flag,
                       const char *out)
{
    char config[1024];
    snprintf(config, sizeof config, "%s/models/configs/%s", test_source_dir(), name);
    const char *args[] = {"--config", config, "--seed", seed, "--dtype", dtype_flag,
                          "--out", out, NULL};
    return run_mkmodel(args);
}

static bool files_equal(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    bool equal = fa && fb;
    while (equal) {
        static char ba[65536], bb[65536];
        size_t na = fread(ba, 1, sizeof ba, fa), nb = fread(bb, 1, sizeof bb, fb);
        equal = na == nb && memcmp(ba, bb, na) == 0;
        if (na == 0)
            break;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    if (!equal)
        print_error("%s and %s differ\n", a, b);
    return equal;
}

static void weight_path(const char *dir, int c, const char *variant, char *out, size_t n)
{
    snprintf(out, n, "%s/%s/%s%s.safetensors", dir, components[c], weight_files[c], variant);
}

/* Calls fn for every tensor of component c of the model config `name`. */
static void list_component(const char *name, int c, model_tensor_fn fn, void *ctx)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/models/configs/%s/%s", test_source_dir(), name,
             components[c]);
    sdxl_error err = {0};
    sdxl_status st;
    if (c == 0) {
        unet_config cfg;
        st = unet_config_load(dir, &cfg, &err);
        if (!st)
            st = unet_tensors_for_each(&cfg, fn, ctx, &err);
    } else if (c == 1) {
        vae_config cfg;
        st = vae_config_load(dir, &cfg, &err);
        if (!st)
            st = vae_tensors_for_each(&cfg, fn, ctx, &err);
    } else {
        clip_config cfg;
        st = clip_config_load(dir, &cfg, &err);
        if (!st)
            st = clip_tensors_for_each(&cfg, fn, ctx, &err);
    }
    if (st)
        print_error("%s\n", err.message);
    assert_int_equal(st, SDXL_OK);
}

typedef struct file_check {
    const safetensors_file *file;
    dtype type;
    size_t listed;
} file_check;

/* The listed tensor is in the file with the listed shape and the expected dtype. */
static sdxl_status check_in_file(void *ctx, const model_tensor *t, sdxl_error *err)
{
    file_check *fc = ctx;
    const st_tensor *found = safetensors_find(fc->file, t->name);
    if (!found)
        print_error("%s: %s is missing\n", fc->file->path, t->name);
    assert_non_null(found);
    assert_int_equal(found->type, fc->type);
    assert_int_equal(found->ndim, t->ndim);
    for (int i = 0; i < t->ndim; i++)
        assert_int_equal(found->shape[i], t->shape[i]);
    fc->listed++;
    return SDXL_OK;
}

/* Each weight file holds exactly the listed tensors (count equal + every listed one found). */
static void check_weight_files(const char *name, const char *dir, const char *variant,
                               dtype type)
{
    for (int c = 0; c < 4; c++) {
        char path[1200];
        weight_path(dir, c, variant, path, sizeof path);
        safetensors_file f;
        sdxl_error err = {0};
        sdxl_status st = safetensors_open(&f, path, &err);
        if (st)
            print_error("%s\n", err.message);
        assert_int_equal(st, SDXL_OK);
        const char *format = safetensors_metadata(&f, "format");
        assert_non_null(format);
        assert_string_equal(format, "pt");
        file_check fc = {&f, type, 0};
        list_component(name, c, check_in_file, &fc);
        assert_int_equal(fc.listed, f.n_tensors);
        safetensors_close(&f);
    }
}

static void test_weight_files_hold_exactly_the_listed_tensors(void **state)
{
    const char *models[] = {"tiny-a", "tiny-b"};
    for (int m = 0; m < 2; m++) {
        char dir[1024];
        test_model_dir(models[m], dir, sizeof dir);
        check_weight_files(models[m], dir, "", DTYPE_F32);
    }
}

static void test_configs_and_vocabulary_are_copied_byte_for_byte(void **state)
{
    const char *models[] = {"tiny-a", "tiny-b"};
    for (int m = 0; m < 2; m++) {
        char dir[1024], src[1200], dst[1200];
        test_model_dir(models[m], dir, sizeof dir);
        for (size_t i = 0; i < sizeof plain_files / sizeof plain_files[0]; i++) {
            snprintf(src, sizeof src, "%s/models/configs/%s/%s", test_source_dir(), models[m],
                     plain_files[i]);
            snprintf(dst, sizeof dst, "%s/%s", dir, plain_files[i]);
            assert_true(files_equal(src, dst));
        }
        const char *tokenizers[] = {"tokenizer", "tokenizer_2"};
        const char *vocab[] = {"vocab.json", "merges.txt"};
        for (int t = 0; t < 2; t++)
            for (int v = 0; v < 2; v++) {
                snprintf(src, sizeof src, "%s/models/vocab/%s", test_source_dir(), vocab[v]);
                snprintf(dst, sizeof dst, "%s/%s/%s", dir, tokenizers[t], vocab[v]);
                assert_true(files_equal(src, dst));
            }
    }
}

/* tiny-a again with seed 1 is the fixture's folder byte for byte; seed 2 changes every
 * tensor. */
static void test_same_seed_same_bytes_other_seed_other_weights(void **state)
{
    char tmp[512], again[600], other[600], fixture[1024];
    assert_int_equal(test_make_temp_dir(tmp, sizeof tmp), SDXL_OK);
    snprintf(again, sizeof again, "%s/again", tmp);
    snprintf(other, sizeof other, "%s/other", tmp);
    test_model_dir("tiny-a", fixture, sizeof fixture);
    assert_int_equal(write_model("tiny-a", "1", "fp32", again), 0);
    assert_int_equal(write_model("tiny-a", "2", "fp32", other), 0);
    for (int c = 0; c < 4; c++) {
        char a[1200], b[1200];
        weight_path(fixture, c, "", a, sizeof a);
        weight_path(again, c, "", b, sizeof b);
        assert_true(files_equal(a, b));

        weight_path(other, c, "", b, sizeof b);
        safetensors_file fa, fb;
        assert_int_equal(safetensors_open(&fa, a, NULL), SDXL_OK);
        assert_int_equal(safetensors_open(&fb, b, NULL), SDXL_OK);
        assert_int_equal(fa.n_tensors, fb.n_tensors);
        for (size_t i = 0; i < fa.n_tensors; i++) {
            const st_tensor *ta = &fa.tensors[i];
            const st_tensor *tb = safetensors_find(&fb, ta->name);
            assert_non_null(tb);
            assert_int_equal(ta->nbytes, tb->nbytes);
            assert_memory_not_equal(ta->data, tb->data, ta->nbytes);
        }
        safetensors_close(&fa);
        safetensors_close(&fb);
    }
    for (size_t i = 0; i < sizeof plain_files / sizeof plain_files[0]; i++) {
        char a[1200], b[1200];
        snprintf(a, sizeof a, "%s/%s", fixture, plain_files[i]);
        snprintf(b, sizeof b, "%s/%s", again, plain_files[i]);
        assert_true(files_equal(a, b));
    }
    assert_int_equal(test_remove_tree(tmp), 0);
}

/* --dtype fp16 writes the Hub's variant names, and the values are the fp32 ones rounded to
 * nearest even. */
static void test_fp16_uses_variant_names_and_rounds_the_fp32_values(void **state)
{
    char tmp[512], out[600], fixture[1024];
    assert_int_equal(test_make_temp_dir(tmp, sizeof tmp), SDXL_OK);
    snprintf(out, sizeof out, "%s/half", tmp);
    test_model_dir("tiny-b", fixture, sizeof fixture);
    assert_int_equal(write_model("tiny-b", "1", "fp16", out), 0);
    check_weight_files("tiny-b", out, ".fp16", DTYPE_F16);
    for (int c = 0; c < 4; c++) {
        char plain[1200], half[1200];
        struct stat info;
        weight_path(out, c, "", plain, sizeof plain);
        assert_int_not_equal(stat(plain, &info), 0);
        weight_path(out, c, ".fp16", half, sizeof half);
        weight_path(fixture, c, "", plain, sizeof plain);
        safetensors_file f32, f16;
        assert_int_equal(safetensors_open(&f32, plain, NULL), SDXL_OK);
        assert_int_equal(safetensors_open(&f16, half, NULL), SDXL_OK);
        for (size_t i = 0; i < f32.n_tensors; i++) {
            const st_tensor *t = &f32.tensors[i];
            const st_tensor *h = safetensors_find(&f16, t->name);
            assert_non_null(h);
            assert_int_equal(h->numel, t->numel);
            for (size_t k = 0; k < t->numel; k++) {
                float v;
                uint16_t bits;
                memcpy(&v, (const char *)t->data + 4 * k, 4);
                memcpy(&bits, (const char *)h->data + 2 * k, 2);
                if (bits != f32_to_f16(v))
                    fail_msg("%s[%zu]: fp16 %04x, expected %04x", t->name, k, bits,
                             f32_to_f16(v));
            }
        }
        safetensors_close(&f32);
        safetensors_close(&f16);
    }
    assert_int_equal(test_remove_tree(tmp), 0);
}

typedef struct kind_stats {
    const safetensors_file *file;
    size_t checked[MODEL_TENSOR_KIND_COUNT];
} kind_stats;

/* Each tensor against its kind's documented distribution: bounds always, and for tensors of
 * 1000+ values the mean and variance of the uniform law within sampling error. */
static sdxl_status check_distribution(void *ctx, const model_tensor *t, sdxl_error *err)
{
    kind_stats *ks = ctx;
    const st_tensor *found = safetensors_find(ks->file, t->name);
    assert_non_null(found);
    double center = 0, half = 0.05;
    if (t->kind == MODEL_TENSOR_LINEAR_WEIGHT || t->kind == MODEL_TENSOR_CONV_WEIGHT)
        half = sqrt(3.0 / (double)model_tensor_fan_in(t));
    else if (t->kind == MODEL_TENSOR_NORM_SCALE)
        center = 1, half = 0.1;
    else if (t->kind == MODEL_TENSOR_EMBEDDING)
        half = 1;
    double sum = 0, sum2 = 0;
    for (size_t k = 0; k < found->numel; k++) {
        float v;
        memcpy(&v, (const char *)found->data + 4 * k, 4);
        if (!(fabs(v - center) <= half * (1 + 1e-6)))
            fail_msg("%s[%zu] = %g outside %g ± %g", t->name, k, v, center, half);
        sum += v - center;
        sum2 += (v - center) * (v - center);
    }
    double n = (double)found->numel;
    if (n >= 1000) {
        double mean = sum / n, var = sum2 / n - mean * mean, expected_var = half * half / 3;
        /* Standard errors: mean sqrt(var/n), variance about var·sqrt(0.8/n); allow 5. */
        if (fabs(mean) > 5 * sqrt(expected_var / n) ||
            fabs(var - expected_var) > 5 * expected_var * sqrt(0.8 / n))
            fail_msg("%s (%s, %zu values): mean %g variance %g, expected 0 and %g", t->name,
                     model_tensor_kind_name(t->kind), found->numel, mean, var, expected_var);
    }
    ks->checked[t->kind]++;
    return SDXL_OK;
}

static void test_weights_follow_the_documented_distribution(void **state)
{
    const char *models[] = {"tiny-a", "tiny-b"};
    for (int m = 0; m < 2; m++) {
        kind_stats ks = {0};
        char dir[1024], path[1200];
        test_model_dir(models[m], dir, sizeof dir);
        for (int c = 0; c < 4; c++) {
            safetensors_file f;
            weight_path(dir, c, "", path, sizeof path);
            assert_int_equal(safetensors_open(&f, path, NULL), SDXL_OK);
            ks.file = &f;
            list_component(models[m], c, check_distribution, &ks);
            safetensors_close(&f);
        }
        for (int k = 0; k < MODEL_TENSOR_KIND_COUNT; k++)
            assert_true(ks.checked[k] > 0);
    }
}

/* The first values of a few tensors of tiny-a, seed 1. The golden tensors of tests/golden were
 * computed by diffusers from these weights: if this fails, the goldens are stale. */
static void test_seed_1_weights_are_the_ones_the_goldens_used(void **state)
{
    static const struct {
        int component;
        const char *name;
        uint32_t bits[3];
    } pins[] = {
        {0, "conv_in.weight", {0xbdf50535, 0xbe72675d, 0x3c0a033d}},
        {0, "mid_block.attentions.0.transformer_blocks.0.norm1.weight",
         {0x3f6bd9c5, 0x3f77f427, 0x3f86dd37}},
        {1, "decoder.conv_out.bias", {0xbbbbdd8d, 0xbc733947, 0xbd2c676b}},
        {3, "text_model.embeddings.token_embedding.weight",
         {0xbf78b45e, 0xbf066aa2, 0xbf1f2488}},
    };
    char dir[1024], path[1200];
    test_model_dir("tiny-a", dir, sizeof dir);
    for (size_t i = 0; i < sizeof pins / sizeof pins[0]; i++) {
        safetensors_file f;
        weight_path(dir, pins[i].component, "", path, sizeof path);
        assert_int_equal(safetensors_open(&f, path, NULL), SDXL_OK);
        const st_tensor *t = safetensors_find(&f, pins[i].name);
        assert_non_null(t);
        uint32_t bits[3];
        memcpy(bits, t->data, sizeof bits);
        for (int k = 0; k < 3; k++)
            if (bits[k] != pins[i].bits[k])
                fail_msg("%s[%d]: %08x, pinned %08x", pins[i].name, k, bits[k],
                         pins[i].bits[k]);
        safetensors_close(&f);
    }
}

static void test_bad_arguments_fail_without_writing(void **state)
{
    char tmp[512], out[600], config[1024];
    assert_int_equal(test_make_temp_dir(tmp, sizeof tmp), SDXL_OK);
    snprintf(out, sizeof out, "%s/never", tmp);
    assert_int_equal(write_model("tiny-a", "1", "fp8", out), 2);
    assert_int_equal(write_model("tiny-a", "-1", "fp32", out), 2);
    assert_int_equal(write_model("no-such-model", "1", "fp32", out), 1);
    snprintf(config, sizeof config, "%s/models/configs/tiny-a", test_source_dir());
    const char *no_vocab[] = {"--config", config, "--seed", "1", "--dtype", "fp32", "--out",
                              out, "--vocab", tmp, NULL};
    assert_int_equal(run_mkmodel(no_vocab), 1);
    struct stat info;
    assert_int_not_equal(stat(out, &info), 0);
    assert_int_equal(test_remove_tree(tmp), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weight_files_hold_exactly_the_listed_tensors),
        cmocka_unit_test(test_configs_and_vocabulary_are_copied_byte_for_byte),
        cmocka_unit_test(test_same_seed_same_bytes_other_seed_other_weights),
        cmocka_unit_test(test_fp16_uses_variant_names_and_rounds_the_fp32_values),
        cmocka_unit_test(test_weights_follow_the_documented_distribution),
        cmocka_unit_test(test_seed_1_weights_are_the_ones_the_goldens_used),
        cmocka_unit_test(test_bad_arguments_fail_without_writing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
