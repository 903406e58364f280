/*
 * request.c — parsing and validating generation requests (see request.h).
 */
#include "server/request.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "sdxl/v1/image_generation.pb-c.h"

#define DEFAULT_STEPS 2
#define DEFAULT_STRENGTH 0.8f
#define DEFAULT_QUALITY 90

/* The fields both request messages share, with presence. */
typedef struct raw_request {
    const char *prompt, *negative_prompt, *request_id;
    const ProtobufCBinaryData *image; /* NULL for txt2img */
    bool has_steps, has_strength, has_guidance, has_seed, has_quality, has_batch;
    int32_t steps, quality, batch, width, height;
    float strength, guidance;
    uint64_t seed;
    int format;
    bool thumbnail;
} raw_request;

bool request_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        size_t n;
        unsigned cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i <= n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

void request_new_id(char out[REQUEST_ID_MAX])
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) {
        /* No entropy source: ids need only be unique in this process. */
        static _Atomic uint64_t counter;
        r = ++counter * 0x9e3779b97f4a7c15ull;
    }
    snprintf(out, REQUEST_ID_MAX, "req-%016llx", (unsigned long long)r);
}

static bool request_id_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("._:/@+=-", c));
}

static void check_text(server_error *e, const char *field, const char *s)
{
    size_t len = strlen(s);
    if (len > REQUEST_PROMPT_MAX)
        server_error_add_violation(e, field, "%zu bytes: at most %d", len, REQUEST_PROMPT_MAX);
    else if (!request_utf8_valid(s, len))
        server_error_add_violation(e, field, "not valid UTF-8");
}

static void check_size(server_error *e, const char *field, int32_t v)
{
    if (v != 0 && (v < 8 || v > SDXL_MAX_SIDE || v % 8 != 0))
        server_error_add_violation(e, field, "%d: must be 0 (automatic) or a multiple of 8 in "
                                   "[8, %d]", (int)v, SDXL_MAX_SIDE);
}

/* Checks every parameter and fills out's scalars; the violations accumulate in e. */
static void check_parameters(server_method method, const raw_request *raw,
                             const request_limits *lim, gen_request *out, server_error *e)
{
    bool img2img = raw->image != NULL;
    check_text(e, "prompt", raw->prompt);
    check_text(e, "negative_prompt", raw->negative_prompt);
    size_t id_len = strlen(raw->request_id);
    bool id_ok = id_len < REQUEST_ID_MAX;
    for (size_t i = 0; id_ok && i < id_len; i++)
        id_ok = request_id_char(raw->request_id[i]);
    if (!id_ok)
        server_error_add_violation(e, "request_id", "at most %d characters from A-Z a-z 0-9 "
                                   "and ._:/@+=-", REQUEST_ID_MAX - 1);

    out->steps = raw->has_steps ? raw->steps : DEFAULT_STEPS;
    if (out->steps < 1 || out->steps > lim->max_steps)
        server_error_add_violation(e, "num_inference_steps", "%d: must be in [1, %d]",
                                   (int)out->steps, lim->max_steps);
    out->strength = img2img ? (raw->has_strength ? raw->strength : DEFAULT_STRENGTH) : 0.0f;
    bool strength_ok = !img2img || (isfinite(out->strength) && out->strength > 0.0f &&
                                    out->strength <= 1.0f);
    if (!strength_ok)
        server_error_add_violation(e, "strength", "%g: must be in (0, 1]", (double)out->strength);
    /* diffusers runs int(num_inference_steps × strength) steps and fails on none. */
    if (img2img && strength_ok && out->steps >= 1 && out->steps <= lim->max_steps &&
        (int)((double)out->steps * (double)out->strength) < 1)
        server_error_add_violation(e, "strength", "num_inference_steps × strength = %d × %g < 1: "
                                   "no denoising step would run; raise either",
                                   (int)out->steps, (double)out->strength);
    out->guidance_scale = raw->has_guidance ? raw->guidance : 0.0f;
    if (!isfinite(out->guidance_scale) || out->guidance_scale < 0.0f ||
        out->guidance_scale > SDXL_MAX_GUIDANCE)
        server_error_add_violation(e, "guidance_scale", "%g: must be in [0, %g]",
                                   (double)out->guidance_scale, (double)SDXL_MAX_GUIDANCE);
    out->batch_size = raw->has_batch ? raw->batch : 1;
    if (method == METHOD_IMG2IMG && out->batch_size != 1)
        server_error_add_violation(e, "batch_size", "%d: Img2Img makes one image; use "
                                   "Img2ImgBatch or Img2ImgStream for more",
                                   (int)out->batch_size);
    else if (out->batch_size < 1 || out->batch_size > lim->max_batch)
        server_error_add_violation(e, "batch_size", "%d: must be in [1, %d]",
                                   (int)out->batch_size, lim->max_batch);
    check_size(e, "width", raw->width);
    check_size(e, "height", raw->height);
    if (raw->format < SDXL__V1__IMAGE_FORMAT__IMAGE_FORMAT_PNG ||
        raw->format > SDXL__V1__IMAGE_FORMAT__IMAGE_FORMAT_WEBP)
        server_error_add_violation(e, "output_format", "%d: must be PNG (0), JPEG (1) or WEBP "
                                   "(2)", raw->format);
    out->format = raw->format == SDXL__V1__IMAGE_FORMAT__IMAGE_FORMAT_JPEG ? IMAGE_FORMAT_JPEG
                  : raw->format == SDXL__V1__IMAGE_FORMAT__IMAGE_FORMAT_WEBP ? IMAGE_FORMAT_WEBP
                                                                             : IMAGE_FORMAT_PNG;
    out->quality = raw->has_quality ? raw->quality : DEFAULT_QUALITY;
    if (out->quality < 1 || out->quality > 100)
        server_error_add_violation(e, "quality", "%d: must be in [1, 100]", (int)out->quality);
    if (img2img && raw->image->len == 0)
        server_error_add_violation(e, "image", "required: the input image's PNG, JPEG or WEBP "
                                   "bytes");
    out->seed_set = raw->has_seed;
    out->seed = raw->seed;
    out->thumbnail = raw->thumbnail;
}

