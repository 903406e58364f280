/*
 * bench_vae.c — full VAE passes on a model directory, timed and measured (a benchmark, not a
 * test): load time, the activation arena vae_plan_* asks for, time per run, peak resident
 * memory (VmHWM) after loading and after each part.
 *
 *     build/bench_vae --model DIR [--width 512] [--height 512] [--batch 1] [--threads N]
 *                     [--runs 1] [--part decode|encode|both] [--tile SAMPLE]
 *
 * --tile SAMPLE turns tiling on with tile_sample_size SAMPLE (tile_latent_size SAMPLE / 8);
 * --runs 0 only plans (the arena sizes, for sizes too large to run here).
 * Inputs are deterministic pseudo-random values (an image in [-1, 1], latents of the scale the
 * UNet gives, ÷ scaling_factor): the arithmetic does not depend on them. Results go to
 * docs/BENCHMARKS.md ("VAE (issue 7)").
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/vae.h"
#include "bench_common.h"

/* Non-finite values of t, and its mean absolute value in *mean_abs. */
static size_t non_finite(backend *be, const tensor *t, double *mean_abs)
{
    sdxl_error err;
    size_t n = (size_t)tensor_numel(t);
    float *y = malloc(n * sizeof *y);
    if (!y) {
        fprintf(stderr, "bench_vae: out of memory\n");
        exit(1);
    }
    bench_check(backend_tensor_read(be, t, DTYPE_F32, y, n, &err), &err);
    double sum = 0;
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        bad += !isfinite(y[i]);
        sum += fabs(y[i]);
    }
    free(y);
    *mean_abs = sum / (double)n;
    return bad;
}

typedef struct bench {
    vae *v;
    backend *be;
    const vae_tiling *tiling;
    int64_t b, height, width;
    int runs;
} bench;

/* An arena for inputs of `io` bytes plus the plan, on the backend. */
static void make_arena(backend *be, size_t io, size_t plan, void **block, arena *a)
{
    sdxl_error err;
    bench_check(backend_buffer_alloc(be, io + plan, block, &err), &err);
    arena_init_borrowed(a, *block, io + plan);
}

static size_t run_decode(const bench *bn)
{
    int64_t f = vae_scale(bn->v), h = bn->height / f, w = bn->width / f;
    int64_t c = vae_latent_channels(bn->v), b = bn->b;
    sdxl_error err;
    size_t plan;
    bench_check(vae_plan_decode(bn->v, bn->be, bn->tiling, b, h, w, &plan, &err), &err);
    size_t io = sizeof(float) * (size_t)(b * (h * w * c + bn->height * bn->width * 3)) +
                2 * TENSOR_ALIGN;
    printf("decode          latents %lldx%lld -> %lldx%lld, arena plan %.1f MB (+ %.1f MB io)\n",
           (long long)h, (long long)w, (long long)bn->height, (long long)bn->width, plan / 1e6,
           io / 1e6);
    if (bn->runs == 0)
        return 0;
    void *block;
    arena a;
    make_arena(bn->be, io, plan, &block, &a);
    /* Latents as the UNet leaves them (unit scale), ÷ scaling_factor as the pipeline does. */
    tensor z = bench_random_input(bn->be, &a, 4, (int64_t[]){b, h, w, c},
                                  1.0f / vae_scaling_factor(bn->v), 11);
    tensor y;
    bench_check(tensor_alloc(&y, &a, DTYPE_F32, 4, (int64_t[]){b, bn->height, bn->width, 3}, &err),
        &err);
    double best = INFINITY;
    for (int r = 0; r < bn->runs; r++) {
        double t0 = bench_now_s();
        bench_check(vae_decode(bn->v, bn->be, &a, bn->tiling, &z, &y, &err), &err);
        bench_check(backend_synchronize(bn->be, &err), &err);
        double s = bench_now_s() - t0;
        best = s < best ? s : best;
        printf("decode run %d    %.2f s\n", r + 1, s);
    }
    double mean_abs;
    size_t bad = non_finite(bn->be, &y, &mean_abs);
    printf("decode best     %.2f s; output mean |y| %.4f, %zu non-finite; peak RSS %.2f GB\n",
           best, mean_abs, bad, bench_peak_rss_bytes() / 1e9);
    backend_buffer_free(bn->be, block);
    return bad;
}

