/*
 * pipeline_model.c — opening a diffusers SDXL directory: the backend, the text encoders, the
 * UNet, the VAE and the scheduler's config, checked to fit together (see pipeline.h).
 *
 * The weight files are looked at (headers only) before anything loads, so that the load
 * progress has a true total and a missing file is reported before minutes of loading.
 */
#include "engine/pipeline.h"

#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "engine/unet_config.h"

/* The weight files sdxl_model_open loads: component folder and file base name. */
static const char *const COMPONENTS[][2] = {
    {"text_encoder", "model"},
    {"text_encoder_2", "model"},
    {"unet", "diffusion_pytorch_model"},
    {"vae", "diffusion_pytorch_model"},
};

/* Bytes of tensor data in the files (what loading reads) and as the backends store them. */
static sdxl_status weight_sizes(const char *dir, const sdxl_model *m, uint64_t *file_bytes,
                                uint64_t *held_bytes, sdxl_error *err)
{
    *file_bytes = *held_bytes = 0;
    for (size_t c = 0; c < sizeof COMPONENTS / sizeof COMPONENTS[0]; c++) {
        char path[1024];
        SDXL_TRY(weights_find_file(dir, COMPONENTS[c][0], COMPONENTS[c][1], path, sizeof path, err));
        bool is_vae = strcmp(COMPONENTS[c][0], "vae") == 0;
        dtype stored = backend_compute_type(is_vae ? m->vae_be : m->be);
        safetensors_file f;
        SDXL_TRY(safetensors_open(&f, path, err));
        for (size_t i = 0; i < f.n_tensors; i++) {
            *file_bytes += f.tensors[i].nbytes;
            *held_bytes += (uint64_t)f.tensors[i].numel * dtype_size(stored);
        }
        safetensors_close(&f);
    }
    return SDXL_OK;
}

static void describe_cpu(char *out, size_t n)
{
    struct utsname u;
    const char *arch = uname(&u) == 0 ? u.machine : "unknown";
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    const char *simd = "";
#if defined(__x86_64__) || defined(__i386__)
    if (__builtin_cpu_supports("avx512f"))
        simd = " (AVX-512)";
    else if (__builtin_cpu_supports("avx2"))
        simd = " (AVX2)";
#endif
    snprintf(out, n, "%ld-core %s%s", cores, arch, simd);
}

static sdxl_status check_dtype(sdxl_compute_dtype t, const char *field, sdxl_error *err)
{
    if ((int)t >= (int)SDXL_DTYPE_AUTO && (int)t <= (int)SDXL_DTYPE_BF16)
        return SDXL_OK;
    return error_field(err,
                       error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                                 "%s %d is unknown; use auto, fp32, fp16 or bf16", field, (int)t),
                       field);
}

static const dtype GPU_TYPES[] = {DTYPE_F16, DTYPE_F32, DTYPE_F16, DTYPE_BF16};

/* The VAE's type on a GPU: as asked, else bf16 beside fp16 (SDXL's VAE overflows fp16), else
 * the UNet's. */
static dtype gpu_vae_type(const sdxl_model_params *p, dtype unet_type)
{
    if (p->vae_dtype != SDXL_DTYPE_AUTO)
        return GPU_TYPES[p->vae_dtype];
    return unet_type == DTYPE_F16 ? DTYPE_BF16 : unet_type;
}

static const char *type_word(dtype t)
{
    return t == DTYPE_F16 ? "fp16" : t == DTYPE_BF16 ? "bf16" : "fp32";
}

/* A second cuda backend for the VAE when its type differs (its own queue: pipeline.c orders
 * the two with backend_wait_for). */
static sdxl_status create_vae_backend(const sdxl_model_params *p, backend_params bp,
                                      sdxl_model *m, sdxl_error *err)
{
    dtype unet_type = bp.compute_type, vae_type = gpu_vae_type(p, unet_type);
    snprintf(m->device, sizeof m->device, "cuda device %d (%s, VAE %s)", p->device,
             type_word(unet_type), type_word(vae_type));
    if (vae_type == unet_type) {
        m->vae_be = m->be;
        return SDXL_OK;
    }
    bp.compute_type = vae_type;
    return backend_create("cuda", &bp, &m->vae_be, err);
}

static sdxl_status create_backend(const sdxl_model_params *p, sdxl_model *m, sdxl_error *err)
{
    if (p->backend != SDXL_BACKEND_AUTO && p->backend != SDXL_BACKEND_CPU &&
        p->backend != SDXL_BACKEND_CUDA)
        return error_field(err,
                           error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                                     "backend %d is unknown; use auto, cpu or cuda",
                                     (int)p->backend),
                           "backend");
    SDXL_TRY(check_dtype(p->dtype, "dtype", err));
    SDXL_TRY(check_dtype(p->vae_dtype, "vae_dtype", err));
    if (p->threads < 0)
        return error_field(err,
                           error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                                     "threads %d: give a count of cpu threads, or 0 for every "
                                     "online core",
                                     p->threads),
                           "threads");
    backend_params bp = backend_default_params();
    bp.n_threads = p->threads;
    bp.device = p->device;
    if (p->backend != SDXL_BACKEND_CPU) {
        /* auto, fp32, fp16, bf16: a GPU computes in fp16 unless told otherwise */
        bp.compute_type = GPU_TYPES[p->dtype];
        sdxl_status st = backend_create("cuda", &bp, &m->be, err);
        if (st == SDXL_OK) {
            st = create_vae_backend(p, bp, m, err);
            return st ? error_field(err, st, "vae_dtype") : SDXL_OK;
        }
        if (p->backend == SDXL_BACKEND_CUDA)
            return error_field(err, st, "backend");
        error_clear(err); /* auto: no usable GPU, so the cpu */
    }
    const char *field = p->dtype != SDXL_DTYPE_AUTO && p->dtype != SDXL_DTYPE_FP32 ? "dtype"
                        : p->vae_dtype != SDXL_DTYPE_AUTO && p->vae_dtype != SDXL_DTYPE_FP32
                            ? "vae_dtype"
                            : NULL;
    if (field)
        return error_field(err,
                           error_set(err, SDXL_ERR_UNSUPPORTED,
                                     "the cpu backend computes in fp32 only; use %s auto or "
                                     "fp32 (fp16 weight files are converted when loaded)",
                                     field),
                           field);
    bp.compute_type = DTYPE_F32;
    SDXL_TRY(backend_create("cpu", &bp, &m->be, err));
    m->vae_be = m->be;
    describe_cpu(m->device, sizeof m->device);
    return SDXL_OK;
}

