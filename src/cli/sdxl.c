/*
 * sdxl.c — the command-line client of sdxld (its gRPC calls: sdxl_client.c), with protobuf-c:
 * img2img and batch (through Img2ImgStream, printing progress), txt2img, status and health.
 * Files in, files out.
 *
 *     build/sdxl img2img --image in.png --prompt "a cat" --out out.png
 *     build/sdxl batch --image in.png --prompt "a cat" --batch-size 4 --out cat.png  # cat-0.png …
 *     build/sdxl txt2img --prompt "a cat" --out cat.png
 *     build/sdxl status
 *     build/sdxl health
 *
 * Exit status: 0 success, 1 the server answered an error (printed with its reason, field and
 * resolution), 2 bad usage or a local file problem.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/support/time.h>

#include "cli/sdxl_client.h"
#include "grpc/health/v1/health.pb-c.h"
#include "base/file.h"
#include "sdxl/v1/image_generation.pb-c.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sdxl [--server ADDR] [--token-file PATH] [--timeout SECONDS] COMMAND [flags]\n"
            "\n"
            "  ADDR: HOST:PORT or unix:PATH (default 127.0.0.1:50051)\n"
            "\n"
            "commands:\n"
            "  img2img  --image FILE --prompt TEXT [--out FILE]   one image, progress on stderr\n"
            "  batch    --image FILE --prompt TEXT --batch-size N [--out FILE]\n"
            "           images FILE-0.EXT … FILE-(N-1).EXT, each written as soon as it is ready\n"
            "  txt2img  --prompt TEXT [--batch-size N] [--out FILE]\n"
            "  status   queue, running job, estimates, model\n"
            "  health   grpc.health.v1 Check (exit 0 when SERVING)\n"
            "\n"
            "generation flags (unset: the server's defaults, see docs/API.md):\n"
            "  --negative-prompt TEXT  --steps N  --strength F  --guidance F  --seed N\n"
            "  --width N  --height N  --format png|jpeg|webp  --quality N  --thumbnail\n"
            "  --request-id ID\n");
}

static double now_s(void)
{
    gpr_timespec t = gpr_now(GPR_CLOCK_MONOTONIC);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static bool read_file(const char *path, uint8_t **data, size_t *len)
{
    sdxl_error err;
    if (file_read_all(path, 0, data, len, &err) == SDXL_OK)
        return true;
    fprintf(stderr, "sdxl: %s\n", err.message);
    return false;
}

static bool write_file(const char *path, const uint8_t *data, size_t len)
{
    sdxl_error err;
    if (file_write_all(path, data, len, &err) == SDXL_OK)
        return true;
    fprintf(stderr, "sdxl: %s\n", err.message);
    return false;
}

/* "out.png" with index 2 of several → "out-2.png"; one image → "out.png". */
static void output_path(const char *out, int index, bool several, char *path, size_t cap)
{
    const char *dot = strrchr(out, '.');
    const char *slash = strrchr(out, '/');
    if (!several) {
        snprintf(path, cap, "%s", out);
    } else if (dot && (!slash || dot > slash)) {
        snprintf(path, cap, "%.*s-%d%s", (int)(dot - out), out, index, dot);
    } else {
        snprintf(path, cap, "%s-%d", out, index);
    }
}

/* ---- generation ---------------------------------------------------------------------- */

typedef struct gen_flags {
    const char *image, *prompt, *negative, *out, *request_id;
    int steps, batch, width, height, quality;
    float strength, guidance;
    uint64_t seed;
    bool has_steps, has_batch, has_quality, has_strength, has_guidance, has_seed, thumbnail;
    Sdxl__V1__ImageFormat format;
} gen_flags;

typedef struct gen_state {
    const gen_flags *flags;
    bool several;
    int written;
    bool failed;
} gen_state;

static const char *stage_name(Sdxl__V1__Stage stage)
{
    switch (stage) {
    case SDXL__V1__STAGE__STAGE_TEXT:
        return "text";
    case SDXL__V1__STAGE__STAGE_VAE_ENCODE:
        return "vae-encode";
    case SDXL__V1__STAGE__STAGE_DENOISE:
        return "denoise";
    case SDXL__V1__STAGE__STAGE_VAE_DECODE:
        return "vae-decode";
    default:
        return "queued";
    }
}

