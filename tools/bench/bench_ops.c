/*
 * bench_ops.c — how fast the cpu backend's heavy ops run at SDXL's shapes, next to the raw
 * sgemm of the linked BLAS on the same products (a micro-benchmark, not a test).
 *
 *     build/bench_ops [--threads N] [--seconds S]
 *
 * For each op: its FLOPs (a multiply-add = 2), its best time over repeated runs, GFLOP/s, and
 * the raw cblas_sgemm rate on the matrix products the op amounts to, run by the BLAS with its
 * own N threads — the ceiling the op is measured against. The op and the raw products run in
 * alternation and each keeps its best run: on a shared machine the best run is the least
 * disturbed one, and alternating exposes both to the same disturbances.
 * Results go to docs/BENCHMARKS.md ("CPU ops (issue 4)").
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "backend/backend.h"

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void blas_threads(int n)
{
#if defined(OPENBLAS_VERSION)
    openblas_set_num_threads(n);
#else
    (void)n;
#endif
}

static float *random_floats(size_t n, unsigned seed)
{
    float *x = malloc(n * sizeof(float));
    if (!x) {
        fprintf(stderr, "bench_ops: out of memory\n");
        exit(1);
    }
    unsigned s = seed;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
    }
    return x;
}

static void die(sdxl_status st, const sdxl_error *err)
{
    if (st) {
        fprintf(stderr, "bench_ops: %s\n", err->message);
        exit(1);
    }
}

typedef struct bench {
    backend *be;
    arena a;
    double seconds;
    int threads;
} bench;

/* Raw sgemm products: up to two (M, N, K) repeated `count` times each. */
typedef struct gemm_set {
    int n_gemms;
    int m[2], n[2], k[2];
    int count;
    float *a, *b, *c;
} gemm_set;

static void run_gemms(bench *bn, gemm_set *g)
{
    for (int r = 0; r < g->count; r++)
        for (int i = 0; i < g->n_gemms; i++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->m[i], g->n[i], g->k[i],
                        1.0f, g->a, g->k[i], g->b, g->n[i], 0.0f, g->c, g->n[i]);
}

typedef struct op_case {
    const char *name;
    tensor x, y, q, k, v, w, bias;
    int kind; /* 0 linear, 1 conv, 2 attention */
    conv2d_params p;
    int heads;
} op_case;

static void run_op(bench *bn, op_case *c)
{
    sdxl_error err;
    sdxl_status st = SDXL_OK;
    if (c->kind == 0)
        st = backend_linear(bn->be, &c->x, &c->w, &c->bias, BACKEND_ACT_NONE, &c->y, &err);
    else if (c->kind == 1)
        st = backend_conv2d(bn->be, &c->x, &c->w, &c->bias, &c->p, &c->y, &err);
    else
        st = backend_attention(bn->be, &c->q, &c->k, &c->v, c->heads, false, &c->y, &err);
    die(st, &err);
}

static tensor activation(bench *bn, int ndim, const int64_t *shape, unsigned seed)
{
    sdxl_error err;
    tensor t;
    die(tensor_alloc(&t, &bn->a, DTYPE_F32, ndim, shape, &err), &err);
    float *host = random_floats((size_t)tensor_numel(&t), seed);
    die(backend_tensor_write(bn->be, &t, DTYPE_F32, host, (size_t)tensor_numel(&t), &err), &err);
    free(host);
    return t;
}

static tensor weight(bench *bn, tensor_kind kind, int ndim, const int64_t *shape, unsigned seed)
{
    sdxl_error err;
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t)shape[i];
    float *host = random_floats(n, seed);
    for (size_t i = 0; i < n; i++)
        host[i] *= 0.05f;
    tensor t;
    die(backend_weight_upload(bn->be, kind, ndim, shape, DTYPE_F32, host, &t, &err), &err);
    free(host);
    return t;
}

/* Runs the op and its raw products alternately (one warm-up each) for at least 2 x seconds;
 * prints the best times as a table row. */
static void report(bench *bn, op_case *c, const char *shape, double flops, gemm_set g)
{
    size_t a = 0, b = 0, m = 0;
    for (int i = 0; i < g.n_gemms; i++) {
        size_t ai = (size_t)g.m[i] * (size_t)g.k[i], bi = (size_t)g.k[i] * (size_t)g.n[i],
               ci = (size_t)g.m[i] * (size_t)g.n[i];
        a = ai > a ? ai : a;
        b = bi > b ? bi : b;
        m = ci > m ? ci : m;
    }
    g.a = random_floats(a, 1);
    g.b = random_floats(b, 2);
    g.c = random_floats(m, 3);

    double best_op = INFINITY, best_raw = INFINITY, start = now_seconds();
    for (int run = 0; run < 4 || now_seconds() - start < 2.0 * bn->seconds; run++) {
        double t0 = now_seconds();
        run_op(bn, c);
        double t1 = now_seconds();
        blas_threads(bn->threads);
        double t2 = now_seconds();
        run_gemms(bn, &g);
        double t3 = now_seconds();
        blas_threads(1); /* the backend's own calls stay single-threaded */
        if (run > 0) {   /* run 0 warms up */
            best_op = t1 - t0 < best_op ? t1 - t0 : best_op;
            best_raw = t3 - t2 < best_raw ? t3 - t2 : best_raw;
        }
    }
    free(g.a);
    free(g.b);
    free(g.c);

    double raw_flops = 0;
    for (int i = 0; i < g.n_gemms; i++)
        raw_flops += 2.0 * g.m[i] * g.n[i] * g.k[i] * g.count;
    double ours = flops / best_op * 1e-9, raw = raw_flops / best_raw * 1e-9;
    printf("| %-18s | %-26s | %8.1f | %8.1f | %9.1f | %8.1f | %5.0f%% |\n", c->name, shape,
           flops * 1e-9, best_op * 1e3, ours, raw, 100.0 * ours / raw);
    fflush(stdout);
}

