/*
 * cpu_winograd.c — 3×3, stride 1, padding 1 convolutions over large NHWC images as Winograd
 * F(2×2, 3×3): 16 multiplications per input channel for a 2×2 block of output pixels, where
 * the direct convolution makes 36 — 2.25 times fewer.
 *
 * With U = G g Gᵀ per (ci, co) (the 3×3 kernel g taken to 4×4) and V = Bᵀ d B per 4×4 input
 * patch d and channel, the 2×2 output block is Aᵀ [Σ_ci U ⊙ V] A. For each of the 16
 * positions of those 4×4 matrices, the sum over ci is one product of [tiles, Cin] by
 * [Cin, Cout] (cpu_sgemm_rows): the work stays in BLAS products, on tiles instead of pixels.
 * G, Bᵀ and Aᵀ hold only 0, ±1 and ±½, so the transforms only add, subtract and halve;
 * against a double-precision convolution the error is of the direct path's order
 * (test_backend_ops). The transforms run on eight channels at a time (cpu_simd.h).
 *
 * The cost outside the products — transforming the weights at every call (16 × Cin × Cout
 * floats; they are not stored twice), the input patches and the outputs — is repaid only by
 * many tiles, so cpu_conv2d takes this path from WINOGRAD_MIN_PIXELS output pixels: the VAE
 * at every level, the UNet's 64×64 level at 512×512; the UNet's inner levels stay direct.
 * Measured (full-size VAE at 512², 2 threads): decode 17.9 → 10.3 s, encode 8.8 → 5.1 s.
 * A task is a block of tiles of one image, of a size set by the layer alone, so an image gets
 * the same bits alone or in a batch, with any number of threads.
 */
#include "backend/cpu/cpu_backend.h"

#include <string.h>

#include "backend/cpu/cpu_simd.h"

/* Output pixels from which a convolution takes this path. */
#define WINOGRAD_MIN_PIXELS 4096
/* A thread's transformed inputs and outputs, floats. */
#define WINOGRAD_SCRATCH_FLOATS (3u << 20)
#define WINOGRAD_MAX_TILES (10 * CPU_GEMM_ROW_UNIT)

bool cpu_winograd_applies(const tensor *x, const tensor *w, const conv2d_params *p,
                          const tensor *y)
{
    return w->shape[2] == 3 && w->shape[3] == 3 && p->stride == 1 && p->pad_top == 1 &&
           p->pad_left == 1 && p->pad_bottom == 1 && p->pad_right == 1 &&
           y->shape[1] * y->shape[2] >= WINOGRAD_MIN_PIXELS;
}

typedef struct winograd_job {
    const float *x, *w, *bias;
    float *y, *u;
    float *const *scratch;
    size_t h, wd, cin, cout;            /* input = output size: h × wd */
    size_t tiles_w, tiles, block, blocks; /* 2×2 tiles per row, per image; tiles per task */
} winograd_job;

/* Eight channels from p (n < 8: the first n, the other lanes zero), and back. The transforms
 * only add, subtract and halve, so a lane gives the same bits as the scalar arithmetic would,
 * and a partial vector the same as a full one. */
static inline void lanes_load(cpu_f8 *v, const float *p, size_t n)
{
    if (n == 8) {
        *v = cpu_f8_load(p);
        return;
    }
    *v = cpu_f8_splat(0.0f);
    memcpy(v, p, n * sizeof(float));
}

static inline void lanes_store(float *p, const cpu_f8 *v, size_t n)
{
    if (n == 8)
        cpu_f8_store(p, v);
    else
        memcpy(p, v, n * sizeof(float));
}

/* U[pos][ci][co] = (G g Gᵀ)[pos] for the input channels [begin, end), g from the weight
 * stored as [ky][kx][ci][co]. */