static void save_image(gen_state *st, const Sdxl__V1__GeneratedImage *img)
{
    char path[4096];
    output_path(st->flags->out, img->index, st->several, path, sizeof path);
    if (!write_file(path, img->data.data, img->data.len)) {
        st->failed = true;
        return;
    }
    st->written++;
    printf("%s  %dx%d  seed %" PRIu64 "\n", path, img->width, img->height, img->seed);
    if (img->thumbnail.len) {
        char thumb[4200];
        snprintf(thumb, sizeof thumb, "%s.thumb.webp", path);
        if (!write_file(thumb, img->thumbnail.data, img->thumbnail.len))
            st->failed = true;
    }
}

static void print_metadata(const Sdxl__V1__GenerationMetadata *m)
{
    if (!m)
        return;
    fprintf(stderr, "request %s", m->request_id);
    if (m->timings)
        fprintf(stderr, ": queue %.0f ms, inference %.0f ms (text %.0f, vae-encode %.0f, unet "
                        "%.0f, vae-decode %.0f), encode %.0f ms, total %.0f ms",
                m->timings->queue_wait_ms, m->timings->inference_ms, m->timings->text_ms,
                m->timings->vae_encode_ms, m->timings->unet_ms, m->timings->vae_decode_ms,
                m->timings->encode_ms, m->timings->total_ms);
    fprintf(stderr, "\n");
}

static bool on_event(void *user, const uint8_t *data, size_t len)
{
    gen_state *st = user;
    Sdxl__V1__GenerationEvent *ev = sdxl__v1__generation_event__unpack(NULL, len, data);
    if (!ev) {
        fprintf(stderr, "sdxl: the server sent a malformed event\n");
        st->failed = true;
        return false;
    }
    switch (ev->event_case) {
    case SDXL__V1__GENERATION_EVENT__EVENT_QUEUED:
        if (ev->queued->estimated_wait_ms >= 0)
            fprintf(stderr, "queued at position %d (about %.1f s)\n", ev->queued->position,
                    ev->queued->estimated_wait_ms / 1000.0);
        else
            fprintf(stderr, "queued at position %d\n", ev->queued->position);
        break;
    case SDXL__V1__GENERATION_EVENT__EVENT_PROGRESS:
        if (ev->progress->stage == SDXL__V1__STAGE__STAGE_DENOISE)
            fprintf(stderr, "denoise step %d/%d\n", ev->progress->step,
                    ev->progress->total_steps);
        else
            fprintf(stderr, "%s\n", stage_name(ev->progress->stage));
        break;
    case SDXL__V1__GENERATION_EVENT__EVENT_IMAGE:
        save_image(st, ev->image);
        break;
    case SDXL__V1__GENERATION_EVENT__EVENT_DONE:
        print_metadata(ev->done);
        break;
    default:
        break;
    }
    sdxl__v1__generation_event__free_unpacked(ev, NULL);
    return !st->failed;
}

static bool on_batch(void *user, const uint8_t *data, size_t len)
{
    gen_state *st = user;
    Sdxl__V1__BatchResponse *resp = sdxl__v1__batch_response__unpack(NULL, len, data);
    if (!resp) {
        fprintf(stderr, "sdxl: the server sent a malformed answer\n");
        st->failed = true;
        return false;
    }
    st->several = resp->n_images > 1;
    for (size_t i = 0; i < resp->n_images; i++)
        save_image(st, resp->images[i]);
    print_metadata(resp->metadata);
    sdxl__v1__batch_response__free_unpacked(resp, NULL);
    return true;
}

