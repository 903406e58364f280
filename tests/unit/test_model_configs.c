/*
 * test_model_configs.c — the configs in models/configs parse to the architectures they state,
 * their tensor lists equal what diffusers and transformers build from them, and broken configs
 * are refused with errors that name the file and the key.
 *
 * The tensor-list checks compare with values printed by diffusers 0.31.0 / transformers 4.46.3
 * for the same configs (models built on the meta device): tensor count, parameter count, and an
 * FNV-1a 64 hash of "name:d0,d1,...\n" over state_dict() in order — so a wrong name, shape or
 * order anywhere fails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/clip_config.h"
#include "engine/clip_tensors.h"
#include "engine/unet_config.h"
#include "engine/unet_tensors.h"
#include "engine/vae_config.h"
#include "engine/vae_tensors.h"
#include "support/paths.h"
#include "support/remove_tree.h"

static void config_dir(const char *model, const char *component, char *out, size_t n)
{
    snprintf(out, n, "%s/models/configs/%s/%s", test_source_dir(), model, component);
}

typedef struct model_configs {
    unet_config unet;
    vae_config vae;
    clip_config te1, te2;
} model_configs;

static void load_all(const char *model, model_configs *m)
{
    char dir[1024];
    sdxl_error err = {0};
    config_dir(model, "unet", dir, sizeof dir);
    assert_int_equal(unet_config_load(dir, &m->unet, &err), SDXL_OK);
    config_dir(model, "vae", dir, sizeof dir);
    assert_int_equal(vae_config_load(dir, &m->vae, &err), SDXL_OK);
    config_dir(model, "text_encoder", dir, sizeof dir);
    assert_int_equal(clip_config_load(dir, &m->te1, &err), SDXL_OK);
    config_dir(model, "text_encoder_2", dir, sizeof dir);
    assert_int_equal(clip_config_load(dir, &m->te2, &err), SDXL_OK);
}

static void test_sdxl_turbo_configs_read_as_sdxl(void **state)
{
    model_configs m;
    load_all("sdxl-turbo", &m);
    const unet_config *u = &m.unet;
    assert_int_equal(u->n_blocks, 3);
    static const int channels[] = {320, 640, 1280}, heads[] = {5, 10, 20}, depth[] = {1, 2, 10};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(u->block_out_channels[i], channels[i]);
        assert_int_equal(u->num_attention_heads[i], heads[i]);
        assert_int_equal(u->transformer_layers_per_block[i], depth[i]);
        assert_int_equal(u->layers_per_block[i], 2);
        assert_int_equal(u->down_cross_attn[i], i > 0);
        assert_int_equal(u->up_cross_attn[i], i < 2);
    }
    assert_int_equal(u->in_channels, 4);
    assert_int_equal(u->out_channels, 4);
    assert_int_equal(u->sample_size, 64);
    assert_int_equal(u->cross_attention_dim, 2048);
    assert_int_equal(u->addition_time_embed_dim, 256);
    assert_int_equal(u->projection_class_embeddings_input_dim, 2816);
    assert_int_equal(unet_config_pooled_dim(u), 1280);
    assert_int_equal(u->time_embed_dim, 1280);
    assert_int_equal(u->norm_num_groups, 32);
    assert_float_equal(u->norm_eps, 1e-5f, 0);
    assert_true(u->flip_sin_to_cos);
    assert_int_equal(u->freq_shift, 0);
    assert_false(u->upcast_attention);

    const vae_config *v = &m.vae;
    assert_int_equal(v->n_blocks, 4);
    assert_int_equal(v->block_out_channels[0], 128);
    assert_int_equal(v->block_out_channels[3], 512);
    assert_int_equal(v->layers_per_block, 2);
    assert_int_equal(v->latent_channels, 4);
    assert_int_equal(v->sample_size, 1024);
    assert_float_equal(v->scaling_factor, 0.13025f, 0);
    assert_true(v->force_upcast);
    assert_int_equal(vae_config_scale(v), 8);

    assert_false(m.te1.has_projection);
    assert_int_equal(m.te1.hidden_act, CLIP_ACTIVATION_QUICK_GELU);
    assert_int_equal(m.te1.hidden_size, 768);
    assert_int_equal(m.te1.num_hidden_layers, 12);
    assert_int_equal(m.te1.num_attention_heads, 12);
    assert_int_equal(m.te1.intermediate_size, 3072);
    assert_true(m.te2.has_projection);
    assert_int_equal(m.te2.hidden_act, CLIP_ACTIVATION_GELU);
    assert_int_equal(m.te2.hidden_size, 1280);
    assert_int_equal(m.te2.num_hidden_layers, 32);
    assert_int_equal(m.te2.num_attention_heads, 20);
    assert_int_equal(m.te2.projection_dim, 1280);
    assert_int_equal(m.te2.eos_token_id, 2); /* the legacy value: pooled at argmax(ids) */
    assert_int_equal(m.te2.vocab_size, 49408);
    assert_int_equal(m.te2.max_position_embeddings, 77);
}