CPU_SIMD_CLONES static void winograd_weights(void *ctx, size_t begin, size_t end, int thread)
{
    const winograd_job *job = ctx;
    size_t cin = job->cin, cout = job->cout;
    for (size_t ci = begin; ci < end; ci++)
        for (size_t co = 0; co < cout; co += 8) {
            size_t n = cout - co < 8 ? cout - co : 8;
            cpu_f8 t[4][3]; /* G g: rows of G (1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1) times g */
            for (size_t k = 0; k < 3; k++) {
                cpu_f8 g0, g1, g2;
                lanes_load(&g0, job->w + (k * cin + ci) * cout + co, n);
                lanes_load(&g1, job->w + ((3 + k) * cin + ci) * cout + co, n);
                lanes_load(&g2, job->w + ((6 + k) * cin + ci) * cout + co, n);
                t[0][k] = g0;
                t[1][k] = (g0 + g1 + g2) * 0.5f;
                t[2][k] = (g0 - g1 + g2) * 0.5f;
                t[3][k] = g2;
            }
            for (size_t r = 0; r < 4; r++) {
                cpu_f8 u[4] = {t[r][0], (t[r][0] + t[r][1] + t[r][2]) * 0.5f,
                               (t[r][0] - t[r][1] + t[r][2]) * 0.5f, t[r][2]};
                for (size_t c = 0; c < 4; c++)
                    lanes_store(job->u + ((4 * r + c) * cin + ci) * cout + co, &u[c], n);
            }
        }
}

/* v[pos][t][ci] = (Bᵀ d B)[pos] for tiles [t0, t0 + rows) of one image (x: its pixels). */
CPU_SIMD_CLONES static void winograd_inputs(const winograd_job *job, const float *x, size_t t0,
                                            size_t rows, float *v, const float *zeros)
{
    size_t cin = job->cin, plane = job->block * cin;
    for (size_t t = 0; t < rows; t++) {
        size_t ty = (t0 + t) / job->tiles_w, tx = (t0 + t) % job->tiles_w;
        const float *d[16];
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4; c++) {
                /* Patch row 0 is the padding row above output row 2·ty. */
                long iy = (long)(2 * ty) - 1 + r, ix = (long)(2 * tx) - 1 + c;
                bool inside = iy >= 0 && iy < (long)job->h && ix >= 0 && ix < (long)job->wd;
                d[4 * r + c] = inside ? x + ((size_t)iy * job->wd + (size_t)ix) * cin : zeros;
            }
        float *out = v + t * cin;
        for (size_t ci = 0; ci < cin; ci += 8) {
            size_t n = cin - ci < 8 ? cin - ci : 8;
            cpu_f8 b[4][4]; /* Bᵀ d: rows (1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1) */
            for (int c = 0; c < 4; c++) {
                cpu_f8 d0, d1, d2, d3;
                lanes_load(&d0, d[c] + ci, n);
                lanes_load(&d1, d[4 + c] + ci, n);
                lanes_load(&d2, d[8 + c] + ci, n);
                lanes_load(&d3, d[12 + c] + ci, n);
                b[0][c] = d0 - d2;
                b[1][c] = d1 + d2;
                b[2][c] = d2 - d1;
                b[3][c] = d1 - d3;
            }
            for (int r = 0; r < 4; r++) {
                cpu_f8 o[4] = {b[r][0] - b[r][2], b[r][1] + b[r][2], b[r][2] - b[r][1],
                               b[r][1] - b[r][3]};
                for (int c = 0; c < 4; c++)
                    lanes_store(out + (size_t)(4 * r + c) * plane + ci, &o[c], n);
            }
        }
    }
}

/* y's 2×2 blocks = Aᵀ m A (+ bias) for tiles [t0, t0 + rows) of one image, m[pos][t][co]. */
CPU_SIMD_CLONES static void winograd_outputs(const winograd_job *job, const float *m, size_t t0,
                                             size_t rows, float *y)
{
    size_t cout = job->cout, plane = job->block * cout;
    for (size_t t = 0; t < rows; t++) {
        size_t ty = (t0 + t) / job->tiles_w, tx = (t0 + t) % job->tiles_w;
        const float *in = m + t * cout;
        float *dst[2][2];
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++) {
                size_t oy = 2 * ty + (size_t)i, ox = 2 * tx + (size_t)j;
                bool keep = oy < job->h && ox < job->wd;
                dst[i][j] = keep ? y + (oy * job->wd + ox) * cout : NULL;
            }
        for (size_t co = 0; co < cout; co += 8) {
            size_t n = cout - co < 8 ? cout - co : 8;
            cpu_f8 a[2][4]; /* Aᵀ m: rows (1 1 1 0; 0 1 -1 -1) */
            for (size_t c = 0; c < 4; c++) {
                cpu_f8 m0, m1, m2, m3;
                lanes_load(&m0, in + c * plane + co, n);
                lanes_load(&m1, in + (4 + c) * plane + co, n);
                lanes_load(&m2, in + (8 + c) * plane + co, n);
                lanes_load(&m3, in + (12 + c) * plane + co, n);
                a[0][c] = m0 + m1 + m2;
                a[1][c] = m1 - m2 - m3;
            }
            cpu_f8 bias = cpu_f8_splat(0.0f);
            if (job->bias)
                lanes_load(&bias, job->bias + co, n);
            for (int i = 0; i < 2; i++) {
                cpu_f8 out[2] = {a[i][0] + a[i][1] + a[i][2] + bias,
                                 a[i][1] - a[i][2] - a[i][3] + bias};
                for (int j = 0; j < 2; j++)
                    if (dst[i][j])
                        lanes_store(dst[i][j] + co, &out[j], n);
            }
        }
    }
}

