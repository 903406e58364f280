/*
 * cpu_conv.c — 2-D convolution over NHWC activations as tiled im2col + GEMM.
 *
 * Each task takes a tile of consecutive output pixels of one image and a block of output
 * channels, gathers the input patch under each pixel into a row of a per-thread scratch matrix
 * [pixels, kh*kw*Cin] (zeros where the kernel hangs over the padding), and multiplies it by
 * its columns of the weight stored as [kh*kw*Cin, Cout], writing its part of the tile's output
 * rows in place. Each channel block gathers its tile again and the BLAS packs the gathered
 * rows again (measured: a fifth of the VAE decoder's time went to those two copies), so
 * channels are cut only when an image has too few tiles to share among 16 threads (the UNet's
 * inner levels), never for large images. A 1x1 convolution with stride 1 and no padding needs
 * no gathering: the input rows are the patch rows. A 3x3 one with stride 1 over a large image
 * goes to cpu_winograd.c instead. Tiles never span two images and their size depends only on
 * the layer, so each image gets the same bits alone or in a batch, with any number of threads.
 */
#include "backend/cpu/cpu_backend.h"

#include <string.h>

void cpu_conv_weight_layout(const float *src, float *dst, int cout, int cin, int kh, int kw)
{
    size_t taps = (size_t)kh * (size_t)kw, nout = (size_t)cout, nin = (size_t)cin;
    for (size_t co = 0; co < nout; co++)
        for (size_t ci = 0; ci < nin; ci++)
            for (size_t tap = 0; tap < taps; tap++) /* tap = ky * kw + kx */
                dst[(tap * nin + ci) * nout + co] = src[(co * nin + ci) * taps + tap];
}

typedef struct conv_job {
    const float *x, *w, *bias;
    float *y;
    float *const *scratch;
    int h, w_in, cin, ho, wo, cout, kh, kw;
    conv2d_params p;
    bool direct; /* 1x1, stride 1, no padding: no im2col */
    size_t tile, tiles_per_image, col_block, col_blocks;
} conv_job;

/* Patch rows for output pixels [p0, p1) of one image into a [p1 - p0, kh*kw*cin] matrix. */
static void conv_im2col(const conv_job *job, const float *x, size_t p0, size_t p1, float *a)
{
    size_t cin = (size_t)job->cin, k = (size_t)job->kh * (size_t)job->kw * cin;
    for (size_t p = p0; p < p1; p++, a += k) {
        int oy = (int)(p / (size_t)job->wo), ox = (int)(p % (size_t)job->wo);
        float *dst = a;
        for (int ky = 0; ky < job->kh; ky++) {
            int iy = oy * job->p.stride + ky - job->p.pad_top;
            for (int kx = 0; kx < job->kw; kx++, dst += cin) {
                int ix = ox * job->p.stride + kx - job->p.pad_left;
                if (iy < 0 || iy >= job->h || ix < 0 || ix >= job->w_in)
                    memset(dst, 0, cin * sizeof(float));
                else
                    memcpy(dst, x + ((size_t)iy * (size_t)job->w_in + (size_t)ix) * cin,
                           cin * sizeof(float));
            }
        }
    }
}