static char *dup_text(const char *s)
{
    return strdup(s ? s : "");
}

static bool decode_input(const ProtobufCBinaryData *data, const request_limits *lim,
                         gen_request *out, server_error *e)
{
    image_limits limits = image_default_limits();
    limits.max_bytes = lim->max_image_bytes;
    limits.max_pixels = lim->max_pixels;
    image_decode_info info;
    sdxl_error err;
    if (image_decode(data->data, data->len, &limits, &out->input, &info, &err) == SDXL_OK) {
        out->has_input = true;
        return true;
    }
    if (info.problem == IMAGE_PROBLEM_OUT_OF_MEMORY)
        server_error_set(e, REASON_OUT_OF_MEMORY, "retry later or send a smaller image",
                         "decoding the image: %s", err.message);
    else if (image_problem_is_too_large(info.problem))
        server_error_set(e, REASON_IMAGE_TOO_LARGE, "send a smaller image (fewer bytes or "
                         "pixels), or raise --max-image-bytes / --max-pixels on the server",
                         "image: %s", err.message);
    else
        server_error_set(e, REASON_INVALID_IMAGE, "send the bytes of a complete PNG, JPEG or "
                         "WEBP file", "image: %s (%s)", err.message,
                         image_problem_name(info.problem));
    server_error_add_violation(e, "image", "%s", err.message);
    return false;
}

/* The output size: a given side, else the input's rounded down to a multiple of 8 (img2img) or
 * the model's (txt2img); then the pixel limit. */
static bool resolve_size(const raw_request *raw, const request_limits *lim, gen_request *out,
                         server_error *e)
{
    out->width = raw->width ? raw->width
                 : out->has_input ? out->input.width / 8 * 8 : lim->default_width;
    out->height = raw->height ? raw->height
                  : out->has_input ? out->input.height / 8 * 8 : lim->default_height;
    if (out->width < 8 || out->height < 8 || out->width > SDXL_MAX_SIDE ||
        out->height > SDXL_MAX_SIDE) {
        server_error_set(e, REASON_INVALID_PARAMETER, "send an image of at least 8 × 8 pixels "
                         "or set width and height", "output size %d × %d: each side must be in "
                         "[8, %d]", out->width, out->height, SDXL_MAX_SIDE);
        server_error_add_violation(e, raw->width ? "height" : "width", "%s", e->message);
        return false;
    }
    if ((size_t)out->width * (size_t)out->height > lim->max_pixels) {
        server_error_set(e, REASON_INVALID_PARAMETER, "ask for a smaller width × height, or "
                         "raise --max-pixels on the server", "output size %d × %d is over the "
                         "limit of %zu pixels", out->width, out->height, lim->max_pixels);
        server_error_add_violation(e, "width", "%s", e->message);
        return false;
    }
    return true;
}

