/*
 * bench_engine.c — sdxld's engine timed end to end through the public API (include/sdxl.h),
 * per stage, for tools/bench/run.sh to set beside diffusers (a benchmark, not a test).
 *
 *     build/bench_engine --model DIR --image IN.png [--runs 3] [--threads N] [--steps 2]
 *                        [--strength 0.8] [--guidance 0] [--seed 0] [--width W --height H]
 *                        [--prompt TEXT] [--out LAST.png] [--warmup 1] [--batch 1]
 *                        [--backend cpu|cuda|auto] [--dtype auto|fp32|fp16|bf16]
 *                        [--vae-dtype auto|fp32|fp16|bf16] [--same-prompt]
 *                        [--log-level debug|info|warning|error|off]
 *
 * img2img on the decoded pixels of IN.png: --warmup untimed generations, then --runs timed
 * ones, each of --batch images. Each run's prompt is "<prompt> <run number>", the same words
 * bench_diffusers.py uses, so the prompt cache never turns a timed text stage into a look-up;
 * with --same-prompt every run uses the prompt as given, and the text stage is a cache hit
 * after the first generation. Per run: the stage times the engine reports
 * (sdxl_result.timings), the PNG encoding of every image, and end to end = sdxl_generate + PNG
 * encoding, both from decoded pixels to PNG bytes as in diffusers' run. Also the process's CPU
 * time (all threads) over each end to end and, from the progress events, over the text stage,
 * VAE encode + UNet (no event separates them) and VAE decode (its end: the last image
 * callback). Prints one JSON object on stdout with every run and the medians over them (and
 * one line per run on stderr); peak resident memory is VmHWM. --backend defaults to cpu (the
 * machine this tool was first written for), the dtypes to the engine's defaults (auto).
 * --log-level debug shows the backends' plan choices (e.g. which convolutions fuse their bias)
 * on stderr.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "base/file.h"
#include "base/log.h"
#include "io/image.h"
#include "sdxl.h"
#include "bench_common.h"

#define PROMPT_MAX 512

static void read_image(const char *path, image *out)
{
    sdxl_error err;
    uint8_t *data;
    size_t size;
    bench_check(file_read_all(path, 0, &data, &size, &err), &err);
    bench_check(image_decode(data, size, NULL, out, NULL, &err), &err);
    free(data);
}

/* Process CPU time at the progress events of one generation: the start of the text, VAE
 * encode and VAE decode stages, and the image's arrival (the end of the decode). */
typedef struct stage_clock {
    double text, encode, decode, done;
} stage_clock;

static bool on_progress(void *user, const sdxl_progress *p)
{
    stage_clock *c = user;
    if (p->stage == SDXL_STAGE_TEXT)
        c->text = bench_cpu_ms();
    else if (p->stage == SDXL_STAGE_VAE_ENCODE)
        c->encode = bench_cpu_ms();
    else if (p->stage == SDXL_STAGE_VAE_DECODE)
        c->decode = bench_cpu_ms();
    return true;
}

static void on_image(void *user, int index, const sdxl_image *img, uint64_t seed)
{
    ((stage_clock *)user)->done = bench_cpu_ms();
}

typedef struct run_times {
    sdxl_timings t;
    stage_clock cpu;
    double png_ms;
    double end_to_end_ms;
    double cpu_ms; /* process CPU time over the end to end */
    int width, height; /* of the generated image */
} run_times;

typedef struct bench_args {
    const char *model, *image, *out, *prompt;
    const char *dtype, *vae_dtype; /* as given on the command line */
    int runs, warmup, threads, steps, width, height, batch;
    float strength, guidance;
    uint64_t seed;
    bool same_prompt;
} bench_args;

/* One generation and the PNG encoding of its images; writes the first image's PNG to out_path
 * if given (--out: the last timed run's). */
