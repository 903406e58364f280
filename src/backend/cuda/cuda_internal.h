/*
 * cuda_internal.h — the cuda backend's state and the pieces its op table is made of.
 *
 * Every op is queued on the backend's one stream and returns without waiting; host reads and
 * backend_synchronize wait, and report what failed on the device meanwhile. Float activations
 * and weights are all of the compute type T (F16, BF16, or F32 for checks); arithmetic inside
 * an op is fp32 (matrix products accumulate in fp32, norms and softmax reduce in fp32 or
 * fp64), and T only rounds what an op writes.
 *
 * Who does what:
 *   cuda_gemm.c        matrix products through cuBLASLt (linear, also added into a residual
 *                      and grouped; matmul; 1x1 convolutions; the two products of the tiled
 *                      attention path)
 *   cuda_conv.c        other convolutions through cuDNN's graph (backend) API, NHWC
 *   cuda_dnn_plan.c    what cuDNN graph users share: descriptors, engine choice, execution
 *   cuda_attention.c   attention: cuDNN's fused attention (cuda_sdpa.c) for F16/BF16 heads
 *                      of up to 128 with 1024 x 1024 scores or more (the UNet's larger
 *                      self-attention), cuda_flash.cu's kernel for smaller ones, otherwise
 *                      (the VAE's one head of 512, F32) blocks of query rows through cuBLASLt
 *                      with the score block in fp32 scratch; SDXLD_CUDA_ATTENTION forces one
 *                      for measuring
 *   cuda_norm.cu, cuda_softmax.cu, cuda_elementwise.cu, cuda_layout.cu   kernels of our own
 *
 * Bits: the same inputs give the same bits on the same GPU model and library versions (the
 * libraries' plans are chosen by shape and kept; no atomics in our kernels; cuDNN engines that
 * call themselves nondeterministic are refused). Matrix products and convolutions run image by
 * image with plans chosen for one image, and every kernel's reduction order depends on the
 * shape of one image only, so an image gets the same bits alone and in a batch.
 *
 * Memory: weights and arena buffers are cudaMalloc'd once (never managed memory). Scratch
 * (cuDNN workspace, group-norm partials, attention score blocks) grows to the largest shape
 * seen and is then reused: run a pass at the largest shape before capturing a CUDA graph.
 *
 * Layouts of weights (the shape stays PyTorch's, see tensor.h), all of the compute type:
 *   LINEAR [N, K]              row-major as given (the GEMM's transposed B)
 *   CONV   [Cout, Cin, kh, kw] stored [Cout, kh, kw, Cin] (cuDNN's NHWC filter layout); for
 *                              a 1x1 kernel that is [Cout, Cin], a LINEAR weight
 *   VECTOR, EMBEDDING          as given
 */
#ifndef SDXL_BACKEND_CUDA_CUDA_INTERNAL_H
#define SDXL_BACKEND_CUDA_CUDA_INTERNAL_H

#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "backend/backend.h"

/* Workspace every cuBLASLt call may use (NVIDIA's advice for Hopper: 32 MiB). */
#define CUDA_GEMM_WORKSPACE ((size_t)32 << 20)

/* Device memory that grows to the largest request and is then reused. */
typedef struct cuda_buffer {
    void *data;
    size_t bytes;
    uint64_t replacements; /* times data moved to a larger block */
} cuda_buffer;

/* Plans (cuBLASLt heuristics results, cuDNN execution plans) kept by shape: choosing one costs
 * far more than running it. Entries are owned by the module that made them. */
typedef struct cuda_plan_cache {
    void **plans;
    size_t count, capacity;
} cuda_plan_cache;

/* Which attention runs: SDXLD_CUDA_ATTENTION, read when the backend is created. */
typedef enum cuda_attention_path {
    CUDA_ATTENTION_AUTO = 0, /* unset or "auto": by shape (cuda_attention.c), the faster one */
    CUDA_ATTENTION_FLASH,    /* "flash": cuda_flash.cu, else the tiled path */
    CUDA_ATTENTION_CUDNN,    /* "cudnn": cuDNN's fused attention where it applies, no fallback */
} cuda_attention_path;

