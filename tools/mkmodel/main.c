/*
 * mkmodel — writes a diffusers SDXL model directory with deterministic random weights.
 *
 *     mkmodel --config models/configs/NAME --seed N --dtype fp32|fp16|bf16 --out DIR
 *             [--vocab DIR]
 *
 * The configs are copied byte for byte, the CLIP vocabulary goes into tokenizer/ and
 * tokenizer_2/, and each of unet, vae, text_encoder and text_encoder_2 gets a safetensors file
 * named as on the Hugging Face Hub for the dtype (diffusion_pytorch_model.fp16.safetensors,
 * model.safetensors, ...) holding exactly the tensors diffusers and transformers expect for the
 * config. Weights depend only on (seed, component, tensor name), so the same arguments give
 * byte-identical files on any machine. See README.md beside this file.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/dtype.h"
#include "component.h"
#include "engine/clip_config.h"
#include "engine/clip_tensors.h"
#include "engine/unet_config.h"
#include "engine/unet_tensors.h"
#include "engine/vae_config.h"
#include "engine/vae_tensors.h"
#include "files.h"

typedef struct options {
    const char *config;
    const char *out;
    const char *vocab; /* NULL: CONFIG/../../vocab */
    uint64_t seed;
    dtype type;
    const char *dtype_flag;
} options;

static void usage(FILE *f)
{
    fprintf(f, "usage: mkmodel --config DIR --seed N --dtype fp32|fp16|bf16 --out DIR "
               "[--vocab DIR]\n"
               "  --config  a diffusers SDXL config folder, e.g. models/configs/tiny-a\n"
               "  --seed    unsigned 64-bit integer; the same seed gives the same bytes\n"
               "  --dtype   weight type: fp32 (plain file names) or fp16/bf16 (.fp16/.bf16 "
               "variant names)\n"
               "  --out     model directory to write (created; existing files are replaced)\n"
               "  --vocab   folder with the CLIP vocab.json and merges.txt "
               "(default: CONFIG/../../vocab)\n");
}

static int parse_args(int argc, char **argv, options *o)
{
    bool have_seed = false;
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (!strcmp(flag, "-h") || !strcmp(flag, "--help")) {
            usage(stdout);
            exit(0);
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "mkmodel: %s needs a value\n", flag);
            return 2;
        }
        const char *value = argv[++i];
        if (!strcmp(flag, "--config")) {
            o->config = value;
        } else if (!strcmp(flag, "--out")) {
            o->out = value;
        } else if (!strcmp(flag, "--vocab")) {
            o->vocab = value;
        } else if (!strcmp(flag, "--dtype")) {
            if (!dtype_parse_float_flag(value, &o->type)) {
                fprintf(stderr, "mkmodel: --dtype %s: expected fp32, fp16 or bf16\n", value);
                return 2;
            }
            o->dtype_flag = value;
        } else if (!strcmp(flag, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long seed = strtoull(value, &end, 10);
            if (errno || end == value || *end || value[0] == '-') {
                fprintf(stderr, "mkmodel: --seed %s: expected an unsigned 64-bit integer\n",
                        value);
                return 2;
            }
            o->seed = seed;
            have_seed = true;
        } else {
            fprintf(stderr, "mkmodel: unknown option %s\n", flag);
            usage(stderr);
            return 2;
        }
    }
    if (!o->config || !o->out || !o->dtype_flag || !have_seed) {
        fprintf(stderr, "mkmodel: --config, --seed, --dtype and --out are required\n");
        usage(stderr);
        return 2;
    }
    return 0;
}

static sdxl_status list_unet(const void *cfg, model_tensor_fn fn, void *ctx, sdxl_error *err)
{
    return unet_tensors_for_each(cfg, fn, ctx, err);
}

static sdxl_status list_vae(const void *cfg, model_tensor_fn fn, void *ctx, sdxl_error *err)
{
    return vae_tensors_for_each(cfg, fn, ctx, err);
}

static sdxl_status list_clip(const void *cfg, model_tensor_fn fn, void *ctx, sdxl_error *err)
{
    return clip_tensors_for_each(cfg, fn, ctx, err);
}

