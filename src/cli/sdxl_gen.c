/*
 * sdxl_gen.c — sdxl-gen: one generation from the command line, with no server.
 *
 *     sdxl-gen --model DIR [--image in.png] --prompt "a cat" [--negative-prompt TEXT]
 *              [--steps N] [--strength S] [--guidance G] [--seed N] [--batch N]
 *              [--width W] [--height H] [--threads N] [--backend B] [--dtype T] [--vae-dtype T]
 *              [--vae-tiling] -o out.png
 *
 * img2img with --image, txt2img without. A batch writes out-0.png, out-1.png, … (the format
 * follows the output's extension: .png, .jpg/.jpeg, .webp). Progress bars for loading and
 * denoising go to stderr; the seeds, the time per stage and the peak memory are printed when
 * done.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "base/file.h"
#include "io/image.h"
#include "sdxl.h"

typedef struct options {
    const char *model;
    const char *image;
    const char *output;
    image_format format; /* from the output's extension */
    bool vae_tiling;
    int threads;
    sdxl_backend_kind backend;
    sdxl_compute_dtype dtype, vae_dtype;
    sdxl_generate_params gen;
} options;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sdxl-gen --model DIR [--image IN] --prompt TEXT -o OUT [options]\n"
            "  --model DIR             diffusers SDXL directory (model_index.json, unet/, ...)\n"
            "  --image IN              input picture (PNG, JPEG, WEBP): img2img; none: txt2img\n"
            "  --prompt TEXT           what to generate (required; may be empty)\n"
            "  --negative-prompt TEXT  used with --guidance above 1\n"
            "  --steps N               denoising steps, 1..%d (default 2)\n"
            "  --strength S            img2img: how much to change the image, (0, 1] "
            "(default 0.8)\n"
            "  --guidance G            classifier-free guidance scale, 0..%g (default 0: off)\n"
            "  --seed N                random seed (default: a random one, printed)\n"
            "  --batch N               images, seeds N, N+1, ... (default 1); writes OUT-0, "
            "OUT-1, ...\n"
            "  --width W, --height H   output size, multiples of 8 (default: the input's, or "
            "the model's)\n"
            "  --threads N             cpu threads (default: every core)\n"
            "  --backend B             auto, cpu or cuda (default auto: cuda when built and a "
            "GPU is present)\n"
            "  --dtype T               compute type of the text encoders and UNet: auto, "
            "fp32, fp16 or bf16 (default auto: fp32 on the cpu, fp16 on a GPU)\n"
            "  --vae-dtype T           the VAE's (default auto: bf16 beside fp16, else --dtype's)\n"
            "  --vae-tiling            tiled VAE (large images in less memory)\n"
            "  -o, --output OUT        output file; .png, .jpg or .webp\n",
            SDXL_MAX_STEPS, (double)SDXL_MAX_GUIDANCE);
}

static bool parse_int(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < INT_MIN || v > INT_MAX)
        return false;
    *out = (int)v;
    return true;
}

static bool parse_float(const char *s, float *out)
{
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end)
        return false;
    *out = v;
    return true;
}

/* A uint64, or a negative number taken as its two's complement (as torch's manual_seed). */
static bool parse_seed(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (s[0] == '-') {
        long long v = strtoll(s, &end, 10);
        *out = (uint64_t)v;
    } else {
        *out = strtoull(s, &end, 10);
    }
    return !errno && end != s && !*end;
}

