/*
 * sdxl.h — the public C API of the sdxld engine (libsdxl).
 *
 * The only header other programs include. Every call that can fail returns an sdxl_status and,
 * when given a non-NULL sdxl_error, fills it with a message a user can act on (and, for a bad
 * parameter, the parameter's name). The library never exits or aborts on bad input.
 *
 * As in llama.h: the MODEL (immutable weights, loaded once) is separate from a SESSION (one
 * worker's activation memory and, on a GPU, its captured graphs). One session per worker
 * thread; several sessions may share one model. Their requests then take turns: a model runs
 * one request at a time (its backend's queue, scratch and plans serve every session), and each
 * gets the bits it would get alone. A session is not thread-safe; a model is, once open.
 *
 *     sdxl_model_params mp = sdxl_model_default_params();
 *     sdxl_model *model;  sdxl_session *session;  sdxl_error err;
 *     if (sdxl_model_open("models/sdxl-turbo", &mp, &model, &err)) { puts(err.message); ... }
 *     sdxl_session_open(model, &session, &err);
 *     sdxl_generate_params gp = sdxl_default_generate_params();
 *     gp.prompt = "a cat";  gp.init_image = &input;          // NULL init_image: txt2img
 *     sdxl_result result;
 *     if (sdxl_generate(session, &gp, &result, &err) == SDXL_OK) { ...; sdxl_result_free(&result); }
 *
 * Ownership: everything a call returns through an out-parameter is the caller's and is freed
 * with the matching *_free / *_close; everything passed in is borrowed for the call only.
 */
#ifndef SDXL_H
#define SDXL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes. Stable: values are never renumbered, new codes are appended. */
typedef enum sdxl_status {
    SDXL_OK = 0,
    SDXL_ERR_INVALID_ARGUMENT = 1, /* a value given by the caller is malformed or out of range */
    SDXL_ERR_NOT_FOUND = 2,        /* a file, tensor or configuration key does not exist */
    SDXL_ERR_IO = 3,               /* the operating system failed a read, write or map */
    SDXL_ERR_FORMAT = 4,           /* a file's or buffer's contents are malformed */
    SDXL_ERR_UNSUPPORTED = 5,      /* well-formed but not supported (a dtype, a class name) */
    SDXL_ERR_OUT_OF_MEMORY = 6,    /* an allocation failed or would exceed the memory budget */
    SDXL_ERR_LIMIT = 7,            /* over a configured limit (bytes, pixels, batch, steps) */
    SDXL_ERR_CANCELLED = 8,        /* stopped on request (progress callback, client) */
    SDXL_ERR_BACKEND = 9,          /* the compute device or its library failed */
    SDXL_ERR_INTERNAL = 10,        /* a bug: an invariant did not hold */
} sdxl_status;

#define SDXL_ERROR_MESSAGE_MAX 512
#define SDXL_ERROR_FIELD_MAX 64

/* A status code and a human-readable message saying what went wrong and what to do. For an
 * invalid parameter, field names it (e.g. "strength"); otherwise field is empty. */
typedef struct sdxl_error {
    sdxl_status code;
    char message[SDXL_ERROR_MESSAGE_MAX];
    char field[SDXL_ERROR_FIELD_MAX];
} sdxl_error;

/* ---- images ------------------------------------------------------------------------------ */

/* 8-bit RGB pixels, row-major, 3 bytes per pixel (HWC), no padding between rows. */
typedef struct sdxl_image {
    int width;
    int height;
    uint8_t *pixels; /* width * height * 3 bytes */
} sdxl_image;

/* ---- model ------------------------------------------------------------------------------- */

typedef struct sdxl_model sdxl_model;
typedef struct sdxl_session sdxl_session;

typedef enum sdxl_backend_kind {
    SDXL_BACKEND_AUTO = 0, /* cuda when built and a GPU is present, else cpu */
    SDXL_BACKEND_CPU = 1,
    SDXL_BACKEND_CUDA = 2,
} sdxl_backend_kind;

typedef enum sdxl_compute_dtype {
    SDXL_DTYPE_AUTO = 0, /* cpu: fp32; cuda: fp16 (dtype), and for vae_dtype bf16 when dtype
                          * is fp16 (SDXL's VAE overflows fp16), else dtype */
    SDXL_DTYPE_FP32 = 1,
    SDXL_DTYPE_FP16 = 2,
    SDXL_DTYPE_BF16 = 3,
} sdxl_compute_dtype;

/* Called while a model loads: done of total bytes of weights read. Return false to abort
 * (sdxl_model_open then fails with SDXL_ERR_CANCELLED). */
typedef bool (*sdxl_load_progress_fn)(void *user, uint64_t done, uint64_t total);

typedef struct sdxl_model_params {
    sdxl_backend_kind backend;
    int threads;                  /* cpu threads; 0 = every online core */
    int device;                   /* cuda device index */
    sdxl_compute_dtype dtype;     /* the text encoders and the UNet */
    sdxl_compute_dtype vae_dtype; /* the VAE; auto: bf16 when dtype is fp16, else dtype */
    uint64_t memory_budget_bytes; /* activations above this are refused before a run; 0 = none */
    bool vae_tiling;              /* tiled VAE encode/decode (large images in less memory) */
    int prompt_cache_entries;     /* LRU cache of prompt embeddings, in backend memory taken
                                   * at load (~320 KB per entry in fp16); 0 disables */
    sdxl_load_progress_fn load_progress;
    void *load_progress_user;
} sdxl_model_params;

sdxl_model_params sdxl_model_default_params(void);

/* Command-line spellings: "auto", "cpu", "cuda" and "auto", "fp32", "fp16", "bf16".
 * False (out untouched) for anything else. */