static run_times run_once(sdxl_session *s, const bench_args *a, const sdxl_image *in, int run,
                          const char *out_path)
{
    char prompt[PROMPT_MAX];
    snprintf(prompt, sizeof prompt, "%s %d", a->prompt, run);
    sdxl_generate_params gp = sdxl_default_generate_params();
    gp.prompt = a->same_prompt ? a->prompt : prompt;
    gp.batch_size = a->batch;
    gp.init_image = in;
    gp.width = a->width;
    gp.height = a->height;
    gp.num_inference_steps = a->steps;
    gp.strength = a->strength;
    gp.guidance_scale = a->guidance;
    gp.seed = a->seed;
    gp.seed_set = true;
    stage_clock clock = {0};
    gp.progress = on_progress;
    gp.progress_user = &clock;
    gp.on_image = on_image;
    gp.on_image_user = &clock;
    sdxl_error err;
    sdxl_result res;
    double c0 = bench_cpu_ms(), t0 = (bench_now_s() * 1e3);
    bench_check(sdxl_generate(s, &gp, &res, &err), &err);
    double t1 = (bench_now_s() * 1e3);
    image_encode_params ep = image_encode_default_params();
    image_buffer first = {0};
    for (int i = 0; i < res.n_images; i++) {
        image view = {res.images[i].width, res.images[i].height, res.images[i].pixels};
        image_buffer png;
        bench_check(image_encode(&view, &ep, &png, &err), &err);
        if (i == 0)
            first = png;
        else
            image_buffer_free(&png);
    }
    double t2 = (bench_now_s() * 1e3), c2 = bench_cpu_ms();
    if (out_path)
        bench_check(file_write_all(out_path, first.data, first.size, &err), &err);
    image_buffer_free(&first);
    run_times r = {.t = res.timings, .cpu = clock, .png_ms = t2 - t1, .end_to_end_ms = t2 - t0,
                   .cpu_ms = c2 - c0, .width = res.images[0].width,
                   .height = res.images[0].height};
    sdxl_result_free(&res);
    return r;
}

/* The median over the timed runs of one double member of run_times, given by its offsetof. */
static double runs_median(const run_times *runs, int n, size_t member)
{
    double *v = malloc((size_t)n * sizeof *v);
    if (!v) {
        fprintf(stderr, "bench_engine: out of memory\n");
        exit(1);
    }
    for (int r = 0; r < n; r++)
        v[r] = *(const double *)((const char *)&runs[r] + member);
    double m = bench_median(v, n);
    free(v);
    return m;
}

static void print_run(const char *what, const run_times *x)
{
    fprintf(stderr, "bench_engine: %s: %.1f ms (text %.1f, encode %.1f, unet %.1f, decode %.1f, "
                    "png %.1f)\n", what, x->end_to_end_ms, x->t.text_ms, x->t.vae_encode_ms,
            x->t.unet_ms, x->t.vae_decode_ms, x->png_ms);
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_engine --model DIR --image IN.png [--runs N] [--threads N] "
                    "[--steps N] [--strength S] [--guidance G] [--seed N] [--width W] "
                    "[--height H] [--prompt TEXT] [--out LAST.png] [--warmup N] [--batch N] "
                    "[--backend auto|cpu|cuda] [--dtype auto|fp32|fp16|bf16] "
                    "[--vae-dtype auto|fp32|fp16|bf16] [--same-prompt] "
                    "[--log-level debug|info|warning|error|off]\n");
    return 2;
}