/* Fills o from argv; false (after a message) on a bad command line. */
static bool parse_args(int argc, char **argv, options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        }
        if (!strcmp(a, "--vae-tiling")) {
            o->vae_tiling = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "sdxl-gen: %s needs a value (or is unknown); see --help\n", a);
            return false;
        }
        const char *v = argv[++i];
        bool ok = true;
        if (!strcmp(a, "--model"))
            o->model = v;
        else if (!strcmp(a, "--image"))
            o->image = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output"))
            o->output = v;
        else if (!strcmp(a, "--prompt"))
            o->gen.prompt = v;
        else if (!strcmp(a, "--negative-prompt"))
            o->gen.negative_prompt = v;
        else if (!strcmp(a, "--steps"))
            ok = parse_int(v, &o->gen.num_inference_steps);
        else if (!strcmp(a, "--strength"))
            ok = parse_float(v, &o->gen.strength);
        else if (!strcmp(a, "--guidance"))
            ok = parse_float(v, &o->gen.guidance_scale);
        else if (!strcmp(a, "--seed"))
            ok = o->gen.seed_set = parse_seed(v, &o->gen.seed);
        else if (!strcmp(a, "--batch"))
            ok = parse_int(v, &o->gen.batch_size);
        else if (!strcmp(a, "--width"))
            ok = parse_int(v, &o->gen.width);
        else if (!strcmp(a, "--height"))
            ok = parse_int(v, &o->gen.height);
        else if (!strcmp(a, "--threads"))
            ok = parse_int(v, &o->threads);
        else if (!strcmp(a, "--backend"))
            ok = sdxl_backend_parse(v, &o->backend);
        else if (!strcmp(a, "--dtype"))
            ok = sdxl_dtype_parse(v, &o->dtype);
        else if (!strcmp(a, "--vae-dtype"))
            ok = sdxl_dtype_parse(v, &o->vae_dtype);
        else {
            fprintf(stderr, "sdxl-gen: unknown option %s; see --help\n", a);
            return false;
        }
        if (!ok) {
            fprintf(stderr, "sdxl-gen: %s: \"%s\" is not a valid value; see --help\n", a, v);
            return false;
        }
    }
    if (!o->model || !o->gen.prompt || !o->output) {
        fprintf(stderr, "sdxl-gen: --model, --prompt and -o are required; see --help\n");
        return false;
    }
    const char *dot = strrchr(o->output, '.');
    o->format = IMAGE_FORMAT_PNG;
    if (dot && !strchr(dot, '/') && !image_format_parse(dot + 1, &o->format)) {
        fprintf(stderr, "sdxl-gen: %s: unknown image extension (use .png, .jpg or .webp)\n",
                o->output);
        return false;
    }
    return true;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- progress bars on stderr (redrawn in place on a terminal, one line per event else) --- */

typedef struct bar {
    bool tty;
    int last_percent;
} bar;

static void bar_draw(bar *b, const char *label, double fraction, const char *detail)
{
    int percent = (int)(fraction * 100.0); /* 100 only when done */
    if (percent == b->last_percent)
        return;
    b->last_percent = percent;
    if (!b->tty) {
        if (percent == 100 || fraction == 0.0)
            fprintf(stderr, "%s %3d%% %s\n", label, percent, detail);
        return;
    }
    enum { WIDTH = 30 };
    char cells[WIDTH + 1];
    int filled = (int)(fraction * WIDTH);
    for (int i = 0; i < WIDTH; i++)
        cells[i] = i < filled ? '#' : '.';
    cells[WIDTH] = '\0';
    fprintf(stderr, "\r%-8s [%s] %3d%% %s", label, cells, percent, detail);
    if (percent == 100)
        fputc('\n', stderr);
    fflush(stderr);
}

static bool on_load(void *user, uint64_t done, uint64_t total)
{
    char detail[64];
    snprintf(detail, sizeof detail, "%.2f / %.2f GB", (double)done / 1e9, (double)total / 1e9);
    bar_draw(user, "loading", total ? (double)done / (double)total : 1.0, detail);
    return true;
}

static bool on_progress(void *user, const sdxl_progress *p)
{
    bar *b = user;
    static const char *const stages[] = {"text", "encode", "denoise", "decode"};
    if (p->stage == SDXL_STAGE_DENOISE) {
        char detail[32];
        snprintf(detail, sizeof detail, "step %d/%d", p->step, p->total_steps);
        bar_draw(b, "denoise", (double)p->step / p->total_steps, detail);
    } else {
        b->last_percent = -1;
        if (!b->tty)
            fprintf(stderr, "%s\n", stages[p->stage]);
    }
    return true;
}

/* ---- files --------------------------------------------------------------------------------- */

static bool load_image(const char *path, image *out)
{
    uint8_t *data;
    size_t size;
    sdxl_error err;
    if (file_read_all(path, 0, &data, &size, &err) != SDXL_OK) {
        fprintf(stderr, "sdxl-gen: %s\n", err.message);
        return false;
    }
    image_limits limits = image_default_limits();
    sdxl_status st = image_decode(data, size, &limits, out, NULL, &err);
    free(data);
    if (st != SDXL_OK)
        fprintf(stderr, "sdxl-gen: %s: %s\n", path, err.message);
    return st == SDXL_OK;
}

/* OUT for one image, OUT-i.EXT (before the extension) for a batch. */
static void output_path(const char *out, int index, int count, char *path, size_t n)
{
    if (count == 1) {
        snprintf(path, n, "%s", out);
        return;
    }
    const char *dot = strrchr(out, '.');
    const char *slash = strrchr(out, '/');
    if (!dot || (slash && dot < slash))
        dot = out + strlen(out);
    snprintf(path, n, "%.*s-%d%s", (int)(dot - out), out, index, dot);
}