/* tiny-a gives transformer_layers_per_block as one number, tiny-b as a list. */
static void test_tiny_configs_differ_and_broadcast_scalars(void **state)
{
    model_configs a, b;
    load_all("tiny-a", &a);
    load_all("tiny-b", &b);
    assert_int_equal(a.unet.n_blocks, 2);
    assert_int_equal(a.unet.transformer_layers_per_block[0], 1);
    assert_int_equal(a.unet.transformer_layers_per_block[1], 1);
    assert_int_equal(a.unet.layers_per_block[1], 2);
    assert_int_equal(a.unet.num_attention_heads[1], 4);
    assert_int_equal(b.unet.n_blocks, 3);
    assert_int_equal(b.unet.transformer_layers_per_block[2], 3);
    assert_int_equal(b.unet.layers_per_block[0], 1);
    assert_int_equal(b.unet.num_attention_heads[2], 3);
    assert_int_not_equal(a.unet.block_out_channels[0], b.unet.block_out_channels[0]);
    assert_int_not_equal(a.te2.num_attention_heads, b.te2.num_attention_heads);
    assert_int_not_equal(a.vae.layers_per_block, b.vae.layers_per_block);
    assert_int_equal(a.te2.projection_dim, 40); /* != hidden 48: a transposed projection fails */
}

/* What SDXL's pipeline requires between components holds in every shipped config. */
static void test_components_fit_together(void **state)
{
    const char *models[] = {"sdxl-turbo", "tiny-a", "tiny-b"};
    for (int i = 0; i < 3; i++) {
        model_configs m;
        load_all(models[i], &m);
        assert_int_equal(m.unet.cross_attention_dim, m.te1.hidden_size + m.te2.hidden_size);
        assert_int_equal(unet_config_pooled_dim(&m.unet), m.te2.projection_dim);
        assert_int_equal(m.unet.in_channels, m.vae.latent_channels);
        assert_int_equal(m.unet.out_channels, m.vae.latent_channels);
        assert_int_equal(vae_config_scale(&m.vae), 8);
        assert_int_equal(m.te1.vocab_size, 49408);
        assert_int_equal(m.te2.max_position_embeddings, 77);
        assert_true(m.unet.down_cross_attn[m.unet.n_blocks - 1]);
        assert_false(m.unet.down_cross_attn[0]);
    }
}

typedef struct list_digest {
    size_t count;
    uint64_t params;
    uint64_t hash; /* FNV-1a 64 of "name:d0,d1,...\n" per tensor */
} list_digest;

static void hash_bytes(uint64_t *h, const char *s)
{
    for (; *s; s++) {
        *h ^= (unsigned char)*s;
        *h *= 0x100000001B3ull;
    }
}

