/*
 * cuda_attention.c — scaled-dot-product attention.
 *
 * F16 and BF16 heads of up to 128 channels in multiples of 8 whose score matrix has
 * CUDNN_MIN_SCORES entries or more (the UNet's self-attention of 1024 tokens and more) go to
 * cuDNN's fused attention (cuda_sdpa.c); smaller ones (the cross-attention on the text, CLIP,
 * the UNet's 256-token level), and shapes cuDNN refuses, to the fused kernel in cuda_flash.cu
 * (heads of 64 or 128).
 * SDXLD_CUDA_ATTENTION forces one for measuring: "flash" never uses cuDNN, "cudnn" uses it
 * wherever it applies, with no fallback. Everything else — the VAE's one head of 512, F32 (the
 * checking type), other head sizes — runs in blocks of query rows, per image and block:
 *   S = Q Kᵀ / sqrt(D)   every head at once: one batched cuBLASLt product into fp32 scratch
 *   P = softmax(S)       in the compute type, keys past the query masked when causal
 *   Y = P V              a second batched product, written straight into the heads' columns
 * The scratch holds one block, heads x rows x Tk x (4 + sizeof(T)) bytes, with rows chosen so
 * that it stays under ATTENTION_SCRATCH (1344 rows of the 16384 keys of a 1024x1024 VAE in
 * BF16): never Tq x Tk. The cut depends on Tq, Tk and the heads only, not on the batch.
 */
#include "backend/cuda/cuda_internal.h"

#include <math.h>

#define ATTENTION_SCRATCH ((size_t)128 << 20)

/* Measured on an H100 (docs/BENCHMARKS.md, cuda log step 13): cuDNN's wgmma kernel beats ours
 * by 17 us on 1024 x 1024 scores and 130 us on 4096 x 4096, but by 1 us or less on 256 x 256
 * and on 77 keys, less than the ~3 us each cuDNN call costs a replayed graph besides. */
#define CUDNN_MIN_SCORES ((int64_t)1024 * 1024)

/* Whether cuDNN's fused attention is the one asked to run this attention. */
static bool cudnn_wanted(const cuda_backend *cb, const tensor *q, const tensor *k, int heads)
{
    if (!cuda_sdpa_supported(q->type, q->shape[2] / heads))
        return false;
    if (cb->attention == CUDA_ATTENTION_AUTO)
        return q->shape[1] * k->shape[1] >= CUDNN_MIN_SCORES;
    return cb->attention == CUDA_ATTENTION_CUDNN;
}

sdxl_status cuda_attention(backend *b, const tensor *q, const tensor *k, const tensor *v, int heads,
                           bool causal, tensor *y, sdxl_error *err)
{
    cuda_backend *cb = cuda_of(b);
    int64_t images = q->shape[0], tq = q->shape[1], tk = k->shape[1], width = q->shape[2];
    int64_t d = width / heads;
    if (cudnn_wanted(cb, q, k, heads)) {
        sdxl_status st = cuda_sdpa_attention(cb, q, k, v, heads, causal, y, err);
        /* Unless cuDNN was forced, a shape it refuses runs below. */
        if (st != SDXL_ERR_UNSUPPORTED || cb->attention == CUDA_ATTENTION_CUDNN)
            return st;
    }
    if (heads <= 65535 && cuda_flash_supported(q->type, d, q, k, v, y))
        return cuda_flash_attention(cb, q, k, v, heads, causal, y, err);

    dtype type = q->type;
    size_t es = dtype_size(type);
    size_t row_bytes = (size_t)heads * (size_t)tk * (sizeof(float) + es);
    int64_t rows = (int64_t)(ATTENTION_SCRATCH / row_bytes);
    if (rows >= tq)
        rows = tq;
    else if (rows >= 64)
        rows = rows / 64 * 64; /* whole tiles for cuBLASLt, except the last block */
    else if (rows < 1)
        rows = 1;
    /* Scores [heads, rows, Tk] in fp32, then probabilities of the same shape in T. */
    size_t score_bytes = ((size_t)(rows * heads * tk) * sizeof(float) + 255) / 256 * 256;
    SDXL_TRY(cuda_buffer_reserve(cb, &cb->scratch, score_bytes + (size_t)(rows * heads * tk) * es,
                                 "attention scratch", err));
    float *scores = cb->scratch.data;
    unsigned char *probs = (unsigned char *)cb->scratch.data + score_bytes;
    float scale = (float)(1.0 / sqrt((double)d));

    for (int64_t image = 0; image < images; image++) {
        const unsigned char *kb =
            (const unsigned char *)k->data + (size_t)(image * tk * width) * es;
        const unsigned char *vb =
            (const unsigned char *)v->data + (size_t)(image * tk * width) * es;
        for (int64_t q0 = 0; q0 < tq; q0 += rows) {
            int64_t n = rows < tq - q0 ? rows : tq - q0;
            size_t offset = (size_t)((image * tq + q0) * width) * es;
            cuda_gemm_args s = {
                .trans_b = true,
                .m = n,
                .n = tk,
                .k = d,
                .lda = width,
                .ldb = width,
                .ldc = tk,
                .batch = heads,
                .stride_a = d,
                .stride_b = d,
                .stride_c = n * tk,
                .ab_type = type,
                .c_type = DTYPE_F32,
                .alpha = scale,
                .a = (const unsigned char *)q->data + offset,
                .b = kb,
                .c = scores,
            };
            SDXL_TRY(cuda_gemm(cb, &s, err));
            SDXL_TRY(cuda_softmax_rows(cb, DTYPE_F32, scores, type, probs, heads * n, tk, causal, n,
                                       q0, err));
            cuda_gemm_args o = {
                .trans_b = false,
                .m = n,
                .n = d,
                .k = tk,
                .lda = tk,
                .ldb = width,
                .ldc = width,
                .batch = heads,
                .stride_a = n * tk,
                .stride_b = d,
                .stride_c = d,
                .ab_type = type,
                .c_type = type,
                .alpha = 1.0f,
                .a = probs,
                .b = vb,
                .c = (unsigned char *)y->data + offset,
            };
            SDXL_TRY(cuda_gemm(cb, &o, err));
        }
    }
    return SDXL_OK;
}