static void conv_tile(void *ctx, size_t begin, size_t end, int thread)
{
    const conv_job *job = ctx;
    size_t in_pixels = (size_t)job->h * (size_t)job->w_in;
    size_t out_pixels = (size_t)job->ho * (size_t)job->wo;
    size_t k = (size_t)job->kh * (size_t)job->kw * (size_t)job->cin;
    size_t cout = (size_t)job->cout;
    for (size_t task = begin; task < end; task++) {
        size_t image = task / (job->tiles_per_image * job->col_blocks);
        size_t tile = task / job->col_blocks % job->tiles_per_image;
        size_t c0 = task % job->col_blocks * job->col_block;
        size_t cols = cout - c0 < job->col_block ? cout - c0 : job->col_block;
        size_t p0 = tile * job->tile;
        size_t p1 = p0 + job->tile < out_pixels ? p0 + job->tile : out_pixels;
        const float *x = job->x + image * in_pixels * (size_t)job->cin;
        /* Scratch: the patch matrix [tile, k], then the GEMM's padding. */
        float *patches = job->scratch[thread], *pad = patches + job->tile * k;
        const float *a = patches;
        if (job->direct)
            a = x + p0 * k;
        else
            conv_im2col(job, x, p0, p1, patches);
        float *y = job->y + (image * out_pixels + p0) * cout + c0;
        cpu_sgemm_rows(false, (int)(p1 - p0), (int)cols, (int)k, 1.0f, a, (int)k, job->w + c0,
                       (int)cout, y, (int)cout, pad);
        if (job->bias)
            for (size_t r = 0; r < p1 - p0; r++)
                for (size_t j = 0; j < cols; j++)
                    y[r * cout + j] += job->bias[c0 + j];
    }
}

/* Tiles per image that give 16 threads enough tasks without cutting output channels. */
#define CONV_TILES_TO_SHARE 16

/* Output pixels per task: enough rows for the GEMM to run at full speed and to amortise
 * packing the weight once per call, with the patch matrix kept to about 8 MiB; a multiple of
 * the GEMM row unit, so only an image's last tile has a remainder. */
static size_t conv_tile_pixels(size_t k)
{
    size_t t = (2u << 20) / k;
    t = t / CPU_GEMM_ROW_UNIT * CPU_GEMM_ROW_UNIT;
    if (t < 2 * CPU_GEMM_ROW_UNIT)
        t = 2 * CPU_GEMM_ROW_UNIT;
    if (t > 10 * CPU_GEMM_ROW_UNIT)
        t = 10 * CPU_GEMM_ROW_UNIT;
    return t;
}

sdxl_status cpu_conv2d(backend *b, const tensor *x, const tensor *w, const tensor *bias,
                       const conv2d_params *p, tensor *y, sdxl_error *err)
{
    cpu_backend *cb = cpu_of(b);
    if (cpu_winograd_applies(x, w, p, y))
        return cpu_conv2d_winograd(cb, x, w, bias, y, err);
    conv_job job = {
        .x = x->data,
        .w = w->data,
        .bias = bias ? bias->data : NULL,
        .y = y->data,
        .scratch = cb->scratch,
        .h = (int)x->shape[1],
        .w_in = (int)x->shape[2],
        .cin = (int)x->shape[3],
        .ho = (int)y->shape[1],
        .wo = (int)y->shape[2],
        .cout = (int)y->shape[3],
        .kh = (int)w->shape[2],
        .kw = (int)w->shape[3],
        .p = *p,
    };
    job.direct = job.kh == 1 && job.kw == 1 && p->stride == 1 && p->pad_top == 0 &&
                 p->pad_left == 0 && p->pad_bottom == 0 && p->pad_right == 0;
    size_t k = (size_t)job.kh * (size_t)job.kw * (size_t)job.cin;
    size_t out_pixels = (size_t)job.ho * (size_t)job.wo;
    job.tile = conv_tile_pixels(k);
    job.tiles_per_image = (out_pixels + job.tile - 1) / job.tile;
    job.col_block = job.tiles_per_image >= CONV_TILES_TO_SHARE
                        ? (size_t)job.cout
                        : (size_t)cpu_gemm_col_block(job.cout, (int)k);
    job.col_blocks = ((size_t)job.cout + job.col_block - 1) / job.col_block;
    sdxl_status st = cpu_scratch_reserve(
        cb, job.tile * k + cpu_sgemm_pad_floats((int)job.col_block, (int)k), err);
    if (st)
        return st;
    cpu_parallel_range(cb, (size_t)x->shape[0] * job.tiles_per_image * job.col_blocks, 1,
                       conv_tile, &job);
    return SDXL_OK;
}
