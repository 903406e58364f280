/*
 * bench_unet.c — one full UNet evaluation on a model directory, timed and measured (a
 * benchmark, not a test): load time, the activation arena unet_plan asks for, forward time per
 * run, peak resident memory (VmHWM), and the achieved rate against unet_flops' count.
 *
 *     build/bench_unet --model DIR [--width 512] [--height 512] [--batch 1] [--threads N]
 *                      [--runs 1]
 *
 * Inputs are deterministic pseudo-random values of unit scale (latents, text embeddings,
 * pooled embedding), time ids for the image size, timestep 999: the arithmetic does not depend
 * on the values. Results go to docs/BENCHMARKS.md ("UNet (issue 6)").
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/unet.h"
#include "engine/unet_flops.h"
#include "bench_common.h"

#define TEXT_TOKENS 77

static int usage(void)
{
    fprintf(stderr, "usage: bench_unet --model DIR [--width W] [--height H] [--batch B] "
                    "[--threads N] [--runs R]\n");
    return 2;
}

int main(int argc, char **argv)
{
    bench_model_args args = bench_default_args();
    for (int i = 1; i < argc; i += 2)
        if (i + 1 >= argc || !bench_parse_common(&args, argv[i], argv[i + 1]))
            return usage();
    const char *model = args.model;
    int width = args.width, height = args.height, batch = args.batch, threads = args.threads,
        runs = args.runs;
    if (!model || width < 8 || height < 8 || batch < 1 || runs < 1)
        return usage();
    int64_t h = height / 8, w = width / 8, b = batch;

    sdxl_error err;
    backend_params params = backend_default_params();
    params.n_threads = threads;
    backend *be;
    bench_check(backend_create("cpu", &params, &be, &err), &err);

    double t0 = bench_now_s();
    unet *u;
    bench_check(unet_load(model, be, &u, NULL, &err), &err);
    double load_s = bench_now_s() - t0;
    double rss_loaded = bench_peak_rss_bytes();

    size_t plan;
    bench_check(unet_plan(u, be, b, h, w, TEXT_TOKENS, &plan, &err), &err);
    const unet_config *cfg = &u->cfg;
    size_t inputs = sizeof(float) * (size_t)(b * (h * w * (cfg->in_channels + cfg->out_channels) +
                                                  TEXT_TOKENS * cfg->cross_attention_dim +
                                                  u->pooled_dim + 6) + 1) +
                    6 * TENSOR_ALIGN;
    void *block;
    bench_check(backend_buffer_alloc(be, inputs + plan, &block, &err), &err);
    arena a;
    arena_init_borrowed(&a, block, inputs + plan);

    tensor latents =
        bench_random_input(be, &a, 4, (int64_t[]){b, h, w, cfg->in_channels}, 1.0f, 1);
    tensor text = bench_random_input(
        be, &a, 3, (int64_t[]){b, TEXT_TOKENS, cfg->cross_attention_dim}, 1.0f, 2);
    tensor pooled = bench_random_input(be, &a, 2, (int64_t[]){b, u->pooled_dim}, 1.0f, 3);
    tensor ids;
    bench_check(tensor_alloc(&ids, &a, DTYPE_F32, 2, (int64_t[]){b, 6}, &err), &err);
    float *ids_host = malloc((size_t)b * 6 * sizeof *ids_host);
    if (!ids_host)
        return 1;
    for (int64_t i = 0; i < b; i++) {
        float row[6] = {(float)height, (float)width, 0, 0, (float)height, (float)width};
        memcpy(ids_host + i * 6, row, sizeof row);
    }
    bench_check(backend_tensor_write(be, &ids, DTYPE_F32, ids_host, (size_t)b * 6, &err), &err);
    free(ids_host);
    tensor timestep;
    float t_host = 999.0f;
    bench_check(tensor_alloc(&timestep, &a, DTYPE_F32, 1, (int64_t[]){1}, &err), &err);
    bench_check(backend_tensor_write(be, &timestep, DTYPE_F32, &t_host, 1, &err), &err);
    tensor out;
    bench_check(tensor_alloc(&out, &a, DTYPE_F32, 4, (int64_t[]){b, h, w, cfg->out_channels}, &err),
        &err);

    unet_flop_count flops = unet_flops(cfg, b, h, w, TEXT_TOKENS);
    printf("model %s: %dx%d pixels (latents %lldx%lld, width x height), batch %d, threads %d\n",
           model, width, height, (long long)w, (long long)h, batch, threads);
    printf("load            %.1f s, peak RSS after load %.2f GB\n", load_s, rss_loaded / 1e9);
    printf("activation plan %.1f MB (+ %.1f MB inputs)\n", plan / 1e6, inputs / 1e6);
    printf("FLOPs           %.1f GFLOP (attention products %.1f)\n", flops.total / 1e9,
           flops.attention / 1e9);
    double best = INFINITY;
    for (int r = 0; r < runs; r++) {
        t0 = bench_now_s();
        bench_check(unet_forward(u, be, &a, &latents, &timestep, &text, &pooled, &ids, &out, &err), &err);
        bench_check(backend_synchronize(be, &err), &err);
        double s = bench_now_s() - t0;
        best = s < best ? s : best;
        printf("forward run %d   %.2f s, %.1f GFLOP/s\n", r + 1, s, flops.total / s / 1e9);
    }
    size_t n = (size_t)tensor_numel(&out);
    float *y = malloc(n * sizeof *y);
    if (!y)
        return 1;
    bench_check(backend_tensor_read(be, &out, DTYPE_F32, y, n, &err), &err);
    double sum_abs = 0;
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        bad += !isfinite(y[i]);
        sum_abs += fabs(y[i]);
    }
    free(y);
    printf("output          mean |y| %.4f, %zu non-finite\n", sum_abs / (double)n, bad);
    printf("best            %.2f s, %.1f GFLOP/s; peak RSS %.2f GB\n", best,
           flops.total / best / 1e9, bench_peak_rss_bytes() / 1e9);

    backend_buffer_free(be, block);
    unet_free(u);
    backend_destroy(be);
    return bad ? 1 : 0;
}