static size_t run_encode(const bench *bn)
{
    int64_t f = vae_scale(bn->v), h = bn->height / f, w = bn->width / f;
    int64_t c = vae_latent_channels(bn->v), b = bn->b;
    sdxl_error err;
    size_t plan;
    bench_check(vae_plan_encode(bn->v, bn->be, bn->tiling, b, bn->height, bn->width, &plan, &err), &err);
    size_t io = sizeof(float) * (size_t)(b * (bn->height * bn->width * 3 + 2 * h * w * c)) +
                3 * TENSOR_ALIGN;
    printf("encode          %lldx%lld -> latents %lldx%lld, arena plan %.1f MB (+ %.1f MB io)\n",
           (long long)bn->height, (long long)bn->width, (long long)h, (long long)w, plan / 1e6,
           io / 1e6);
    if (bn->runs == 0)
        return 0;
    void *block;
    arena a;
    make_arena(bn->be, io, plan, &block, &a);
    tensor x = bench_random_input(bn->be, &a, 4, (int64_t[]){b, bn->height, bn->width, 3},
                                  1.0f, 12);
    tensor mean, logvar;
    bench_check(tensor_alloc(&mean, &a, DTYPE_F32, 4, (int64_t[]){b, h, w, c}, &err), &err);
    bench_check(tensor_alloc(&logvar, &a, DTYPE_F32, 4, (int64_t[]){b, h, w, c}, &err), &err);
    double best = INFINITY;
    for (int r = 0; r < bn->runs; r++) {
        double t0 = bench_now_s();
        bench_check(vae_encode(bn->v, bn->be, &a, bn->tiling, &x, &mean, &logvar, &err), &err);
        bench_check(backend_synchronize(bn->be, &err), &err);
        double s = bench_now_s() - t0;
        best = s < best ? s : best;
        printf("encode run %d    %.2f s\n", r + 1, s);
    }
    double mean_abs;
    size_t bad = non_finite(bn->be, &mean, &mean_abs);
    printf("encode best     %.2f s; mean |mean| %.4f, %zu non-finite; peak RSS %.2f GB\n", best,
           mean_abs, bad, bench_peak_rss_bytes() / 1e9);
    backend_buffer_free(bn->be, block);
    return bad;
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_vae --model DIR [--width W] [--height H] [--batch B] "
                    "[--threads N] [--runs R] [--part decode|encode|both] [--tile SAMPLE]\n");
    return 2;
}

int main(int argc, char **argv)
{
    bench_model_args args = bench_default_args();
    const char *part = "decode";
    int tile = 0;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc)
            return usage();
        if (!strcmp(argv[i], "--part"))
            part = argv[i + 1];
        else if (!strcmp(argv[i], "--tile"))
            tile = atoi(argv[i + 1]);
        else if (!bench_parse_common(&args, argv[i], argv[i + 1]))
            return usage();
    }
    const char *model = args.model;
    int width = args.width, height = args.height, batch = args.batch, threads = args.threads,
        runs = args.runs;
    bool decode = !strcmp(part, "decode") || !strcmp(part, "both");
    bool encode = !strcmp(part, "encode") || !strcmp(part, "both");
    if (!model || width < 8 || height < 8 || batch < 1 || runs < 0 || tile < 0 ||
        !(decode || encode))
        return usage();

    sdxl_error err;
    backend_params params = backend_default_params();
    params.n_threads = threads;
    backend *be;
    bench_check(backend_create("cpu", &params, &be, &err), &err);
    double t0 = bench_now_s();
    vae *v;
    bench_check(vae_load(model, be, &v, NULL, &err), &err);
    double load_s = bench_now_s() - t0;
    vae_tiling tiling = vae_default_tiling(v);
    if (tile > 0) {
        tiling.enabled = true;
        tiling.tile_sample_size = tile;
        tiling.tile_latent_size = tile / vae_scale(v);
    }
    printf("model %s: %dx%d pixels (width x height), batch %d, threads %d, tiling %s\n", model,
           width, height, batch, threads, tile > 0 ? "on" : "off");
    printf("load            %.1f s, peak RSS after load %.2f GB\n", load_s,
           bench_peak_rss_bytes() / 1e9);
    bench bn = {v, be, &tiling, batch, height, width, runs};
    size_t bad = 0;
    if (decode)
        bad += run_decode(&bn);
    if (encode)
        bad += run_encode(&bn);
    vae_free(v);
    backend_destroy(be);
    return bad ? 1 : 0;
}
