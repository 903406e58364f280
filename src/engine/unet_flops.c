/*
 * unet_flops.c — FLOPs of one UNet forward pass from its config (see unet_flops.h).
 */
#include "engine/unet_flops.h"

/* y [rows, out] = x [rows, in] · wᵀ */
static double linear(double rows, double in, double out)
{
    return 2.0 * rows * in * out;
}

/* k×k convolution producing pixels output positions */
static double conv(double pixels, double in, double out, int k)
{
    return 2.0 * pixels * in * out * k * k;
}

/* ResnetBlock2D at `pixels` positions (per batch): conv1, conv2, the 1×1 shortcut when the
 * channel count changes, and the time-embedding projection (once per image). */
static double resnet(double batch, double pixels, int in, int out, int temb)
{
    double f = conv(batch * pixels, in, out, 3) + conv(batch * pixels, out, out, 3) +
               linear(batch, temb, out);
    if (in != out)
        f += conv(batch * pixels, in, out, 1);
    return f;
}

/* q·kᵀ and p·v of one attention: 2 · (2 · Tq · Tk · C) per image. */
static double attention_products(double batch, double tq, double tk, int c)
{
    return 4.0 * batch * tq * tk * c;
}

/* Transformer2DModel over c channels at `pixels` tokens, depth blocks. */
static void transformer(unet_flop_count *f, double batch, double pixels, int c, int depth,
                        int context_dim, double context_tokens)
{
    double rows = batch * pixels;
    f->total += 2 * linear(rows, c, c); /* proj_in, proj_out */
    for (int k = 0; k < depth; k++) {
        double attn = attention_products(batch, pixels, pixels, c) +
                      attention_products(batch, pixels, context_tokens, c);
        f->attention += attn;
        f->total += attn;
        f->total += 4 * linear(rows, c, c);                        /* attn1 q, k, v, out */
        f->total += 2 * linear(rows, c, c);                        /* attn2 q, out */
        f->total += 2 * linear(batch * context_tokens, context_dim, c); /* attn2 k, v */
        f->total += linear(rows, c, 8.0 * c) + linear(rows, 4.0 * c, c); /* GEGLU ff */
    }
}

unet_flop_count unet_flops(const unet_config *cfg, int64_t batch, int64_t height, int64_t width,
                           int64_t context_tokens)
{
    unet_flop_count f = {0, 0};
    int n = cfg->n_blocks, temb = cfg->time_embed_dim, ctx = cfg->cross_attention_dim;
    double b = (double)batch, tokens = (double)context_tokens;
    double pixels[UNET_MAX_BLOCKS]; /* positions per image at each level */
    int64_t h = height, w = width;
    for (int i = 0; i < n; i++) {
        pixels[i] = (double)h * (double)w;
        h = (h - 1) / 2 + 1; /* 3×3 stride-2 conv with padding 1: ceil(h / 2) */
        w = (w - 1) / 2 + 1;
    }
    const int *ch = cfg->block_out_channels;

    /* time_embedding and the text_time add_embedding (one row per image) */
    f.total += linear(b, ch[0], temb) + linear(b, temb, temb);
    f.total += linear(b, cfg->projection_class_embeddings_input_dim, temb) +
               linear(b, temb, temb);
    f.total += conv(b * pixels[0], cfg->in_channels, ch[0], 3);

    for (int i = 0; i < n; i++) {
        int in = ch[i > 0 ? i - 1 : 0];
        for (int j = 0; j < cfg->layers_per_block[i]; j++) {
            f.total += resnet(b, pixels[i], j == 0 ? in : ch[i], ch[i], temb);
            if (cfg->down_cross_attn[i])
                transformer(&f, b, pixels[i], ch[i], cfg->transformer_layers_per_block[i], ctx,
                            tokens);
        }
        if (i < n - 1)
            f.total += conv(b * pixels[i + 1], ch[i], ch[i], 3);
    }

    f.total += 2 * resnet(b, pixels[n - 1], ch[n - 1], ch[n - 1], temb);
    transformer(&f, b, pixels[n - 1], ch[n - 1], cfg->transformer_layers_per_block[n - 1], ctx,
                tokens);

    for (int i = 0; i < n; i++) {
        int level = n - 1 - i, out = ch[level];
        int prev = ch[i > 0 ? level + 1 : level], skip_last = ch[level > 0 ? level - 1 : 0];
        int layers = cfg->layers_per_block[level] + 1;
        for (int j = 0; j < layers; j++) {
            int in = (j == 0 ? prev : out) + (j == layers - 1 ? skip_last : out);
            f.total += resnet(b, pixels[level], in, out, temb);
            if (cfg->up_cross_attn[i])
                transformer(&f, b, pixels[level], out, cfg->transformer_layers_per_block[level],
                            ctx, tokens);
        }
        if (i < n - 1)
            f.total += conv(b * pixels[level - 1], out, out, 3); /* after upsampling */
    }

    f.total += conv(b * pixels[0], ch[0], cfg->out_channels, 3);
    return f;
}