static sdxl_status digest_tensor(void *ctx, const model_tensor *t, sdxl_error *err)
{
    list_digest *d = ctx;
    char line[256];
    int len = snprintf(line, sizeof line, "%s:", t->name);
    for (int i = 0; i < t->ndim; i++)
        len += snprintf(line + len, sizeof line - (size_t)len, "%s%lld", i ? "," : "",
                        (long long)t->shape[i]);
    snprintf(line + len, sizeof line - (size_t)len, "\n");
    hash_bytes(&d->hash, line);
    d->count++;
    d->params += (uint64_t)model_tensor_numel(t);
    return SDXL_OK;
}

static list_digest digest_component(const model_configs *m, const char *component)
{
    list_digest d = {0, 0, 0xCBF29CE484222325ull};
    sdxl_error err = {0};
    sdxl_status st;
    if (!strcmp(component, "unet"))
        st = unet_tensors_for_each(&m->unet, digest_tensor, &d, &err);
    else if (!strcmp(component, "vae"))
        st = vae_tensors_for_each(&m->vae, digest_tensor, &d, &err);
    else if (!strcmp(component, "text_encoder"))
        st = clip_tensors_for_each(&m->te1, digest_tensor, &d, &err);
    else
        st = clip_tensors_for_each(&m->te2, digest_tensor, &d, &err);
    assert_int_equal(st, SDXL_OK);
    return d;
}

static void test_tensor_lists_equal_diffusers_state_dicts(void **state)
{
    static const struct {
        const char *model, *component;
        size_t count;
        uint64_t params, hash;
    } expected[] = {
        {"sdxl-turbo", "unet", 1680, 2567463684ull, 0xda57876dadf33ca6ull},
        {"sdxl-turbo", "vae", 248, 83653863ull, 0x2d3bf2326fc37d7dull},
        {"sdxl-turbo", "text_encoder", 196, 123060480ull, 0xca4c9b7a6bc5d295ull},
        {"sdxl-turbo", "text_encoder_2", 517, 694659840ull, 0x51ba32b878db1674ull},
        {"tiny-a", "unet", 308, 1491780ull, 0x314d7fc9bc34213full},
        {"tiny-a", "vae", 184, 978103ull, 0x29b63d7bebb51219ull},
        {"tiny-a", "text_encoder", 52, 1621696ull, 0xf99742224c0b3c15ull},
        {"tiny-a", "text_encoder_2", 69, 2453136ull, 0xc93679c810b1106aull},
        {"tiny-b", "unet", 550, 3952636ull, 0xe578945c9456eeb7ull},
        {"tiny-b", "vae", 248, 205591ull, 0x53077ead471d460cull},
        {"tiny-b", "text_encoder", 36, 1198216ull, 0x4e6527d3a9800ba3ull},
        {"tiny-b", "text_encoder_2", 53, 2020800ull, 0xbf2d6bb5a7d46372ull},
    };
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        model_configs m;
        load_all(expected[i].model, &m);
        list_digest d = digest_component(&m, expected[i].component);
        if (d.count != expected[i].count || d.params != expected[i].params ||
            d.hash != expected[i].hash)
            print_error("%s %s: %zu tensors, %llu parameters, hash %016llx\n",
                        expected[i].model, expected[i].component, d.count,
                        (unsigned long long)d.params, (unsigned long long)d.hash);
        assert_int_equal(d.count, expected[i].count);
        assert_int_equal(d.params, expected[i].params);
        assert_int_equal(d.hash, expected[i].hash);
    }
}

typedef struct find_tensor {
    const char *name;
    model_tensor found;
    int64_t shape[MODEL_TENSOR_MAX_DIMS];
    int hits;
} find_tensor;

static sdxl_status match_tensor(void *ctx, const model_tensor *t, sdxl_error *err)
{
    find_tensor *f = ctx;
    if (strcmp(t->name, f->name) == 0) {
        f->found = *t;
        f->hits++;
    }
    return SDXL_OK;
}