static bool write_image(const sdxl_image *img, image_format format, const char *path)
{
    image_encode_params ep = image_encode_default_params();
    ep.format = format;
    image view = {.width = img->width, .height = img->height, .pixels = img->pixels};
    image_buffer buf;
    sdxl_error err;
    if (image_encode(&view, &ep, &buf, &err) != SDXL_OK) {
        fprintf(stderr, "sdxl-gen: encoding %s: %s\n", path, err.message);
        return false;
    }
    bool ok = file_write_all(path, buf.data, buf.size, &err) == SDXL_OK;
    if (!ok)
        fprintf(stderr, "sdxl-gen: %s\n", err.message);
    image_buffer_free(&buf);
    return ok;
}

static void print_error(const char *what, const sdxl_error *err)
{
    fprintf(stderr, "sdxl-gen: %s: %s%s%s%s: %s\n", what, sdxl_status_name(err->code),
            err->field[0] ? " (" : "", err->field, err->field[0] ? ")" : "", err->message);
}

static int generate(const options *o, sdxl_model *model, const image *input)
{
    sdxl_session *session;
    sdxl_error err;
    if (sdxl_session_open(model, &session, &err) != SDXL_OK) {
        print_error("session", &err);
        return 1;
    }
    bar steps_bar = {.tty = isatty(STDERR_FILENO), .last_percent = -1};
    sdxl_generate_params gen = o->gen;
    sdxl_image in;
    if (input) {
        in = (sdxl_image){.width = input->width, .height = input->height, .pixels = input->pixels};
        gen.init_image = &in;
    }
    gen.progress = on_progress;
    gen.progress_user = &steps_bar;
    sdxl_result result;
    int rc = 0;
    if (sdxl_generate(session, &gen, &result, &err) != SDXL_OK) {
        print_error("generate", &err);
        rc = 1;
    } else {
        for (int i = 0; i < result.n_images; i++) {
            char path[4096];
            output_path(o->output, i, result.n_images, path, sizeof path);
            if (!write_image(&result.images[i], o->format, path))
                rc = 1;
            else
                printf("seed %" PRIu64 ": %s (%dx%d)\n", result.seeds[i], path,
                       result.images[i].width, result.images[i].height);
        }
        const sdxl_timings *t = &result.timings;
        printf("time: text %.0f ms, vae encode %.0f ms, unet %.0f ms (%d steps, %.0f ms each), "
               "vae decode %.0f ms, total %.0f ms\n",
               t->text_ms, t->vae_encode_ms, t->unet_ms, t->unet_steps,
               t->unet_steps ? t->unet_ms / t->unet_steps : 0.0, t->vae_decode_ms, t->total_ms);
        sdxl_result_free(&result);
    }
    sdxl_session_close(session);
    return rc;
}

int main(int argc, char **argv)
{
    options o = {.gen = sdxl_default_generate_params()};
    if (!parse_args(argc, argv, &o))
        return 2;
    image input = {0};
    if (o.image && !load_image(o.image, &input))
        return 1;

    bar load_bar = {.tty = isatty(STDERR_FILENO), .last_percent = -1};
    sdxl_model_params mp = sdxl_model_default_params();
    mp.threads = o.threads;
    mp.backend = o.backend;
    mp.dtype = o.dtype;
    mp.vae_dtype = o.vae_dtype;
    mp.vae_tiling = o.vae_tiling;
    mp.load_progress = on_load;
    mp.load_progress_user = &load_bar;
    sdxl_model *model;
    sdxl_error err;
    double t0 = now_s();
    if (sdxl_model_open(o.model, &mp, &model, &err) != SDXL_OK) {
        print_error("loading the model", &err);
        image_free(&input);
        return 1;
    }
    sdxl_model_info info;
    sdxl_model_get_info(model, &info);
    printf("model %s: %.2f GB of weights on %s (%s), loaded in %.1f s\n", info.name,
           (double)info.weight_bytes / 1e9, info.backend, info.device, now_s() - t0);

    int rc = generate(&o, model, o.image ? &input : NULL);
    sdxl_model_close(model);
    image_free(&input);
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        printf("peak resident memory: %.0f MiB\n", (double)ru.ru_maxrss / 1024.0);
    return rc;
}