static void bench_linear(bench *bn, int64_t m, int64_t k, int64_t n)
{
    arena_reset_to(&bn->a, 0);
    op_case c = {.name = "linear", .kind = 0};
    c.x = activation(bn, 3, (int64_t[]){1, m, k}, 11);
    c.y = activation(bn, 3, (int64_t[]){1, m, n}, 12);
    c.w = weight(bn, TENSOR_WEIGHT_LINEAR, 2, (int64_t[]){n, k}, 13);
    c.bias = weight(bn, TENSOR_WEIGHT_VECTOR, 1, (int64_t[]){n}, 14);
    char shape[64];
    snprintf(shape, sizeof(shape), "%lldx%lldx%lld (MxKxN)", (long long)m, (long long)k,
             (long long)n);
    gemm_set g = {.n_gemms = 1, .m = {(int)m}, .n = {(int)n}, .k = {(int)k}, .count = 1};
    report(bn, &c, shape, 2.0 * (double)m * (double)n * (double)k, g);
    backend_weight_free(bn->be, &c.w);
    backend_weight_free(bn->be, &c.bias);
}

static void bench_conv(bench *bn, int64_t hw, int64_t cin, int64_t cout)
{
    arena_reset_to(&bn->a, 0);
    op_case c = {.name = "conv2d 3x3", .kind = 1, .p = {1, 1, 1, 1, 1}};
    c.x = activation(bn, 4, (int64_t[]){1, hw, hw, cin}, 21);
    c.y = activation(bn, 4, (int64_t[]){1, hw, hw, cout}, 22);
    c.w = weight(bn, TENSOR_WEIGHT_CONV, 4, (int64_t[]){cout, cin, 3, 3}, 23);
    c.bias = weight(bn, TENSOR_WEIGHT_VECTOR, 1, (int64_t[]){cout}, 24);
    char shape[64];
    snprintf(shape, sizeof(shape), "%lldx%lldx%lld -> %lld", (long long)hw, (long long)hw,
             (long long)cin, (long long)cout);
    int64_t m = hw * hw, k = 9 * cin;
    gemm_set g = {.n_gemms = 1, .m = {(int)m}, .n = {(int)cout}, .k = {(int)k}, .count = 1};
    report(bn, &c, shape, 2.0 * (double)m * (double)cout * (double)k, g);
    backend_weight_free(bn->be, &c.w);
    backend_weight_free(bn->be, &c.bias);
}

static void bench_attention(bench *bn, int64_t tokens, int heads, int64_t d)
{
    arena_reset_to(&bn->a, 0);
    op_case c = {.name = "attention", .kind = 2, .heads = heads};
    int64_t shape3[] = {1, tokens, heads * d};
    c.q = activation(bn, 3, shape3, 31);
    c.k = activation(bn, 3, shape3, 32);
    c.v = activation(bn, 3, shape3, 33);
    c.y = activation(bn, 3, shape3, 34);
    char shape[64];
    snprintf(shape, sizeof(shape), "%lld tok x %d heads x %lld", (long long)tokens, heads,
             (long long)d);
    /* The same products done plainly: scores [T, D]·[D, T], then [T, T]·[T, D], per head. */
    gemm_set g = {.n_gemms = 2,
                  .m = {(int)tokens, (int)tokens},
                  .n = {(int)tokens, (int)d},
                  .k = {(int)d, (int)tokens},
                  .count = heads};
    report(bn, &c, shape, 4.0 * (double)tokens * (double)tokens * (double)d * heads, g);
}

int main(int argc, char **argv)
{
    bench bn = {.seconds = 2.0, .threads = 0};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            bn.threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            bn.seconds = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--threads N] [--seconds S]\n", argv[0]);
            return 2;
        }
    }
    sdxl_error err;
    backend_params params = backend_default_params();
    params.n_threads = bn.threads;
    die(backend_create("cpu", &params, &bn.be, &err), &err);
    bn.threads = bn.be->params.n_threads;
    die(arena_init(&bn.a, (size_t)256 << 20, &err), &err);

    printf("cpu backend, %d threads; sgemm = the linked BLAS on the same products with %d "
           "threads\n\n",
           bn.threads, bn.threads);
    printf("| %-18s | %-26s | %8s | %8s | %9s | %8s | %6s |\n", "op", "shape", "GFLOP",
           "best ms", "GFLOP/s", "sgemm", "ratio");
    printf("|--------------------|----------------------------|----------|----------|-----------"
           "|----------|--------|\n");
    bench_linear(&bn, 4096, 640, 640);
    bench_linear(&bn, 1024, 1280, 5120);
    bench_conv(&bn, 64, 320, 320);
    bench_conv(&bn, 128, 640, 640);
    bench_attention(&bn, 4096, 10, 64);
    bench_attention(&bn, 4096, 1, 512);
    arena_free(&bn.a);
    backend_destroy(bn.be);
    return 0;
}