static void winograd_block(void *ctx, size_t begin, size_t end, int thread)
{
    const winograd_job *job = ctx;
    size_t cin = job->cin, cout = job->cout;
    /* Scratch: v [16][block][cin], m [16][block][cout], a row of zeros, the GEMMs' padding. */
    float *v = job->scratch[thread];
    float *m = v + 16 * job->block * cin;
    float *zeros = m + 16 * job->block * cout;
    float *pad = zeros + cin;
    memset(zeros, 0, cin * sizeof(float));
    for (size_t task = begin; task < end; task++) {
        size_t image = task / job->blocks;
        size_t t0 = task % job->blocks * job->block;
        size_t rows = job->tiles - t0 < job->block ? job->tiles - t0 : job->block;
        size_t pixels = job->h * job->wd;
        winograd_inputs(job, job->x + image * pixels * cin, t0, rows, v, zeros);
        for (size_t pos = 0; pos < 16; pos++)
            cpu_sgemm_rows(false, (int)rows, (int)cout, (int)cin, 1.0f,
                           v + pos * job->block * cin, (int)cin, job->u + pos * cin * cout,
                           (int)cout, m + pos * job->block * cout, (int)cout, pad);
        winograd_outputs(job, m, t0, rows, job->y + image * pixels * cout);
    }
}

/* Tiles per task: as many as the scratch holds, a multiple of the GEMM row unit. */
static size_t winograd_block_tiles(size_t cin, size_t cout)
{
    size_t t = WINOGRAD_SCRATCH_FLOATS / (16 * (cin + cout));
    t = t / CPU_GEMM_ROW_UNIT * CPU_GEMM_ROW_UNIT;
    if (t < CPU_GEMM_ROW_UNIT)
        t = CPU_GEMM_ROW_UNIT;
    return t > WINOGRAD_MAX_TILES ? WINOGRAD_MAX_TILES : t;
}

sdxl_status cpu_conv2d_winograd(cpu_backend *cb, const tensor *x, const tensor *w,
                                const tensor *bias, tensor *y, sdxl_error *err)
{
    winograd_job job = {
        .x = x->data,
        .w = w->data,
        .bias = bias ? bias->data : NULL,
        .y = y->data,
        .h = (size_t)y->shape[1],
        .wd = (size_t)y->shape[2],
        .cin = (size_t)x->shape[3],
        .cout = (size_t)y->shape[3],
    };
    job.tiles_w = (job.wd + 1) / 2;
    job.tiles = (job.h + 1) / 2 * job.tiles_w;
    job.block = winograd_block_tiles(job.cin, job.cout);
    job.blocks = (job.tiles + job.block - 1) / job.block;
    sdxl_status st = cpu_shared_reserve(cb, 16 * job.cin * job.cout * sizeof(float), err);
    if (st)
        return st;
    st = cpu_scratch_reserve(cb,
                             16 * job.block * (job.cin + job.cout) + job.cin +
                                 cpu_sgemm_pad_floats((int)job.cout, (int)job.cin),
                             err);
    if (st)
        return st;
    job.u = cb->shared;
    job.scratch = cb->scratch;
    cpu_parallel_range(cb, job.cin, 16, winograd_weights, &job);
    cpu_parallel_range(cb, (size_t)x->shape[0] * job.blocks, 1, winograd_block, &job);
    return SDXL_OK;
}