static int run_img2img(client *cl, const gen_flags *f)
{
    uint8_t *bytes;
    size_t len;
    if (!read_file(f->image, &bytes, &len))
        return 2;
    Sdxl__V1__Img2ImgRequest req = SDXL__V1__IMG2_IMG_REQUEST__INIT;
    req.prompt = (char *)f->prompt;
    req.image.data = bytes;
    req.image.len = len;
    req.negative_prompt = (char *)(f->negative ? f->negative : "");
    req.request_id = (char *)(f->request_id ? f->request_id : "");
    if (f->has_steps) {
        req._num_inference_steps_case = SDXL__V1__IMG2_IMG_REQUEST___NUM_INFERENCE_STEPS_NUM_INFERENCE_STEPS;
        req.num_inference_steps = f->steps;
    }
    if (f->has_strength) {
        req._strength_case = SDXL__V1__IMG2_IMG_REQUEST___STRENGTH_STRENGTH;
        req.strength = f->strength;
    }
    if (f->has_guidance) {
        req._guidance_scale_case = SDXL__V1__IMG2_IMG_REQUEST___GUIDANCE_SCALE_GUIDANCE_SCALE;
        req.guidance_scale = f->guidance;
    }
    if (f->has_seed) {
        req._seed_case = SDXL__V1__IMG2_IMG_REQUEST___SEED_SEED;
        req.seed = f->seed;
    }
    if (f->has_quality) {
        req._quality_case = SDXL__V1__IMG2_IMG_REQUEST___QUALITY_QUALITY;
        req.quality = f->quality;
    }
    if (f->has_batch) {
        req._batch_size_case = SDXL__V1__IMG2_IMG_REQUEST___BATCH_SIZE_BATCH_SIZE;
        req.batch_size = f->batch;
    }
    req.width = f->width;
    req.height = f->height;
    req.output_format = f->format;
    req.thumbnail = f->thumbnail;
    gen_state st = {.flags = f, .several = f->has_batch && f->batch > 1};
    int rc = client_call(cl, "/sdxl.v1.ImageGeneration/Img2ImgStream", &req.base, on_event, &st);
    free(bytes);
    return rc ? rc : st.failed ? 2 : 0;
}

static int run_txt2img(client *cl, const gen_flags *f)
{
    Sdxl__V1__Txt2ImgRequest req = SDXL__V1__TXT2_IMG_REQUEST__INIT;
    req.prompt = (char *)f->prompt;
    req.negative_prompt = (char *)(f->negative ? f->negative : "");
    req.request_id = (char *)(f->request_id ? f->request_id : "");
    if (f->has_steps) {
        req._num_inference_steps_case = SDXL__V1__TXT2_IMG_REQUEST___NUM_INFERENCE_STEPS_NUM_INFERENCE_STEPS;
        req.num_inference_steps = f->steps;
    }
    if (f->has_guidance) {
        req._guidance_scale_case = SDXL__V1__TXT2_IMG_REQUEST___GUIDANCE_SCALE_GUIDANCE_SCALE;
        req.guidance_scale = f->guidance;
    }
    if (f->has_seed) {
        req._seed_case = SDXL__V1__TXT2_IMG_REQUEST___SEED_SEED;
        req.seed = f->seed;
    }
    if (f->has_quality) {
        req._quality_case = SDXL__V1__TXT2_IMG_REQUEST___QUALITY_QUALITY;
        req.quality = f->quality;
    }
    if (f->has_batch) {
        req._batch_size_case = SDXL__V1__TXT2_IMG_REQUEST___BATCH_SIZE_BATCH_SIZE;
        req.batch_size = f->batch;
    }
    req.width = f->width;
    req.height = f->height;
    req.output_format = f->format;
    req.thumbnail = f->thumbnail;
    gen_state st = {.flags = f};
    int rc = client_call(cl, "/sdxl.v1.ImageGeneration/Txt2Img", &req.base, on_batch, &st);
    return rc ? rc : st.failed ? 2 : 0;
}

/* ---- status and health --------------------------------------------------------------- */

static bool on_status(void *user, const uint8_t *data, size_t len)
{
    Sdxl__V1__StatusResponse *s = sdxl__v1__status_response__unpack(NULL, len, data);
    if (!s) {
        fprintf(stderr, "sdxl: the server sent a malformed status\n");
        *(bool *)user = true;
        return false;
    }
    printf("ready:              %s\n", s->ready ? "yes" : "no");
    printf("queue:              %d of %d\n", s->queue_length, s->queue_capacity);
    if (s->running)
        printf("running:            %s %s (%dx%d, %d steps, batch %d): %s %d/%d, %.0f ms\n",
               s->running->request_id, s->running->method, s->running->width,
               s->running->height, s->running->num_inference_steps, s->running->batch_size,
               stage_name(s->running->stage), s->running->step, s->running->total_steps,
               s->running->elapsed_ms);
    else
        printf("running:            nothing\n");
    if (s->estimated_wait_ms >= 0)
        printf("wait for a new job: %.0f ms\n", s->estimated_wait_ms);
    else
        printf("wait for a new job: unknown (nothing measured yet)\n");
    for (size_t i = 0; i < s->n_estimates; i++)
        printf("estimate:           %dx%d, %d steps, batch %d: %.0f ms (%" PRId64 " runs)\n",
               s->estimates[i]->width, s->estimates[i]->height,
               s->estimates[i]->num_inference_steps, s->estimates[i]->batch_size,
               s->estimates[i]->average_ms, s->estimates[i]->samples);
    printf("requests:           %" PRIu64 " (%" PRIu64 " failed), %" PRIu64 " images\n",
           s->requests_total, s->requests_failed, s->images_generated);
    if (s->model)
        printf("model:              %s on %s (%s), %.1f MiB, default %dx%d\n", s->model->name,
               s->model->backend, s->model->device, (double)s->model->weight_bytes / (1 << 20),
               s->model->default_width, s->model->default_height);
    printf("resident memory:    %.1f MiB\n", (double)s->resident_memory_bytes / (1 << 20));
    printf("uptime:             %.1f s\n", s->uptime_s);
    sdxl__v1__status_response__free_unpacked(s, NULL);
    return true;
}