int main(int argc, char **argv)
{
    bench_args a = {.prompt = "a photo of a cat", .dtype = "auto", .vae_dtype = "auto",
                    .runs = 3, .warmup = 1, .steps = 2, .batch = 1,
                    .strength = 0.8f};
    sdxl_model_params mp = sdxl_model_default_params();
    mp.backend = SDXL_BACKEND_CPU;
    log_level level;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--same-prompt")) {
            a.same_prompt = true;
            continue;
        }
        if (i + 1 >= argc)
            return usage();
        const char *k = argv[i], *v = argv[++i];
        if (!strcmp(k, "--model"))
            a.model = v;
        else if (!strcmp(k, "--image"))
            a.image = v;
        else if (!strcmp(k, "--out"))
            a.out = v;
        else if (!strcmp(k, "--prompt"))
            a.prompt = v;
        else if (!strcmp(k, "--runs"))
            a.runs = atoi(v);
        else if (!strcmp(k, "--warmup"))
            a.warmup = atoi(v);
        else if (!strcmp(k, "--threads"))
            a.threads = atoi(v);
        else if (!strcmp(k, "--steps"))
            a.steps = atoi(v);
        else if (!strcmp(k, "--width"))
            a.width = atoi(v);
        else if (!strcmp(k, "--height"))
            a.height = atoi(v);
        else if (!strcmp(k, "--strength"))
            a.strength = strtof(v, NULL);
        else if (!strcmp(k, "--guidance"))
            a.guidance = strtof(v, NULL);
        else if (!strcmp(k, "--seed"))
            a.seed = strtoull(v, NULL, 10);
        else if (!strcmp(k, "--batch"))
            a.batch = atoi(v);
        else if (!strcmp(k, "--backend")) {
            if (!sdxl_backend_parse(v, &mp.backend))
                return usage();
        }
        else if (!strcmp(k, "--dtype") && sdxl_dtype_parse(v, &mp.dtype))
            a.dtype = v;
        else if (!strcmp(k, "--vae-dtype") && sdxl_dtype_parse(v, &mp.vae_dtype))
            a.vae_dtype = v;
        else if (!strcmp(k, "--log-level") && log_level_parse(v, &level))
            log_configure(level, LOG_FORMAT_TEXT, stderr);
        else
            return usage();
    }
    if (!a.model || !a.image || a.runs < 1 || a.warmup < 0 || a.batch < 1)
        return usage();

    image input;
    read_image(a.image, &input);
    sdxl_image in = {input.width, input.height, input.pixels};

    sdxl_error err;
    mp.threads = a.threads;
    double t0 = (bench_now_s() * 1e3);
    sdxl_model *model;
    bench_check(sdxl_model_open(a.model, &mp, &model, &err), &err);
    double load_ms = (bench_now_s() * 1e3) - t0;
    double rss_loaded = bench_peak_rss_bytes();
    sdxl_model_info info;
    sdxl_model_get_info(model, &info);
    sdxl_session *session;
    bench_check(sdxl_session_open(model, &session, &err), &err);
    fprintf(stderr, "bench_engine: loaded %s in %.1f s (%s, %s), peak RSS %.2f GB\n", a.model,
            load_ms / 1e3, info.backend, info.device, rss_loaded / 1e9);

    for (int w = 0; w < a.warmup; w++) {
        run_times warm = run_once(session, &a, &in, -w, NULL);
        print_run("warm-up", &warm);
    }
    run_times *runs = malloc((size_t)a.runs * sizeof *runs);
    if (!runs)
        return 1;
    double min_generate_ms = 0;
    for (int r = 0; r < a.runs; r++) {
        runs[r] = run_once(session, &a, &in, r + 1, r + 1 == a.runs ? a.out : NULL);
        char what[32];
        snprintf(what, sizeof what, "run %d", r + 1);
        print_run(what, &runs[r]);
        if (r == 0 || runs[r].t.total_ms < min_generate_ms)
            min_generate_ms = runs[r].t.total_ms;
    }

    printf("{\"engine\": \"sdxld\", \"backend\": \"%s\", \"device\": \"%s\", \"threads\": %d, "
           "\"dtype\": \"%s\", \"vae_dtype\": \"%s\", \"batch\": %d, \"same_prompt\": %s, "
           "\"warmup\": %d, \"width\": %d, \"height\": %d, \"steps\": %d, \"strength\": %g, "
           "\"guidance\": %g, "
           "\"weight_bytes\": %llu, \"load_ms\": %.1f, \"peak_rss_after_load_bytes\": %.0f, "
           "\"peak_rss_bytes\": %.0f, ",
           info.backend, info.device, a.threads, a.dtype, a.vae_dtype, a.batch,
           a.same_prompt ? "true" : "false", a.warmup, runs[0].width, runs[0].height, a.steps,
           (double)a.strength, (double)a.guidance, (unsigned long long)info.weight_bytes,
           load_ms, rss_loaded, bench_peak_rss_bytes());
    printf("\"median_generate_ms\": %.3f, \"min_generate_ms\": %.3f, "
           "\"median_end_to_end_ms\": %.3f, \"median_text_ms\": %.3f, "
           "\"median_vae_encode_ms\": %.3f, \"median_unet_ms\": %.3f, "
           "\"median_vae_decode_ms\": %.3f, \"runs\": [",
           runs_median(runs, a.runs, offsetof(run_times, t.total_ms)), min_generate_ms,
           runs_median(runs, a.runs, offsetof(run_times, end_to_end_ms)),
           runs_median(runs, a.runs, offsetof(run_times, t.text_ms)),
           runs_median(runs, a.runs, offsetof(run_times, t.vae_encode_ms)),
           runs_median(runs, a.runs, offsetof(run_times, t.unet_ms)),
           runs_median(runs, a.runs, offsetof(run_times, t.vae_decode_ms)));
    for (int r = 0; r < a.runs; r++) {
        const run_times *x = &runs[r];
        printf("%s\n  {\"text_ms\": %.2f, \"vae_encode_ms\": %.2f, \"unet_ms\": %.2f, "
               "\"unet_steps\": %d, \"vae_decode_ms\": %.2f, \"png_ms\": %.2f, "
               "\"generate_ms\": %.2f, \"end_to_end_ms\": %.2f, \"cpu_ms\": %.1f, "
               "\"text_cpu_ms\": %.1f, \"encode_unet_cpu_ms\": %.1f, \"vae_decode_cpu_ms\": %.1f}",
               r ? "," : "", x->t.text_ms, x->t.vae_encode_ms, x->t.unet_ms, x->t.unet_steps,
               x->t.vae_decode_ms, x->png_ms, x->t.total_ms, x->end_to_end_ms, x->cpu_ms,
               x->cpu.encode - x->cpu.text, x->cpu.decode - x->cpu.encode,
               x->cpu.done - x->cpu.decode);
    }
    printf("]}\n");

    free(runs);
    sdxl_session_close(session);
    sdxl_model_close(model);
    image_free(&input);
    return 0;
}
