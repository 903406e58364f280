/*
 * image_resize.c — Lanczos resizing, bit-exact with Pillow's Image.resize(size, LANCZOS) on RGB.
 *
 * This follows Pillow's libImaging/Resample.c step by step, because diffusers resizes with it
 * and a pixel off by one changes the latents:
 *   - per output position, a window of input positions and double-precision weights
 *     lanczos3((x − centre + 0.5) / filterscale), normalised to sum 1, where filterscale =
 *     max(1, in/out) widens the filter when shrinking (precompute_coeffs);
 *   - weights rounded to signed fixed point with 22 fractional bits, half away from zero
 *     (normalize_coeffs_8bpc);
 *   - sums in int starting at 2^21 (so the shift rounds), shifted right by 22 (arithmetic) and
 *     clamped to 0..255;
 *   - the horizontal pass first, over only the input rows the vertical pass will read, then
 *     the vertical pass; a pass whose size does not change is skipped.
 * The arithmetic (double weights, 32-bit int sums) is kept exactly as Pillow's, in the same
 * order, so the results are identical, not merely close.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/image.h"

#define LANCZOS_SUPPORT 3.0
#define PRECISION_BITS (32 - 8 - 2)

static double sinc(double x)
{
    if (x == 0.0)
        return 1.0;
    x = x * M_PI;
    return sin(x) / x;
}

static double lanczos(double x)
{
    if (-3.0 <= x && x < 3.0)
        return sinc(x) * sinc(x / 3);
    return 0.0;
}

/* The fixed-point weights of one pass: output position i reads input positions
 * first[i] .. first[i] + count[i] − 1 with weights k[i * ksize ..]. */
typedef struct resize_weights {
    int ksize;
    int *first;
    int *count;
    int32_t *k;
} resize_weights;

static void resize_weights_free(resize_weights *w)
{
    free(w->first);
    free(w->count);
    free(w->k);
}

static sdxl_status resize_weights_init(resize_weights *w, int in_size, int out_size,
                                       sdxl_error *err)
{
    memset(w, 0, sizeof *w);
    /* Pillow passes the box edges as floats: (float)in_size − 0.0f, exact for any image size. */
    double scale = (double)((float)in_size - 0.0f) / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = LANCZOS_SUPPORT * filterscale;
    w->ksize = (int)ceil(support) * 2 + 1;
    w->first = malloc(sizeof *w->first * (size_t)out_size);
    w->count = malloc(sizeof *w->count * (size_t)out_size);
    w->k = calloc((size_t)out_size * (size_t)w->ksize, sizeof *w->k);
    double *kd = malloc(sizeof *kd * (size_t)w->ksize);
    if (!w->first || !w->count || !w->k || !kd) {
        free(kd);
        resize_weights_free(w);
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY,
                         "out of memory for resize weights (%d to %d pixels)", in_size,
                         out_size);
    }
    for (int xx = 0; xx < out_size; xx++) {
        double center = 0.0 + (xx + 0.5) * scale;
        double ww = 0.0;
        double ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0)
            xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size)
            xmax = in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            double v = lanczos((x + xmin - center + 0.5) * ss);
            kd[x] = v;
            ww += v;
        }
        int32_t *k = w->k + (size_t)xx * w->ksize;
        for (int x = 0; x < xmax; x++) {
            double v = ww != 0.0 ? kd[x] / ww : kd[x];
            k[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS))
                         : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
        }
        w->first[xx] = xmin;
        w->count[xx] = xmax;
    }
    free(kd);
    return SDXL_OK;
}

static uint8_t clip8(int32_t v)
{
    v >>= PRECISION_BITS; /* arithmetic shift, as Pillow's lookup table index */
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* out rows 0..out_h are in rows row0 .. row0 + out_h, resampled horizontally to out_w. */
static void resize_horizontal(const uint8_t *in, int in_w, int row0, const resize_weights *w,
                              uint8_t *out, int out_w, int out_h)
{
    for (int yy = 0; yy < out_h; yy++) {
        const uint8_t *src = in + (size_t)(yy + row0) * in_w * 3;
        uint8_t *dst = out + (size_t)yy * out_w * 3;
        for (int xx = 0; xx < out_w; xx++) {
            const int32_t *k = w->k + (size_t)xx * w->ksize;
            const uint8_t *s = src + (size_t)w->first[xx] * 3;
            int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
            for (int x = 0; x < w->count[xx]; x++) {
                s0 += s[3 * x + 0] * k[x];
                s1 += s[3 * x + 1] * k[x];
                s2 += s[3 * x + 2] * k[x];
            }
            dst[3 * xx + 0] = clip8(s0);
            dst[3 * xx + 1] = clip8(s1);
            dst[3 * xx + 2] = clip8(s2);
        }
    }
}

/* out row yy is input rows w->first[yy] − row0 .. resampled vertically; width is unchanged. */
static void resize_vertical(const uint8_t *in, int width, int row0, const resize_weights *w,
                            uint8_t *out, int out_h)
{
    size_t row = (size_t)width * 3;
    for (int yy = 0; yy < out_h; yy++) {
        const int32_t *k = w->k + (size_t)yy * w->ksize;
        const uint8_t *src = in + (size_t)(w->first[yy] - row0) * row;
        uint8_t *dst = out + (size_t)yy * row;
        for (size_t i = 0; i < row; i++) {
            int32_t s = 1 << (PRECISION_BITS - 1);
            for (int y = 0; y < w->count[yy]; y++)
                s += src[(size_t)y * row + i] * k[y];
            dst[i] = clip8(s);
        }
    }
}

sdxl_status image_resize_lanczos(const image *in, int width, int height, image *out,
                                 sdxl_error *err)
{
    memset(out, 0, sizeof *out);
    if (width < 1 || height < 1 || in->width < 1 || in->height < 1)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "resize %dx%d to %dx%d: sizes must be at least 1x1", in->width,
                         in->height, width, height);
    bool horizontal = width != in->width, vertical = height != in->height;
    sdxl_status st;
    if (!horizontal && !vertical) {
        st = image_alloc(out, width, height, err);
        if (st == SDXL_OK)
            memcpy(out->pixels, in->pixels, (size_t)width * height * 3);
        return st;
    }

    resize_weights wv = {0}, wh = {0};
    image tmp = {0};
    st = resize_weights_init(&wv, in->height, height, err);
    if (st != SDXL_OK)
        return st;
    const uint8_t *src = in->pixels;
    int row0 = 0;
    if (horizontal) {
        /* Only the input rows that some output row reads. */
        int first = wv.first[0], last = wv.first[height - 1] + wv.count[height - 1];
        st = resize_weights_init(&wh, in->width, width, err);
        if (st == SDXL_OK)
            st = image_alloc(&tmp, width, last - first, err);
        if (st != SDXL_OK)
            goto done;
        resize_horizontal(in->pixels, in->width, first, &wh, tmp.pixels, width, last - first);
        src = tmp.pixels;
        row0 = first;
    }
    if (vertical) {
        st = image_alloc(out, width, height, err);
        if (st != SDXL_OK)
            goto done;
        resize_vertical(src, width, row0, &wv, out->pixels, height);
    } else {
        *out = tmp;
        tmp = (image){0};
    }
done:
    image_free(&tmp);
    resize_weights_free(&wv);
    resize_weights_free(&wh);
    return st;
}