/* A few tensors whose names and shapes carry SDXL's particular structure, spelled out. */
static void test_key_tensors_of_sdxl_turbo(void **state)
{
    model_configs m;
    load_all("sdxl-turbo", &m);
    static const struct {
        int component; /* 0 unet, 1 vae, 2 te2 */
        const char *name;
        model_tensor_kind kind;
        int ndim;
        int64_t shape[4];
    } cases[] = {
        {0, "down_blocks.1.attentions.0.transformer_blocks.1.ff.net.0.proj.weight",
         MODEL_TENSOR_LINEAR_WEIGHT, 2, {5120, 640}},
        {0, "down_blocks.2.attentions.1.transformer_blocks.9.attn2.to_k.weight",
         MODEL_TENSOR_LINEAR_WEIGHT, 2, {1280, 2048}},
        {0, "up_blocks.0.resnets.2.conv_shortcut.weight", MODEL_TENSOR_CONV_WEIGHT, 4,
         {1280, 1920, 1, 1}},
        {0, "up_blocks.2.resnets.0.norm1.weight", MODEL_TENSOR_NORM_SCALE, 1, {960}},
        {0, "add_embedding.linear_1.weight", MODEL_TENSOR_LINEAR_WEIGHT, 2, {1280, 2816}},
        {0, "down_blocks.0.downsamplers.0.conv.bias", MODEL_TENSOR_BIAS, 1, {320}},
        {0, "mid_block.attentions.0.proj_in.weight", MODEL_TENSOR_LINEAR_WEIGHT, 2, {1280, 1280}},
        {1, "encoder.conv_out.weight", MODEL_TENSOR_CONV_WEIGHT, 4, {8, 512, 3, 3}},
        {1, "decoder.up_blocks.3.resnets.0.conv_shortcut.weight", MODEL_TENSOR_CONV_WEIGHT, 4,
         {128, 256, 1, 1}},
        {1, "decoder.mid_block.attentions.0.to_q.bias", MODEL_TENSOR_BIAS, 1, {512}},
        {2, "text_projection.weight", MODEL_TENSOR_LINEAR_WEIGHT, 2, {1280, 1280}},
        {2, "text_model.embeddings.token_embedding.weight", MODEL_TENSOR_EMBEDDING, 2,
         {49408, 1280}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        find_tensor f = {.name = cases[i].name};
        sdxl_error err = {0};
        sdxl_status st = cases[i].component == 0
                             ? unet_tensors_for_each(&m.unet, match_tensor, &f, &err)
                         : cases[i].component == 1
                             ? vae_tensors_for_each(&m.vae, match_tensor, &f, &err)
                             : clip_tensors_for_each(&m.te2, match_tensor, &f, &err);
        assert_int_equal(st, SDXL_OK);
        if (f.hits != 1)
            print_error("%s: found %d times\n", cases[i].name, f.hits);
        assert_int_equal(f.hits, 1);
        assert_int_equal(f.found.kind, cases[i].kind);
        assert_int_equal(f.found.ndim, cases[i].ndim);
        for (int d = 0; d < cases[i].ndim; d++)
            assert_int_equal(f.found.shape[d], cases[i].shape[d]);
    }
    /* The attention of a plain DownBlock2D level and text-encoder-1 projections do not exist. */
    find_tensor f = {.name = "down_blocks.0.attentions.0.proj_in.weight"};
    assert_int_equal(unet_tensors_for_each(&m.unet, match_tensor, &f, NULL), SDXL_OK);
    assert_int_equal(f.hits, 0);
    f = (find_tensor){.name = "text_projection.weight"};
    assert_int_equal(clip_tensors_for_each(&m.te1, match_tensor, &f, NULL), SDXL_OK);
    assert_int_equal(f.hits, 0);
}

/* A callback failure stops the list and comes back unchanged. */
static sdxl_status fail_third(void *ctx, const model_tensor *t, sdxl_error *err)
{
    int *calls = ctx;
    if (++*calls == 3)
        return error_set(err, SDXL_ERR_IO, "disk full at %s", t->name);
    return SDXL_OK;
}

static void test_list_stops_at_the_first_failure(void **state)
{
    model_configs m;
    load_all("tiny-a", &m);
    int calls = 0;
    sdxl_error err = {0};
    assert_int_equal(unet_tensors_for_each(&m.unet, fail_third, &calls, &err), SDXL_ERR_IO);
    assert_int_equal(calls, 3);
    assert_string_equal(err.message, "disk full at time_embedding.linear_1.weight");
}

/* Copies MODEL/COMPONENT/config.json into dir/COMPONENT with `from` replaced by `to` (which
 * must occur), loads it with the component's loader and returns the status; the message goes to
 * err. */
static sdxl_status load_modified(const char *dir, const char *model, const char *component,
                                 const char *from, const char *to, sdxl_error *err)
{
    char src[1024], out_dir[1024], out[1100];
    config_dir(model, component, src, sizeof src);
    strcat(src, "/config.json");
    FILE *f = fopen(src, "rb");
    assert_non_null(f);
    static char text[8192], changed[8192];
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = '\0';
    char *at = strstr(text, from);
    if (!at)
        print_error("\"%s\" is not in %s\n", from, src);
    assert_non_null(at);
    snprintf(changed, sizeof changed, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    snprintf(out_dir, sizeof out_dir, "%s/%s", dir, component);
    mkdir(out_dir, 0777);
    snprintf(out, sizeof out, "%s/config.json", out_dir);
    f = fopen(out, "wb");
    assert_non_null(f);
    fputs(changed, f);
    fclose(f);
    if (strcmp(component, "unet") == 0) {
        unet_config cfg;
        return unet_config_load(out_dir, &cfg, err);
    }
    if (strcmp(component, "vae") == 0) {
        vae_config cfg;
        return vae_config_load(out_dir, &cfg, err);
    }
    clip_config cfg;
    return clip_config_load(out_dir, &cfg, err);
}

static void test_broken_configs_name_file_and_key(void **state)
{
    static const struct {
        const char *model, *component;
        const char *from, *to;
        sdxl_status status;
        const char *key; /* must appear in the message */
    } cases[] = {
#define UNET_B(...) {"tiny-b", "unet", __VA_ARGS__}
#define VAE_A(...) {"tiny-a", "vae", __VA_ARGS__}
#define TE1_A(...) {"tiny-a", "text_encoder", __VA_ARGS__}
#define TE2_A(...) {"tiny-a", "text_encoder_2", __VA_ARGS__}
        UNET_B("\"block_out_channels\"", "\"block_out_channelz\"", SDXL_ERR_NOT_FOUND,
               "\"block_out_channels\""),
        UNET_B("\"layers_per_block\": 1", "\"layers_per_block\": \"one\"", SDXL_ERR_FORMAT,
               "\"layers_per_block\""),
        UNET_B("\"attention_type\": \"default\"", "\"attention_type\": \"gated\"",
               SDXL_ERR_UNSUPPORTED, "\"attention_type\""),
        UNET_B("\"class_embed_type\": null", "\"class_embed_type\": \"timestep\"",
               SDXL_ERR_UNSUPPORTED, "\"class_embed_type\""),
        UNET_B("\"time_cond_proj_dim\": null", "\"time_cond_proj_dim\": 256", SDXL_ERR_UNSUPPORTED,
               "\"time_cond_proj_dim\""),
        UNET_B("\"DownBlock2D\",", "\"AttnDownBlock2D\",", SDXL_ERR_UNSUPPORTED,
               "\"down_block_types\""),
        UNET_B("\"UNetMidBlock2DCrossAttn\"", "\"UNetMidBlock2D\"", SDXL_ERR_UNSUPPORTED,
               "\"mid_block_type\""),
        UNET_B("\"transformer_layers_per_block\": [\n    1,\n    2,\n",
               "\"transformer_layers_per_block\": [\n    2,\n", SDXL_ERR_FORMAT,
               "\"transformer_layers_per_block\""),
        UNET_B("\"addition_embed_type\": \"text_time\"", "\"addition_embed_type\": null",
               SDXL_ERR_UNSUPPORTED, "\"addition_embed_type\""),
        UNET_B("\"use_linear_projection\": true", "\"use_linear_projection\": false",
               SDXL_ERR_UNSUPPORTED, "\"use_linear_projection\""),
        UNET_B("\"norm_num_groups\": 6", "\"norm_num_groups\": 5", SDXL_ERR_FORMAT,
               "norm_num_groups"),
        UNET_B("\"block_out_channels\": [\n    24", "\"block_out_channels\": [\n    -24",
               SDXL_ERR_FORMAT, "\"block_out_channels\""),
        UNET_B("\"act_fn\": \"silu\"", "\"act_fn\": \"gelu\"", SDXL_ERR_UNSUPPORTED, "\"act_fn\""),
        UNET_B("\"use_linear_projection\": true\n}", "\"use_linear_projection\": true\n",
               SDXL_ERR_FORMAT, "invalid JSON"),
        VAE_A("\"scaling_factor\": 0.13025",
              "\"scaling_factor\": 0.13025, \"latents_mean\": [0, 0, 0, 0]", SDXL_ERR_UNSUPPORTED,
              "\"latents_mean\""),
        VAE_A("\"UpDecoderBlock2D\"\n", "\"AttnUpDecoderBlock2D\"\n", SDXL_ERR_UNSUPPORTED,
              "\"up_block_types\""),
        VAE_A("\"norm_num_groups\": 8", "\"norm_num_groups\": 3", SDXL_ERR_FORMAT,
              "norm_num_groups"),
        TE1_A("\"quick_gelu\"", "\"gelu_new\"", SDXL_ERR_UNSUPPORTED, "\"hidden_act\""),
        TE1_A("\"CLIPTextModel\"", "\"CLIPVisionModel\"", SDXL_ERR_UNSUPPORTED,
              "\"architectures\""),
        TE2_A("\"architectures\"", "\"architecture\"", SDXL_ERR_NOT_FOUND, "\"architectures\""),
        TE2_A("\"num_attention_heads\": 4", "\"num_attention_heads\": 5", SDXL_ERR_FORMAT,
              "num_attention_heads"),
        TE2_A("\"hidden_size\": 48", "\"hidden_size\": 48.5", SDXL_ERR_FORMAT, "\"hidden_size\""),
#undef UNET_B
#undef VAE_A
#undef TE1_A
#undef TE2_A
    };
    char dir[512];
    assert_int_equal(test_make_temp_dir(dir, sizeof dir), SDXL_OK);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sdxl_error err = {0};
        sdxl_status st = load_modified(dir, cases[i].model, cases[i].component, cases[i].from,
                                       cases[i].to, &err);
        bool names_file = strstr(err.message, "config.json") != NULL;
        bool names_key = strstr(err.message, cases[i].key) != NULL;
        if (st != cases[i].status || !names_file || !names_key)
            print_error("case %zu (%s -> %s): %s: %s\n", i, cases[i].from, cases[i].to,
                        sdxl_status_name(st), err.message);
        assert_int_equal(st, cases[i].status);
        assert_true(names_file);
        assert_true(names_key);
    }
    unet_config cfg;
    sdxl_error err = {0};
    char missing[600];
    snprintf(missing, sizeof missing, "%s/nothing-here", dir);
    assert_int_equal(unet_config_load(missing, &cfg, &err), SDXL_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, "nothing-here/config.json"));
    assert_int_equal(test_remove_tree(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sdxl_turbo_configs_read_as_sdxl),
        cmocka_unit_test(test_tiny_configs_differ_and_broadcast_scalars),
        cmocka_unit_test(test_components_fit_together),
        cmocka_unit_test(test_tensor_lists_equal_diffusers_state_dicts),
        cmocka_unit_test(test_key_tensors_of_sdxl_turbo),
        cmocka_unit_test(test_list_stops_at_the_first_failure),
        cmocka_unit_test(test_broken_configs_name_file_and_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