bool request_parse(server_method method, const uint8_t *data, size_t len,
                   const request_limits *lim, gen_request *out, server_error *e)
{
    memset(out, 0, sizeof *out);
    memset(e, 0, sizeof *e);
    out->method = method;
    raw_request raw = {0};
    Sdxl__V1__Img2ImgRequest *i2i = NULL;
    Sdxl__V1__Txt2ImgRequest *t2i = NULL;
    if (method == METHOD_TXT2IMG) {
        t2i = sdxl__v1__txt2_img_request__unpack(NULL, len, data);
        if (t2i) {
            raw = (raw_request){
                .prompt = t2i->prompt, .negative_prompt = t2i->negative_prompt,
                .request_id = t2i->request_id,
                .has_steps = t2i->_num_inference_steps_case != 0, .steps = t2i->num_inference_steps,
                .has_guidance = t2i->_guidance_scale_case != 0, .guidance = t2i->guidance_scale,
                .has_seed = t2i->_seed_case != 0, .seed = t2i->seed,
                .has_quality = t2i->_quality_case != 0, .quality = t2i->quality,
                .has_batch = t2i->_batch_size_case != 0, .batch = t2i->batch_size,
                .width = t2i->width, .height = t2i->height, .format = (int)t2i->output_format,
                .thumbnail = t2i->thumbnail};
        }
    } else {
        i2i = sdxl__v1__img2_img_request__unpack(NULL, len, data);
        if (i2i) {
            raw = (raw_request){
                .prompt = i2i->prompt, .negative_prompt = i2i->negative_prompt,
                .request_id = i2i->request_id, .image = &i2i->image,
                .has_steps = i2i->_num_inference_steps_case != 0, .steps = i2i->num_inference_steps,
                .has_strength = i2i->_strength_case != 0, .strength = i2i->strength,
                .has_guidance = i2i->_guidance_scale_case != 0, .guidance = i2i->guidance_scale,
                .has_seed = i2i->_seed_case != 0, .seed = i2i->seed,
                .has_quality = i2i->_quality_case != 0, .quality = i2i->quality,
                .has_batch = i2i->_batch_size_case != 0, .batch = i2i->batch_size,
                .width = i2i->width, .height = i2i->height, .format = (int)i2i->output_format,
                .thumbnail = i2i->thumbnail};
        }
    }
    if (!i2i && !t2i) {
        server_error_set(e, REASON_INVALID_REQUEST, "send a serialized sdxl.v1 request message "
                         "(generate the client from proto/sdxl/v1/image_generation.proto)",
                         "the %zu-byte request is not a valid %s message", len,
                         method == METHOD_TXT2IMG ? "Txt2ImgRequest" : "Img2ImgRequest");
        return false;
    }

    check_parameters(method, &raw, lim, out, e);
    bool ok = e->n_violations == 0;
    if (!ok) {
        char fields[256] = "";
        size_t used = 0;
        for (int i = 0; i < e->n_violations && used < sizeof fields; i++)
            used += (size_t)snprintf(fields + used, sizeof fields - used, "%s%s", i ? ", " : "",
                                     e->violations[i].field);
        server_error tmp = *e;
        server_error_set(e, REASON_INVALID_PARAMETER, "fix the named fields; docs/API.md lists "
                         "every parameter's range", "invalid %s: %s%s%s",
                         e->n_violations > 1 ? "parameters" : "parameter", fields,
                         tmp.n_violations == 1 ? ": " : "",
                         tmp.n_violations == 1 ? tmp.violations[0].description : "");
        memcpy(e->field, tmp.field, sizeof e->field);
        e->n_violations = tmp.n_violations;
        memcpy(e->violations, tmp.violations, sizeof e->violations);
    }
    if (ok && raw.image)
        ok = decode_input(raw.image, lim, out, e);
    if (ok)
        ok = resolve_size(&raw, lim, out, e);
    if (ok) {
        out->prompt = dup_text(raw.prompt);
        out->negative_prompt = dup_text(raw.negative_prompt);
        if (!out->prompt || !out->negative_prompt) {
            server_error_set(e, REASON_OUT_OF_MEMORY, "retry later", "out of memory");
            ok = false;
        }
    }
    if (ok) {
        if (raw.request_id[0])
            snprintf(out->request_id, sizeof out->request_id, "%s", raw.request_id);
        else
            request_new_id(out->request_id);
    }
    if (i2i)
        sdxl__v1__img2_img_request__free_unpacked(i2i, NULL);
    if (t2i)
        sdxl__v1__txt2_img_request__free_unpacked(t2i, NULL);
    if (!ok)
        gen_request_free(out);
    return ok;
}

void gen_request_free(gen_request *r)
{
    free(r->prompt);
    free(r->negative_prompt);
    image_free(&r->input);
    r->prompt = r->negative_prompt = NULL;
    r->has_input = false;
}