/* The parts must agree on the shapes they pass each other. */
static sdxl_status check_fit(const sdxl_model *m, sdxl_error *err)
{
    const unet_config *u = &m->unet->cfg;
    int64_t embed = prompt_encoder_embed_dim(m->text), pooled = prompt_encoder_pooled_dim(m->text);
    if (u->cross_attention_dim != embed || m->unet->pooled_dim != pooled)
        return error_set(err, SDXL_ERR_FORMAT,
                         "%s: the text encoders give embeddings %lld wide and a pooled "
                         "embedding %lld wide, but the UNet takes %d and %d "
                         "(cross_attention_dim, projection_class_embeddings_input_dim)",
                         m->dir, (long long)embed, (long long)pooled, u->cross_attention_dim,
                         m->unet->pooled_dim);
    int latent = vae_latent_channels(m->vae);
    if (u->in_channels != latent || u->out_channels != latent)
        return error_set(err, SDXL_ERR_FORMAT,
                         "%s: the VAE has %d latent channels but the UNet takes %d and gives %d",
                         m->dir, latent, u->in_channels, u->out_channels);
    return SDXL_OK;
}

static void set_name(sdxl_model *m, const char *dir)
{
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        len--;
    size_t start = len;
    while (start > 0 && dir[start - 1] != '/')
        start--;
    snprintf(m->name, sizeof m->name, "%.*s", (int)(len - start), dir + start);
}

static sdxl_status load_parts(const char *dir, const sdxl_model_params *p, sdxl_model *m,
                              sdxl_error *err)
{
    uint64_t file_bytes;
    SDXL_TRY(create_backend(p, m, err));
    SDXL_TRY(weight_sizes(dir, m, &file_bytes, &m->weight_bytes, err));
    weights_progress progress = {.total = file_bytes, .fn = p->load_progress,
                                 .user = p->load_progress_user};
    prompt_encoder_params pp = {.shipped_vocab_dir = NULL,
                                .cache_entries = p->prompt_cache_entries > 0
                                                     ? (size_t)p->prompt_cache_entries
                                                     : 0,
                                .progress = &progress};
    SDXL_TRY(prompt_encoder_load(dir, m->be, &pp, &m->text, err));
    SDXL_TRY(unet_load(dir, m->be, &m->unet, &progress, err));
    SDXL_TRY(vae_load(dir, m->vae_be, &m->vae, &progress, err));
    char path[1024];
    snprintf(path, sizeof path, "%s/scheduler/scheduler_config.json", dir);
    SDXL_TRY(scheduler_config_load(path, &m->scheduler_cfg, err));
    SDXL_TRY(check_fit(m, err));

    m->tiling = vae_default_tiling(m->vae);
    m->tiling.enabled = p->vae_tiling;
    int scale = vae_scale(m->vae);
    int sample = m->unet->cfg.sample_size > 0 ? m->unet->cfg.sample_size * scale
                                              : m->vae->cfg.sample_size;
    m->limits = (pipeline_limits){.vae_scale = scale,
                                  .default_width = sample,
                                  .default_height = sample,
                                  .latent_channels = vae_latent_channels(m->vae),
                                  .scaling_factor = vae_scaling_factor(m->vae)};
    return SDXL_OK;
}

sdxl_status pipeline_model_load(const char *dir, const sdxl_model_params *params, sdxl_model *m,
                                sdxl_error *err)
{
    memset(m, 0, sizeof *m);
    if (snprintf(m->dir, sizeof m->dir, "%s", dir) >= (int)sizeof m->dir)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "model path too long: %s", dir);
    m->memory_budget = params->memory_budget_bytes;
    set_name(m, dir);
    sdxl_status st = load_parts(dir, params, m, err);
    if (st != SDXL_OK) {
        pipeline_model_unload(m);
        return error_prefix(err, st, "opening model %s", dir);
    }
    return SDXL_OK;
}

void pipeline_model_unload(sdxl_model *m)
{
    vae_free(m->vae);
    unet_free(m->unet);
    prompt_encoder_free(m->text);
    if (m->vae_be != m->be)
        backend_destroy(m->vae_be);
    backend_destroy(m->be);
    m->vae = NULL;
    m->unet = NULL;
    m->text = NULL;
    m->vae_be = NULL;
    m->be = NULL;
}