static bool on_health(void *user, const uint8_t *data, size_t len)
{
    Grpc__Health__V1__HealthCheckResponse *r =
        grpc__health__v1__health_check_response__unpack(NULL, len, data);
    int *serving = user;
    if (!r)
        return false;
    const char *names[] = {"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"};
    printf("%s\n", r->status >= 0 && r->status <= 3 ? names[r->status] : "UNKNOWN");
    *serving = r->status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    grpc__health__v1__health_check_response__free_unpacked(r, NULL);
    return true;
}

/* ---- flags --------------------------------------------------------------------------- */

static bool parse_number(const char *flag, const char *v, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !(d >= lo && d <= hi)) {
        fprintf(stderr, "sdxl: %s %s: expected a number in [%g, %g]\n", flag, v, lo, hi);
        return false;
    }
    *out = d;
    return true;
}

static bool parse_gen_flag(const char *flag, const char *v, gen_flags *f)
{
    double d;
    if (strcmp(flag, "--image") == 0)
        f->image = v;
    else if (strcmp(flag, "--prompt") == 0)
        f->prompt = v;
    else if (strcmp(flag, "--negative-prompt") == 0)
        f->negative = v;
    else if (strcmp(flag, "--out") == 0)
        f->out = v;
    else if (strcmp(flag, "--request-id") == 0)
        f->request_id = v;
    else if (strcmp(flag, "--steps") == 0) {
        if (!parse_number(flag, v, -1e9, 1e9, &d))
            return false;
        f->steps = (int)d;
        f->has_steps = true;
    } else if (strcmp(flag, "--batch-size") == 0) {
        if (!parse_number(flag, v, -1e9, 1e9, &d))
            return false;
        f->batch = (int)d;
        f->has_batch = true;
    } else if (strcmp(flag, "--width") == 0) {
        if (!parse_number(flag, v, -1e9, 1e9, &d))
            return false;
        f->width = (int)d;
    } else if (strcmp(flag, "--height") == 0) {
        if (!parse_number(flag, v, -1e9, 1e9, &d))
            return false;
        f->height = (int)d;
    } else if (strcmp(flag, "--quality") == 0) {
        if (!parse_number(flag, v, -1e9, 1e9, &d))
            return false;
        f->quality = (int)d;
        f->has_quality = true;
    } else if (strcmp(flag, "--strength") == 0) {
        if (!parse_number(flag, v, -1e9, 1e9, &d))
            return false;
        f->strength = (float)d;
        f->has_strength = true;
    } else if (strcmp(flag, "--guidance") == 0) {
        if (!parse_number(flag, v, -1e9, 1e9, &d))
            return false;
        f->guidance = (float)d;
        f->has_guidance = true;
    } else if (strcmp(flag, "--seed") == 0) {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(v, &end, 10);
        if (errno || end == v || *end || !isdigit((unsigned char)v[0])) {
            fprintf(stderr, "sdxl: --seed %s: expected an integer in [0, 2^64)\n", v);
            return false;
        }
        f->seed = s;
        f->has_seed = true;
    } else if (strcmp(flag, "--format") == 0) {
        if (strcmp(v, "png") == 0)
            f->format = SDXL__V1__IMAGE_FORMAT__IMAGE_FORMAT_PNG;
        else if (strcmp(v, "jpeg") == 0 || strcmp(v, "jpg") == 0)
            f->format = SDXL__V1__IMAGE_FORMAT__IMAGE_FORMAT_JPEG;
        else if (strcmp(v, "webp") == 0)
            f->format = SDXL__V1__IMAGE_FORMAT__IMAGE_FORMAT_WEBP;
        else {
            fprintf(stderr, "sdxl: --format %s: expected png, jpeg or webp\n", v);
            return false;
        }
    } else {
        fprintf(stderr, "sdxl: unknown flag %s (see --help)\n", flag);
        return false;
    }
    return true;
}