typedef struct cuda_backend {
    backend base; /* first: a backend * is a cuda_backend * */
    int device;
    int max_shared_optin; /* bytes of shared memory one block may opt in to */
    int multiprocessors;  /* SMs: how many blocks a launch needs to fill the GPU */
    cudaStream_t stream;
    cudaEvent_t queued; /* marks this stream's work so far for another's wait (wait_for) */
    cublasLtHandle_t lt;
    cudnnHandle_t dnn;
    void *gemm_workspace; /* CUDA_GEMM_WORKSPACE bytes */
    cuda_buffer conv_workspace;
    cuda_buffer scratch; /* one op at a time: group-norm partials, attention blocks */
    cuda_buffer staging; /* host copies in fp32 of tensors of another type (cuda_convert) */
    cuda_plan_cache gemm_plans, conv_plans, sdpa_plans;
    cuda_attention_path attention;
} cuda_backend;

static inline cuda_backend *cuda_of(backend *b)
{
    return (cuda_backend *)b;
}

/* ---- errors and memory (cuda_status.c) -------------------------------------------------- */

/* Each returns SDXL_OK for success, else SDXL_ERR_BACKEND (SDXL_ERR_OUT_OF_MEMORY for an
 * allocation) with "cuda backend: <what>: <the library's message>". */
sdxl_status cuda_check(cudaError_t e, const char *what, sdxl_error *err);
sdxl_status cuda_check_blas(cublasStatus_t s, const char *what, sdxl_error *err);
sdxl_status cuda_check_dnn(cudnnStatus_t s, const char *what, sdxl_error *err);
/* After a kernel launch: a bad launch configuration shows up here, not at the next wait. */
sdxl_status cuda_check_launch(const char *kernel, sdxl_error *err);

/* Makes buf hold at least `bytes`; waits for queued work before it frees a smaller block.
 * Refused while recording a graph (the wait and the allocation cannot be recorded). */
sdxl_status cuda_buffer_reserve(cuda_backend *cb, cuda_buffer *buf, size_t bytes, const char *what,
                                sdxl_error *err);
void cuda_buffer_release(cuda_buffer *buf);

/* Appends a plan (the cache takes nothing else: freeing entries is the module's job). */
sdxl_status cuda_plan_cache_add(cuda_plan_cache *cache, void *plan, sdxl_error *err);
/* The plan whose first key_bytes bytes equal key (every plan struct begins with its key,
 * zeroed before it was filled), or NULL. */
void *cuda_plan_cache_find(const cuda_plan_cache *cache, const void *key, size_t key_bytes);

/* The largest power of two up to CUDA_ALIGNMENT_CAP dividing the address and every offset
 * (bytes): what cuBLASLt and cuDNN are told about a pointer's alignment, and so part of what
 * chooses their kernels. Capped at 16 (what their vectorised kernels need) so that the choice,
 * and so the bits, do not depend on where in an arena a tensor happens to start. */
#define CUDA_ALIGNMENT_CAP 16u
int cuda_alignment(const void *p, size_t offset_bytes);

/* dst[i] = src[i] for n elements, from one float type to another, on the stream. */
sdxl_status cuda_convert(cuda_backend *cb, dtype src_type, const void *src, dtype dst_type,
                         void *dst, int64_t n, sdxl_error *err);

/* ---- recorded graphs (cuda_record.c) ---------------------------------------------------- */

sdxl_status cuda_record_begin(backend *b, sdxl_error *err);
sdxl_status cuda_record_end(backend *b, backend_graph **out, sdxl_error *err);
bool cuda_graph_current(const backend *b, const backend_graph *g);
sdxl_status cuda_graph_launch(backend *b, backend_graph *g, sdxl_error *err);
void cuda_graph_free(backend *b, backend_graph *g);

/* ---- matrix products (cuda_gemm.c) ------------------------------------------------------- */