typedef struct model_configs {
    unet_config unet;
    vae_config vae;
    clip_config text_encoder;
    clip_config text_encoder_2;
} model_configs;

static sdxl_status load_configs(const char *dir, model_configs *m, sdxl_error *err)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/unet", dir);
    sdxl_status st = unet_config_load(path, &m->unet, err);
    if (!st) {
        snprintf(path, sizeof path, "%s/vae", dir);
        st = vae_config_load(path, &m->vae, err);
    }
    if (!st) {
        snprintf(path, sizeof path, "%s/text_encoder", dir);
        st = clip_config_load(path, &m->text_encoder, err);
    }
    if (!st) {
        snprintf(path, sizeof path, "%s/text_encoder_2", dir);
        st = clip_config_load(path, &m->text_encoder_2, err);
    }
    if (!st && (m->text_encoder.has_projection || !m->text_encoder_2.has_projection))
        st = error_set(err, SDXL_ERR_UNSUPPORTED,
                       "%s: SDXL needs text_encoder to be a CLIPTextModel and text_encoder_2 a "
                       "CLIPTextModelWithProjection (see their \"architectures\")",
                       dir);
    return st;
}

static double seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + 1e-9 * (double)(now.tv_nsec - start->tv_nsec);
}

static sdxl_status write_weights(const options *o, const model_configs *m, sdxl_error *err)
{
    const char *variant = o->type == DTYPE_F32 ? "" : o->type == DTYPE_F16 ? ".fp16" : ".bf16";
    const struct {
        const char *component, *file;
        component_list_fn list;
        const void *cfg;
    } parts[] = {
        {"unet", "diffusion_pytorch_model", list_unet, &m->unet},
        {"vae", "diffusion_pytorch_model", list_vae, &m->vae},
        {"text_encoder", "model", list_clip, &m->text_encoder},
        {"text_encoder_2", "model", list_clip, &m->text_encoder_2},
    };
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        char dir[1024], path[1100];
        snprintf(dir, sizeof dir, "%s/%s", o->out, parts[i].component);
        snprintf(path, sizeof path, "%s/%s%s.safetensors", dir, parts[i].file, variant);
        struct timespec start;
        clock_gettime(CLOCK_MONOTONIC, &start);
        component_stats stats;
        sdxl_status st = files_make_dir(dir, err);
        if (!st)
            st = component_write(path, parts[i].component, parts[i].list, parts[i].cfg, o->seed,
                                 o->type, &stats, err);
        if (st)
            return st;
        printf("%-15s %5zu tensors %13" PRIu64 " parameters %14" PRIu64 " bytes %7.1f s  %s\n",
               parts[i].component, stats.n_tensors, stats.n_params, stats.n_bytes,
               seconds_since(&start), path);
    }
    return SDXL_OK;
}

int main(int argc, char **argv)
{
    options o;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc;
    char vocab[1024];
    if (o.vocab)
        snprintf(vocab, sizeof vocab, "%s", o.vocab);
    else
        snprintf(vocab, sizeof vocab, "%s/../../vocab", o.config);

    sdxl_error err = {0};
    model_configs m;
    sdxl_status st = load_configs(o.config, &m, &err);
    char probe[1100];
    snprintf(probe, sizeof probe, "%s/vocab.json", vocab);
    FILE *f = st ? NULL : fopen(probe, "rb");
    if (!st && !f)
        st = error_set(&err, SDXL_ERR_NOT_FOUND,
                       "%s: cannot open (%s); pass --vocab with the folder holding the CLIP "
                       "vocab.json and merges.txt (models/vocab in the repository)",
                       probe, strerror(errno));
    if (f)
        fclose(f);
    if (!st)
        st = files_make_dir(o.out, &err);
    if (!st)
        st = files_copy_configs(o.config, vocab, o.out, &err);
    if (!st)
        st = write_weights(&o, &m, &err);
    if (st) {
        fprintf(stderr, "mkmodel: %s: %s\n", sdxl_status_name(st), err.message);
        return 1;
    }
    printf("mkmodel: wrote %s (seed %" PRIu64 ", %s)\n", o.out, o.seed, o.dtype_flag);
    return 0;
}