bool sdxl_backend_parse(const char *name, sdxl_backend_kind *out);
bool sdxl_dtype_parse(const char *name, sdxl_compute_dtype *out);

/* Opens a diffusers-layout model directory (model_index.json, unet/, vae/, text_encoder/,
 * text_encoder_2/, tokenizer/, tokenizer_2/, scheduler/), preferring *.fp16.safetensors. */
sdxl_status sdxl_model_open(const char *dir, const sdxl_model_params *params, sdxl_model **out,
                            sdxl_error *err);
void sdxl_model_close(sdxl_model *model);

typedef struct sdxl_model_info {
    const char *name;          /* the directory's base name */
    const char *backend;       /* "cpu" or "cuda" */
    const char *device;        /* e.g. "2-core x86_64 (AVX2)" or "NVIDIA H100 80GB HBM3" */
    uint64_t weight_bytes;     /* weights held in memory (host or device) */
    int default_width;         /* the UNet's sample_size × VAE scale factor */
    int default_height;
    int vae_scale_factor;      /* 8 for SDXL */
} sdxl_model_info;

/* Strings stay valid while the model is open. */
void sdxl_model_get_info(const sdxl_model *model, sdxl_model_info *out);

/* ---- session ----------------------------------------------------------------------------- */

sdxl_status sdxl_session_open(sdxl_model *model, sdxl_session **out, sdxl_error *err);
void sdxl_session_close(sdxl_session *session);

/* ---- generation -------------------------------------------------------------------------- */

typedef enum sdxl_stage {
    SDXL_STAGE_TEXT = 0,       /* tokenizers and text encoders */
    SDXL_STAGE_VAE_ENCODE = 1, /* img2img only */
    SDXL_STAGE_DENOISE = 2,    /* one event per UNet step */
    SDXL_STAGE_VAE_DECODE = 3,
} sdxl_stage;

typedef struct sdxl_progress {
    sdxl_stage stage;
    int step;        /* denoise: steps done so far, 1..total_steps; other stages: 0 */
    int total_steps; /* UNet steps this run will make (img2img: int(steps × strength)) */
} sdxl_progress;

/* Called at each stage and after each denoising step. Return false to cancel: the run stops
 * at the next check and sdxl_generate returns SDXL_ERR_CANCELLED. */
typedef bool (*sdxl_progress_fn)(void *user, const sdxl_progress *progress);

/* Called once per image as soon as it is ready (borrowed: copy what you keep). */
typedef void (*sdxl_image_fn)(void *user, int index, const sdxl_image *image, uint64_t seed);

/* Ranges (validated by sdxl_validate_params; each violation names its field). */
#define SDXL_MAX_STEPS 50
#define SDXL_MAX_BATCH 16
#define SDXL_MAX_SIDE 2048
#define SDXL_MAX_GUIDANCE 30.0f

typedef struct sdxl_generate_params {
    const char *prompt;             /* required (may be empty), UTF-8 */
    const char *negative_prompt;    /* used when guidance_scale > 1; NULL = none */
    const sdxl_image *init_image;   /* img2img when set; NULL = txt2img */
    int width;                      /* 0: img2img → the image's size rounded down to a multiple
                                     * of 8; txt2img → the model's default. Else a multiple of 8 */
    int height;
    int num_inference_steps;        /* default 2; 1..SDXL_MAX_STEPS */
    float strength;                 /* img2img only; default 0.8; (0, 1];
                                     * int(num_inference_steps × strength) must be ≥ 1 */
    float guidance_scale;           /* default 0.0; classifier-free guidance when > 1 */
    uint64_t seed;                  /* used when seed_set; else random (the one used is returned) */
    bool seed_set;
    int batch_size;                 /* default 1; image i uses seed + i */
    sdxl_progress_fn progress;
    void *progress_user;
    sdxl_image_fn on_image;
    void *on_image_user;
} sdxl_generate_params;

sdxl_generate_params sdxl_default_generate_params(void);

/* Checks every parameter against the model (no computation): the first invalid one is named
 * in err->field with a message saying the accepted range. */
sdxl_status sdxl_validate_params(const sdxl_model *model, const sdxl_generate_params *params,
                                 sdxl_error *err);

/* Milliseconds spent per stage in one sdxl_generate call. */
typedef struct sdxl_timings {
    double text_ms;
    double vae_encode_ms;
    double unet_ms;       /* all denoising steps */
    double vae_decode_ms;
    double total_ms;
    int unet_steps;       /* steps actually run */
} sdxl_timings;

typedef struct sdxl_result {
    int n_images;
    sdxl_image *images; /* n_images, each width × height × 3 */
    uint64_t *seeds;    /* seeds[i] made images[i] */
    sdxl_timings timings;
} sdxl_result;

/* Generates batch_size images (img2img when init_image is set, else txt2img). Equal to
 * diffusers' StableDiffusionXLImg2ImgPipeline / StableDiffusionXLPipeline for the same
 * weights, parameters and seed (torch.Generator("cpu").manual_seed(seed + i) per image). */
sdxl_status sdxl_generate(sdxl_session *session, const sdxl_generate_params *params,
                          sdxl_result *out, sdxl_error *err);
void sdxl_result_free(sdxl_result *result);

/* Bytes of activation memory a run of this size needs on this model's backend (for admission
 * control before queueing). */
sdxl_status sdxl_estimate_memory(const sdxl_model *model, int width, int height, int batch_size,
                                 bool img2img, uint64_t *bytes, sdxl_error *err);

/* The name of a status code, e.g. "SDXL_ERR_FORMAT"; "SDXL_ERR_UNKNOWN" for other values. */
const char *sdxl_status_name(sdxl_status code);

#ifdef __cplusplus
}
#endif

#endif /* SDXL_H */