/* C[M, N] = alpha · A[M, K] · op(B) + beta · C (+ bias[N]), row-major with leading dimensions
 * in elements; op(B) = B [K, N], or Bᵀ with B [N, K] when trans_b. Repeated `batch` times with
 * element strides between consecutive A, B, C and bias (a stride may be 0: the same A for
 * every entry). A and B are of ab_type, C and the bias of c_type (F32 scores from F16/BF16
 * operands are allowed). fp32 accumulation, never TF32. beta 0 (the default of an
 * initialiser that leaves it out) never reads C; beta 1 adds the product to C in place. */
typedef struct cuda_gemm_args {
    bool trans_b;
    int64_t m, n, k, lda, ldb, ldc;
    int64_t batch, stride_a, stride_b, stride_c, stride_bias;
    dtype ab_type, c_type;
    float alpha, beta;
    const void *a, *b, *bias;
    void *c;
} cuda_gemm_args;

sdxl_status cuda_gemm(cuda_backend *cb, const cuda_gemm_args *g, sdxl_error *err);
void cuda_gemm_plans_free(cuda_backend *cb);

/* y[..., N] = act(x[..., K] · wᵀ + bias), image by image; w is [N, K] of the compute type
 * (a LINEAR weight, or a 1x1 CONV weight). */
sdxl_status cuda_linear_rows(cuda_backend *cb, const tensor *x, const void *w, int64_t n,
                             const tensor *bias, backend_act act, tensor *y, sdxl_error *err);

sdxl_status cuda_linear(backend *b, const tensor *x, const tensor *w, const tensor *bias,
                        backend_act act, tensor *y, sdxl_error *err);
sdxl_status cuda_linear_add(backend *b, const tensor *x, const tensor *w, const tensor *bias,
                            tensor *y, sdxl_error *err);
sdxl_status cuda_linear_groups(backend *b, const tensor *x, const tensor *w, const tensor *bias,
                               int groups, tensor *y, sdxl_error *err);
sdxl_status cuda_matmul(backend *b, const tensor *a, const tensor *bm, bool trans_b, float alpha,
                        tensor *c, sdxl_error *err);

/* ---- convolution (cuda_conv.c) ------------------------------------------------------------ */

/* Re-arranges a PyTorch [Cout, Cin, kh, kw] weight (f32, host) into [Cout, kh, kw, Cin]. */
void cuda_conv_weight_layout(const float *src, float *dst, int64_t cout, int64_t cin, int64_t kh,
                             int64_t kw);
sdxl_status cuda_conv2d(backend *b, const tensor *x, const tensor *w, const tensor *bias,
                        const conv2d_params *p, tensor *y, sdxl_error *err);
void cuda_conv_plans_free(cuda_backend *cb);

/* ---- attention (cuda_attention.c, cuda_flash.cu) ---------------------------------------- */

sdxl_status cuda_attention(backend *b, const tensor *q, const tensor *k, const tensor *v, int heads,
                           bool causal, tensor *y, sdxl_error *err);
/* Whether cuda_flash_attention takes heads of d channels of this type at these addresses. */
bool cuda_flash_supported(dtype type, int64_t d, const tensor *q, const tensor *k, const tensor *v,
                          const tensor *y);
sdxl_status cuda_flash_attention(cuda_backend *cb, const tensor *q, const tensor *k,
                                 const tensor *v, int heads, bool causal, tensor *y,
                                 sdxl_error *err);

/* ---- cuDNN's fused attention (cuda_sdpa.c) ------------------------------------------------ */

/* Whether cuDNN's fused attention is asked to take heads of d channels of this type. */
bool cuda_sdpa_supported(dtype type, int64_t d);
/* SDXL_ERR_UNSUPPORTED, naming the shape and cuDNN's reason, where cuDNN refuses the shape
 * (before anything is queued; a refused shape is remembered and refused again at once). */
sdxl_status cuda_sdpa_attention(cuda_backend *cb, const tensor *q, const tensor *k, const tensor *v,
                                int heads, bool causal, tensor *y, sdxl_error *err);
void cuda_sdpa_plans_free(cuda_backend *cb);

/* ---- softmax (cuda_softmax.cu) ------------------------------------------------------------ */