static bool load_token(const char *path, char *out, size_t cap)
{
    uint8_t *data;
    size_t len;
    if (!read_file(path, &data, &len))
        return false;
    size_t end = 0;
    while (end < len && data[end] != '\n' && data[end] != '\r')
        end++;
    while (end > 0 && (data[end - 1] == ' ' || data[end - 1] == '\t'))
        end--;
    size_t start = 0;
    while (start < end && (data[start] == ' ' || data[start] == '\t'))
        start++;
    bool ok = end > start && end - start + 8 < cap;
    if (ok)
        snprintf(out, cap, "Bearer %.*s", (int)(end - start), (const char *)data + start);
    else
        fprintf(stderr, "sdxl: %s: no usable token on its first line\n", path);
    free(data);
    return ok;
}

int main(int argc, char **argv)
{
    const char *server = "127.0.0.1:50051", *token_file = NULL, *command = NULL;
    double timeout_s = 0;
    gen_flags f = {.out = "out.png"};
    for (int a = 1; a < argc; a++) {
        const char *flag = argv[a];
        if (strcmp(flag, "--help") == 0 || strcmp(flag, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(flag, "--thumbnail") == 0) {
            f.thumbnail = true;
            continue;
        }
        if (strncmp(flag, "--", 2) != 0) {
            if (command) {
                fprintf(stderr, "sdxl: unexpected argument %s\n", flag);
                return 2;
            }
            command = flag;
            continue;
        }
        if (a + 1 >= argc) {
            fprintf(stderr, "sdxl: %s needs a value\n", flag);
            return 2;
        }
        const char *v = argv[++a];
        if (strcmp(flag, "--server") == 0)
            server = v;
        else if (strcmp(flag, "--token-file") == 0)
            token_file = v;
        else if (strcmp(flag, "--timeout") == 0) {
            if (!parse_number(flag, v, 0, 1e7, &timeout_s))
                return 2;
        } else if (!parse_gen_flag(flag, v, &f))
            return 2;
    }
    if (!command) {
        usage(stderr);
        return 2;
    }
    bool gen = strcmp(command, "img2img") == 0 || strcmp(command, "batch") == 0;
    if (gen && (!f.image || !f.prompt)) {
        fprintf(stderr, "sdxl: %s needs --image FILE and --prompt TEXT\n", command);
        return 2;
    }
    if (strcmp(command, "txt2img") == 0 && !f.prompt) {
        fprintf(stderr, "sdxl: txt2img needs --prompt TEXT\n");
        return 2;
    }
    if (strcmp(command, "batch") == 0 && !f.has_batch) {
        fprintf(stderr, "sdxl: batch needs --batch-size N\n");
        return 2;
    }

    client cl = {.timeout_s = timeout_s};
    if (token_file && !load_token(token_file, cl.authorization, sizeof cl.authorization))
        return 2;
    client_open(&cl, server);
    int rc;
    double t0 = now_s();
    if (gen) {
        rc = run_img2img(&cl, &f);
    } else if (strcmp(command, "txt2img") == 0) {
        rc = run_txt2img(&cl, &f);
    } else if (strcmp(command, "status") == 0) {
        Sdxl__V1__GetStatusRequest req = SDXL__V1__GET_STATUS_REQUEST__INIT;
        bool bad = false;
        rc = client_call(&cl, "/sdxl.v1.ImageGeneration/GetStatus", &req.base, on_status, &bad);
        if (!rc && bad)
            rc = 1;
    } else if (strcmp(command, "health") == 0) {
        Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
        int serving = 0;
        rc = client_call(&cl, "/grpc.health.v1.Health/Check", &req.base, on_health, &serving);
        if (!rc && !serving)
            rc = 1;
    } else {
        fprintf(stderr, "sdxl: unknown command %s (see --help)\n", command);
        rc = 2;
    }
    if (gen || strcmp(command, "txt2img") == 0)
        fprintf(stderr, "%.2f s\n", now_s() - t0);
    client_close(&cl);
    return rc;
}