/* y[r, :] = softmax(x[r, :]) for rows of n elements; x of in_type (F32 or out_type), y of
 * out_type. Causal (the attention path): row r is query q0 + r % period and sees keys
 * 0 .. q0 + r % period only; the rest of its row is written as 0. */
sdxl_status cuda_softmax_rows(cuda_backend *cb, dtype in_type, const void *x, dtype out_type,
                              void *y, int64_t rows, int64_t n, bool causal, int64_t period,
                              int64_t q0, sdxl_error *err);
sdxl_status cuda_softmax(backend *b, const tensor *x, tensor *y, sdxl_error *err);

/* ---- normalisation (cuda_norm.cu) ------------------------------------------------------- */

sdxl_status cuda_group_norm(backend *b, const tensor *x, int groups, float eps, const tensor *gamma,
                            const tensor *beta, bool silu, tensor *y, sdxl_error *err);
sdxl_status cuda_layer_norm(backend *b, const tensor *x, float eps, const tensor *gamma,
                            const tensor *beta, tensor *y, sdxl_error *err);

/* ---- element-wise ops (cuda_elementwise.cu) ------------------------------------------------ */

sdxl_status cuda_unary(backend *b, backend_unary_op op, const tensor *x, tensor *y,
                       sdxl_error *err);
sdxl_status cuda_geglu(backend *b, const tensor *x, tensor *y, sdxl_error *err);
/* Also adds a conv's bias: z may be a VECTOR weight [C] (x's last dimension). */
sdxl_status cuda_binary(backend *b, backend_binary_op op, const tensor *x, const tensor *z,
                        tensor *y, sdxl_error *err);
sdxl_status cuda_add_scaled(backend *b, float alpha, const tensor *x, float beta, const tensor *z,
                            tensor *y, sdxl_error *err);
sdxl_status cuda_scale(backend *b, const tensor *x, float alpha, float beta, tensor *y,
                       sdxl_error *err);
sdxl_status cuda_div_scalar(backend *b, const tensor *x, float divisor, tensor *y,
                            sdxl_error *err);
sdxl_status cuda_clamp(backend *b, const tensor *x, float lo, float hi, tensor *y,
                       sdxl_error *err);
sdxl_status cuda_gaussian_sample(backend *b, const tensor *mean, const tensor *logvar,
                                 const tensor *noise, tensor *y, sdxl_error *err);
/* The op table's convert (cuda_convert above does the work). */
sdxl_status cuda_convert_tensor(backend *b, const tensor *x, tensor *y, sdxl_error *err);
sdxl_status cuda_normalize_pixels(backend *b, const tensor *x, tensor *y, sdxl_error *err);
sdxl_status cuda_denormalize_pixels(backend *b, const tensor *x, tensor *y, sdxl_error *err);
sdxl_status cuda_add_channels(backend *b, const tensor *x, const tensor *e, tensor *y,
                              sdxl_error *err);

/* ---- data movement (cuda_layout.cu) ----------------------------------------------------- */

sdxl_status cuda_upsample_nearest2x(backend *b, const tensor *x, tensor *y, sdxl_error *err);
sdxl_status cuda_concat_channels(backend *b, const tensor *a, const tensor *c, tensor *y,
                                 sdxl_error *err);
sdxl_status cuda_slice_channels(backend *b, const tensor *x, int64_t first, tensor *y,
                                sdxl_error *err);
sdxl_status cuda_timestep_embedding(backend *b, const tensor *t, bool flip_sin_to_cos,
                                    float downscale_freq_shift, float max_period, tensor *y,
                                    sdxl_error *err);
sdxl_status cuda_gather_rows(backend *b, const tensor *table, const tensor *ids, tensor *y,
                             sdxl_error *err);
sdxl_status cuda_copy(backend *b, const tensor *x, tensor *y, sdxl_error *err);
sdxl_status cuda_zero(backend *b, tensor *y, sdxl_error *err);

#ifdef __cplusplus
}
#endif

#endif /* SDXL_BACKEND_CUDA_CUDA_INTERNAL_H */
