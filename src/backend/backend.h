/*
 * backend.h — the compute backends and the operations the SDXL models are written in.
 *
 * A backend ("cpu"; "cuda" when built) owns device memory and runs ops on it. Model code calls
 * the backend_* functions below; each checks shapes, types and kinds the same way for every
 * backend (so a shape bug gives the same message everywhere, and a planning pass finds it
 * before any memory is touched), then calls the backend's entry in its op table.
 *
 * Conventions for every op:
 *  - Tensors are row-major and contiguous; activations are NHWC or token rows [B, T, C]
 *    (see tensor.h). "[..., C]" means any number of leading dimensions (ndim 1..4).
 *  - Float activations have the backend's compute type (backend_compute_type: F32 on cpu).
 *    Weight arguments are named w, bias, gamma, beta, table and must be of the kind stated.
 *  - Except the element-wise ops marked "F32 too" (add, mul, add_scaled, scale, div_scalar,
 *    clamp, gaussian_sample) and convert's output: they take F32 activations on every backend
 *    as well as the compute type, all operands of one call of one type. The scheduler keeps
 *    its latents in float32 whatever the models compute in, as diffusers' scheduler step does
 *    (it upcasts the sample), so its arithmetic runs on the device in float32.
 *  - The output is passed in, already made (tensor_alloc). If the output has no memory
 *    (planned on a planning arena) the op only checks shapes and returns SDXL_OK.
 *  - "In place allowed" means the output may be the same tensor as the named input (same
 *    data pointer); otherwise output memory must not overlap any input.
 *  - Ops may run asynchronously (a GPU stream): they return once the work is queued. Results
 *    are visible to later ops at once; to the host after backend_tensor_read (which waits) or
 *    backend_synchronize. An error found while running shows up at the next of those calls.
 *  - Deterministic: the same inputs give the same bits on the same backend and machine,
 *    whatever the thread count, and every image of a batch gets the bits it gets alone
 *    (dimension 0 of an activation is the batch).
 *  - A backend is used by one thread at a time (one per session); it runs its own threads.
 *  - On bad arguments an op returns SDXL_ERR_INVALID_ARGUMENT (SDXL_ERR_UNSUPPORTED for a
 *    type the backend cannot run) with a message naming the op, the argument and the shapes.
 *
 * Typical use (a resnet's first half, all shapes [n, h, w, c] unless said):
 *
 *     backend *be; backend_create("cpu", &params, &be, err);
 *     tensor w; backend_weight_upload(be, TENSOR_WEIGHT_CONV, 4, (int64_t[]){320, 320, 3, 3},
 *                                     DTYPE_F16, mmapped_bytes, &w, err);
 *     ...
 *     backend_group_norm(be, &x, 32, 1e-5f, &gamma, &beta, true, &t0, err);  // + SiLU
 *     backend_conv2d(be, &t0, &w, &b, &(conv2d_params){1, 1, 1, 1, 1}, &t1, err);
 *     backend_add_channels(be, &t1, &temb, &t1, err);                        // temb [n, c]
 */
#ifndef SDXL_BACKEND_BACKEND_H
#define SDXL_BACKEND_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/tensor.h"
#include "base/status.h"

typedef struct backend backend;

typedef struct backend_params {
    int n_threads;      /* host threads for the cpu backend; <= 0: every online CPU */
    int device;         /* GPU index (cuda) */
    dtype compute_type; /* float activations and weights: F32 (cpu); F16, BF16 or F32 (cuda) */
} backend_params;

backend_params backend_default_params(void);

/* name: "cpu" (always), "cuda" (when built). Unknown or unavailable names fail with
 * SDXL_ERR_UNSUPPORTED and a message listing the backends this build has. */
sdxl_status backend_create(const char *name, const backend_params *params, backend **out,
                           sdxl_error *err);
void backend_destroy(backend *b);
const char *backend_name(const backend *b);
/* The element type of float activations on this backend (what tensor_alloc should use). */
dtype backend_compute_type(const backend *b);

/* ---- memory ---------------------------------------------------------------------------- */

/* A block of backend memory (e.g. for an activation arena: arena_init_borrowed over it),
 * aligned to TENSOR_ALIGN. Freed by backend_buffer_free. */
sdxl_status backend_buffer_alloc(backend *b, size_t bytes, void **out, sdxl_error *err);
void backend_buffer_free(backend *b, void *buffer);

/* Makes a weight from host data: src holds numel elements of src_type (F32, F16, BF16 or F64;
 * may be unaligned, e.g. straight from an mmapped safetensors file) in PyTorch's layout for
 * the shape. The backend converts to its compute type and stores it in the layout it prefers.
 * Shapes by kind: LINEAR [out, in]; CONV [Cout, Cin, kh, kw]; VECTOR [n]; EMBEDDING
 * [rows, width]. Freed by backend_weight_free (which also accepts a zeroed tensor). */
sdxl_status backend_weight_upload(backend *b, tensor_kind kind, int ndim, const int64_t *shape,
                                  dtype src_type, const void *src, tensor *out, sdxl_error *err);
void backend_weight_free(backend *b, tensor *t);

/* Copies host memory into an activation / out of it. host_type is the tensor's type, or F32
 * for a float tensor of another type (converted). count must be tensor_numel(t). Reading
 * waits for the ops queued before it. No-ops on a planned tensor (data == NULL). */
sdxl_status backend_tensor_write(backend *b, tensor *t, dtype host_type, const void *src,
                                 size_t count, sdxl_error *err);
sdxl_status backend_tensor_read(backend *b, const tensor *t, dtype host_type, void *dst,
                                size_t count, sdxl_error *err);

/* Waits for every queued op; reports an error that happened while running them. */
sdxl_status backend_synchronize(backend *b, sdxl_error *err);

/* Orders two backends of the same kind on the same device (a model's parts computed in two
 * types, e.g. the VAE in BF16 beside the UNet in F16), whose queues otherwise run side by side:
 * the ops called on b after this call start after every op called on other before it. Needed
 * wherever b reads a tensor other wrote, or writes memory other may still be reading. Does not
 * block the host. The cpu backend runs ops as they are called, so there it only checks; b ==
 * other is allowed and orders nothing. Not while either is recording. */
sdxl_status backend_wait_for(backend *b, backend *other, sdxl_error *err);

/* ---- recorded op sequences ---------------------------------------------------------------
 *
 * A backend that can record (cuda: a CUDA graph) keeps the ops called between
 * backend_record_begin and backend_record_end, unrun, as a graph; backend_graph_launch then runs
 * exactly those ops again, on the same tensors (addresses) with the same arguments, for a
 * fraction of what launching them one by one costs. What a graph computes is what the ops
 * compute when called: the bits are the same.
 *
 * While recording nothing runs, so nothing may need the host: tensor writes and reads and
 * backend_synchronize fail, and so does an op that would first have to build a plan or grow
 * scratch memory. Run the same ops once, unrecorded, just before recording them. An op that
 * fails while recording spoils the recording: end it with out NULL.
 *
 * A graph holds the backend's scratch memory by address; when a later op (a larger shape)
 * replaces that memory, the graph goes stale (backend_graph_current) and must be recorded
 * again. The cpu backend cannot record: backend_can_record is false and the calls fail with
 * SDXL_ERR_UNSUPPORTED.
 *
 *     if (backend_can_record(be)) {
 *         run(be, ...);                                  // plans and scratch made here
 *         SDXL_TRY(backend_record_begin(be, err));
 *         sdxl_status st = run(be, ...);                 // recorded, not run
 *         SDXL_TRY(backend_record_end(be, st ? NULL : &g, err));
 *     }
 *     ... write the inputs ...; backend_graph_launch(be, g, err); ... read the outputs ...
 */
typedef struct backend_graph backend_graph;

bool backend_can_record(const backend *b);
sdxl_status backend_record_begin(backend *b, sdxl_error *err);
/* Ends the recording: *out is the graph, ready to launch; with out NULL it is dropped. */
sdxl_status backend_record_end(backend *b, backend_graph **out, sdxl_error *err);
/* False once scratch memory the graph uses has been replaced: record it again. */
bool backend_graph_current(const backend *b, const backend_graph *g);
/* Queues the recorded ops (like calling them: returns before they are done). */
sdxl_status backend_graph_launch(backend *b, backend_graph *g, sdxl_error *err);
/* NULL is fine. */
void backend_graph_free(backend *b, backend_graph *g);

/* ---- operations ------------------------------------------------------------------------ */

typedef enum backend_act {
    BACKEND_ACT_NONE = 0,
    BACKEND_ACT_GELU = 1,       /* x * 0.5 * (1 + erf(x / sqrt(2)))  (exact, not tanh) */
    BACKEND_ACT_QUICK_GELU = 2, /* x * sigmoid(1.702 x)  (CLIP ViT-L) */
    BACKEND_ACT_SILU = 3,       /* x * sigmoid(x) */
} backend_act;

typedef struct conv2d_params {
    int stride;
    /* Zero padding per side. Symmetric for SDXL's convs (1 for 3x3, 0 for 1x1), except the VAE
     * encoder's downsamplers, which pad (top 0, left 0, bottom 1, right 1) then use stride 2. */
    int pad_top, pad_left, pad_bottom, pad_right;
} conv2d_params;

/* y[..., N] = act(x[..., K] · wᵀ + bias).  w: LINEAR [N, K]; bias: VECTOR [N] or NULL.
 * y has x's leading dimensions. Not in place.
 * x's first dimension is the batch (for ndim >= 2): each image's rows are computed apart, so
 * that its bits do not depend on the batch. Keep token rows as [B, T, K] (a [B*T, K] x would
 * be B*T one-row products, far slower); [B, K] is right for one vector per image. */
sdxl_status backend_linear(backend *b, const tensor *x, const tensor *w, const tensor *bias,
                           backend_act act, tensor *y, sdxl_error *err);

/* y[..., N] += x[..., K] · wᵀ + bias: a residual stream updated by a product in one op
 * (x += linear(o)). w: LINEAR [N, K]; bias: VECTOR [N] or NULL; y has x's leading dimensions
 * and is read and written; it must not overlap x. The result is y + (x · wᵀ + bias): the cpu
 * gives exactly the bits of backend_linear then backend_add, a GPU adds y in the product's
 * epilogue and rounds once instead of twice. Per image, as backend_linear. */
sdxl_status backend_linear_add(backend *b, const tensor *x, const tensor *w, const tensor *bias,
                               tensor *y, sdxl_error *err);

/* G products of one input in one op: y[g, ..., N] = x[..., K] · w_gᵀ + bias_g, where w is G
 * LINEAR weights [N, K] stacked along the output dimension (a LINEAR [G·N, K], w_g its rows
 * g·N .. g·N+N-1) and bias VECTOR [G·N] (bias_g likewise) or NULL. y [G, ...x's leading
 * dimensions..., N]: each y[g] (tensor_view_slice) is what backend_linear with w_g gives,
 * e.g. attention's q, k and v of one input. Not in place. Per image, as backend_linear. */
sdxl_status backend_linear_groups(backend *b, const tensor *x, const tensor *w,
                                  const tensor *bias, int groups, tensor *y, sdxl_error *err);

/* c[i] = alpha · a[i] · b[i]  (b[i]ᵀ when trans_b), for i in 0..batch-1.
 * a [batch, M, K]; b [batch, K, N], or [batch, N, K] when trans_b; c [batch, M, N].
 * All activations. Not in place. */
sdxl_status backend_matmul(backend *b, const tensor *a, const tensor *bm, bool trans_b,
                           float alpha, tensor *c, sdxl_error *err);

/* 2-D convolution, NHWC, as torch's conv2d (cross-correlation) on the NCHW equivalent.
 * x [N, H, W, Cin]; w: CONV [Cout, Cin, kh, kw]; bias: VECTOR [Cout] or NULL;
 * y [N, Ho, Wo, Cout], Ho = (H + pad_top + pad_bottom - kh) / stride + 1 (division truncating,
 * as torch), Wo likewise with kw, pad_left, pad_right. Not in place. */
sdxl_status backend_conv2d(backend *b, const tensor *x, const tensor *w, const tensor *bias,
                           const conv2d_params *p, tensor *y, sdxl_error *err);

/* Group normalisation as torch.nn.GroupNorm on the NCHW equivalent: x [N, ..., C] (ndim >= 2;
 * the middle dimensions are the spatial positions), channels split into `groups` consecutive
 * groups; mean and (biased) variance per (image, group) over all positions and the group's
 * channels; y = (x - mean) / sqrt(var + eps) · gamma[c] + beta[c], then SiLU when silu.
 * gamma, beta: VECTOR [C]. C % groups == 0. In place allowed. */
sdxl_status backend_group_norm(backend *b, const tensor *x, int groups, float eps,
                               const tensor *gamma, const tensor *beta, bool silu, tensor *y,
                               sdxl_error *err);

/* Layer normalisation over the last dimension: x [..., C]; gamma, beta: VECTOR [C];
 * biased variance. In place allowed. */
sdxl_status backend_layer_norm(backend *b, const tensor *x, float eps, const tensor *gamma,
                               const tensor *beta, tensor *y, sdxl_error *err);

/* Softmax over the last dimension: x [..., N] -> y [..., N]. In place allowed. */
sdxl_status backend_softmax(backend *b, const tensor *x, tensor *y, sdxl_error *err);

/* Scaled dot-product attention, multi-head, as torch's F.scaled_dot_product_attention on
 * heads split from the channels (diffusers' and transformers' head_to_batch_dim):
 *   q [B, Tq, H*D]; k, v [B, Tk, H*D]; y [B, Tq, H*D]; head h is channels h*D .. h*D+D-1.
 *   y_h = softmax(q_h · k_hᵀ / sqrt(D) [+ causal mask]) · v_h.
 * heads = H >= 1 must divide the width; D up to 512 (the VAE's one head of 512).
 * causal: query i sees keys 0..i only (CLIP); requires Tq == Tk. Self- and cross-attention
 * (Tk != Tq) alike. Memory use stays O(Tq × block), never O(Tq × Tk). Not in place. */
sdxl_status backend_attention(backend *b, const tensor *q, const tensor *k, const tensor *v,
                              int heads, bool causal, tensor *y, sdxl_error *err);

/* Element-wise activations, any shape, y same shape as x. In place allowed. */
sdxl_status backend_activation(backend *b, backend_act act, const tensor *x, tensor *y,
                               sdxl_error *err);
sdxl_status backend_gelu(backend *b, const tensor *x, tensor *y, sdxl_error *err);
sdxl_status backend_quick_gelu(backend *b, const tensor *x, tensor *y, sdxl_error *err);
sdxl_status backend_silu(backend *b, const tensor *x, tensor *y, sdxl_error *err);

/* diffusers' GEGLU after its projection: x [..., 2F] -> y [..., F],
 * y = x[..., :F] * gelu(x[..., F:])  (hidden_states.chunk(2, dim=-1), exact gelu).
 * Not in place. */
sdxl_status backend_geglu(backend *b, const tensor *x, tensor *y, sdxl_error *err);

/* y = x + z and y = x * z. z has x's shape, or x's last z.ndim dimensions (then repeated
 * over x's leading dimensions, e.g. [B, T, C] + [T, C]). y has x's shape. In place allowed
 * (y may be x, or z when the shapes are equal). F32 too. */
sdxl_status backend_add(backend *b, const tensor *x, const tensor *z, tensor *y,
                        sdxl_error *err);
sdxl_status backend_mul(backend *b, const tensor *x, const tensor *z, tensor *y,
                        sdxl_error *err);

/* y = (alpha · x) + (beta · z), all the same shape: both products rounded to float, then
 * their sum (no fused multiply-add), so alpha = 1 gives torch's x + beta · z exactly (1 · x
 * is x) and alpha = 1, beta = -1 its x - z. In place allowed (y may be x or z). F32 too. */
sdxl_status backend_add_scaled(backend *b, float alpha, const tensor *x, float beta,
                               const tensor *z, tensor *y, sdxl_error *err);

/* y = (alpha · x) + beta (an affine map of every element; the product rounded first). With
 * beta = -0.0f it is exactly torch's alpha · x: v + (-0) is v for every v, -0 included (with
 * +0, a product of -0 would come out +0). In place allowed. F32 too. */
sdxl_status backend_scale(backend *b, const tensor *x, float alpha, float beta, tensor *y,
                          sdxl_error *err);

/* y = x / divisor: a true division, as torch's tensor / float, not x · (1 / divisor), which
 * differs in the last bit for most divisors (diffusers divides the latents by the VAE's
 * scaling factor and by sqrt(σ² + 1)). divisor nonzero and finite. In place allowed. F32 too. */
sdxl_status backend_div_scalar(backend *b, const tensor *x, float divisor, tensor *y,
                               sdxl_error *err);

/* y = min(max(x, lo), hi) as torch.clamp: NaN stays NaN. lo <= hi, neither NaN. In place
 * allowed. F32 too. */
sdxl_status backend_clamp(backend *b, const tensor *x, float lo, float hi, tensor *y,
                          sdxl_error *err);

/* y = mean + exp(0.5 · logvar) · noise, all the same shape, each step rounded to float as
 * diffusers' DiagonalGaussianDistribution.sample computes it (std = exp(0.5 · logvar), then
 * mean + std · noise). In place allowed (y may be any of the three). F32 too. */
sdxl_status backend_gaussian_sample(backend *b, const tensor *mean, const tensor *logvar,
                                    const tensor *noise, tensor *y, sdxl_error *err);

/* y = x converted to y's type (F32, F16, BF16 in any direction; rounded to nearest, ties to
 * even, as torch's .to()), same shape. y is F32 or b's compute type; x any float type and may
 * belong to another backend of the same kind on the same device, after backend_wait_for(b,
 * that backend). That is how a tensor passes between a model's parts of different types (the
 * VAE's BF16 latents and the UNet's F16 inputs, through the scheduler's F32). Not in place. */
sdxl_status backend_convert(backend *b, const tensor *x, tensor *y, sdxl_error *err);

/* Pixels to the VAE's input and its output back to pixels, as diffusers' VaeImageProcessor
 * computes them (after its resize; before its PIL conversion), so that a picture crosses to
 * and from the device as bytes:
 *   normalize:   y = 2 · (x / 255) − 1, x U8; float32, rounded after each operation, then to
 *                y's type (F32 or the compute type).
 *   denormalize: y = numpy's round(clamp(x / 2 + 0.5, 0, 1) · 255) (half to even) as U8, from
 *                x of F32 or the compute type, in float32; NaN gives 0 (numpy's cast of NaN to
 *                uint8 is undefined; x86 gives 0).
 * Same shapes; not in place. */
sdxl_status backend_normalize_pixels(backend *b, const tensor *x, tensor *y, sdxl_error *err);
sdxl_status backend_denormalize_pixels(backend *b, const tensor *x, tensor *y,
                                       sdxl_error *err);

/* y[n, ..., c] = x[n, ..., c] + e[n, c]: one vector per image added at every position (the
 * UNet's time embedding into a resnet). x [N, ..., C] (ndim >= 2); e [N, C]. In place
 * allowed (y may be x). */
sdxl_status backend_add_channels(backend *b, const tensor *x, const tensor *e, tensor *y,
                                 sdxl_error *err);

/* Nearest-neighbour upsampling by 2: x [N, H, W, C] -> y [N, 2H, 2W, C]. Not in place. */
sdxl_status backend_upsample_nearest2x(backend *b, const tensor *x, tensor *y,
                                       sdxl_error *err);

/* Concatenation along the last dimension: a [..., Ca], c [..., Cb] -> y [..., Ca + Cb];
 * leading dimensions equal (torch.cat(dim=1) of the NCHW equivalents). Not in place. */
sdxl_status backend_concat_channels(backend *b, const tensor *a, const tensor *c, tensor *y,
                                    sdxl_error *err);

/* Channels first .. first+Cy-1 of x: x [..., C] -> y [..., Cy] (e.g. the VAE posterior's mean
 * and log-variance, chunk(2, dim=1)). Not in place. */
sdxl_status backend_slice_channels(backend *b, const tensor *x, int64_t first, tensor *y,
                                   sdxl_error *err);

/* diffusers' get_timestep_embedding: t [n] (F32, one timestep or time id per row) ->
 * y [n, dim], dim = y's last dimension (even or odd; odd pads a zero column):
 *   half = dim / 2; freq[i] = exp(-ln(max_period) · i / (half - downscale_freq_shift));
 *   arg = t · freq (float32, as torch); y = [sin(arg), cos(arg)], or [cos, sin] when
 *   flip_sin_to_cos. SDXL: flip true, shift 0 (UNet time_proj, add_time_proj), period 10000. */
sdxl_status backend_timestep_embedding(backend *b, const tensor *t, bool flip_sin_to_cos,
                                       float downscale_freq_shift, float max_period, tensor *y,
                                       sdxl_error *err);

/* y[i, :] = table[ids[i], :]: table [R, C] (an EMBEDDING weight, or an activation viewed as
 * rows, e.g. hidden states [B*T, C] for CLIP's EOS pooling); ids [n] I32 activation;
 * y [n, C]. Every id must be in [0, R): the cpu backend checks (SDXL_ERR_INVALID_ARGUMENT);
 * a GPU backend cannot report it synchronously, so callers must pass valid ids. */
sdxl_status backend_gather_rows(backend *b, const tensor *table, const tensor *ids, tensor *y,
                                sdxl_error *err);

/* y = x, same shape and type (device to device). Not in place. */
sdxl_status backend_copy(backend *b, const tensor *x, tensor *y, sdxl_error *err);

/* y = 0: every byte of y zero (+0.0 in each float type), without data from the host (e.g.
 * diffusers' zeros_like for an absent negative prompt). */
sdxl_status backend_zero(backend *b, tensor *y, sdxl_error *err);

/* ---- the op table (for backend implementations) ------------------------------------------
 *
 * A backend fills one static backend_ops and embeds `backend` as the first member of its own
 * state. The backend_* wrappers above have already checked every shape, type, kind and
 * aliasing rule documented there before an entry is called, and skip the call for planned
 * outputs, so implementations only compute (and report device failures). Entries may queue
 * work and return before it is done, except read, synchronize and the free functions. The
 * entries of the ops marked "F32 too" take their operands' type from the tensors, which may
 * be F32 on a backend computing in another type. */
typedef enum backend_unary_op {
    BACKEND_UNARY_GELU = BACKEND_ACT_GELU,
    BACKEND_UNARY_QUICK_GELU = BACKEND_ACT_QUICK_GELU,
    BACKEND_UNARY_SILU = BACKEND_ACT_SILU,
} backend_unary_op;

typedef enum backend_binary_op {
    BACKEND_BINARY_ADD = 0,
    BACKEND_BINARY_MUL = 1,
} backend_binary_op;

typedef struct backend_ops {
    const char *name;
    void (*destroy)(backend *b);

    sdxl_status (*buffer_alloc)(backend *b, size_t bytes, void **out, sdxl_error *err);
    void (*buffer_free)(backend *b, void *buffer);
    /* out's kind, ndim, shape and type (the compute type) are filled in; set out->data. */
    sdxl_status (*weight_upload)(backend *b, tensor *out, dtype src_type, const void *src,
                                 sdxl_error *err);
    void (*weight_free)(backend *b, tensor *t);
    sdxl_status (*tensor_write)(backend *b, tensor *t, dtype host_type, const void *src,
                                sdxl_error *err);
    sdxl_status (*tensor_read)(backend *b, const tensor *t, dtype host_type, void *dst,
                               sdxl_error *err);
    sdxl_status (*synchronize)(backend *b, sdxl_error *err);
    sdxl_status (*wait_for)(backend *b, backend *other, sdxl_error *err);
    /* Recording (all NULL when the backend cannot record). The wrappers keep
     * backend.recording and refuse host copies while it is set. */
    sdxl_status (*record_begin)(backend *b, sdxl_error *err);
    sdxl_status (*record_end)(backend *b, backend_graph **out, sdxl_error *err);
    bool (*graph_current)(const backend *b, const backend_graph *g);
    sdxl_status (*graph_launch)(backend *b, backend_graph *g, sdxl_error *err);
    void (*graph_free)(backend *b, backend_graph *g);

    sdxl_status (*linear)(backend *b, const tensor *x, const tensor *w, const tensor *bias,
                          backend_act act, tensor *y, sdxl_error *err);
    sdxl_status (*linear_add)(backend *b, const tensor *x, const tensor *w, const tensor *bias,
                              tensor *y, sdxl_error *err);
    sdxl_status (*linear_groups)(backend *b, const tensor *x, const tensor *w,
                                 const tensor *bias, int groups, tensor *y, sdxl_error *err);
    sdxl_status (*matmul)(backend *b, const tensor *a, const tensor *bm, bool trans_b,
                          float alpha, tensor *c, sdxl_error *err);
    sdxl_status (*conv2d)(backend *b, const tensor *x, const tensor *w, const tensor *bias,
                          const conv2d_params *p, tensor *y, sdxl_error *err);
    sdxl_status (*group_norm)(backend *b, const tensor *x, int groups, float eps,
                              const tensor *gamma, const tensor *beta, bool silu, tensor *y,
                              sdxl_error *err);
    sdxl_status (*layer_norm)(backend *b, const tensor *x, float eps, const tensor *gamma,
                              const tensor *beta, tensor *y, sdxl_error *err);
    sdxl_status (*softmax)(backend *b, const tensor *x, tensor *y, sdxl_error *err);
    sdxl_status (*attention)(backend *b, const tensor *q, const tensor *k, const tensor *v,
                             int heads, bool causal, tensor *y, sdxl_error *err);
    sdxl_status (*unary)(backend *b, backend_unary_op op, const tensor *x, tensor *y,
                         sdxl_error *err);
    sdxl_status (*geglu)(backend *b, const tensor *x, tensor *y, sdxl_error *err);
    /* z is x's shape or its trailing dimensions (repeated). */
    sdxl_status (*binary)(backend *b, backend_binary_op op, const tensor *x, const tensor *z,
                          tensor *y, sdxl_error *err);
    sdxl_status (*add_scaled)(backend *b, float alpha, const tensor *x, float beta,
                              const tensor *z, tensor *y, sdxl_error *err);
    sdxl_status (*scale)(backend *b, const tensor *x, float alpha, float beta, tensor *y,
                         sdxl_error *err);
    sdxl_status (*div_scalar)(backend *b, const tensor *x, float divisor, tensor *y,
                              sdxl_error *err);
    sdxl_status (*clamp)(backend *b, const tensor *x, float lo, float hi, tensor *y,
                         sdxl_error *err);
    sdxl_status (*gaussian_sample)(backend *b, const tensor *mean, const tensor *logvar,
                                   const tensor *noise, tensor *y, sdxl_error *err);
    /* x may be of any float type, y of F32 or the compute type. */
    sdxl_status (*convert)(backend *b, const tensor *x, tensor *y, sdxl_error *err);
    sdxl_status (*normalize_pixels)(backend *b, const tensor *x, tensor *y, sdxl_error *err);
    sdxl_status (*denormalize_pixels)(backend *b, const tensor *x, tensor *y, sdxl_error *err);
    sdxl_status (*add_channels)(backend *b, const tensor *x, const tensor *e, tensor *y,
                                sdxl_error *err);
    sdxl_status (*upsample_nearest2x)(backend *b, const tensor *x, tensor *y, sdxl_error *err);
    sdxl_status (*concat_channels)(backend *b, const tensor *a, const tensor *c, tensor *y,
                                   sdxl_error *err);
    sdxl_status (*slice_channels)(backend *b, const tensor *x, int64_t first, tensor *y,
                                  sdxl_error *err);
    sdxl_status (*timestep_embedding)(backend *b, const tensor *t, bool flip_sin_to_cos,
                                      float downscale_freq_shift, float max_period, tensor *y,
                                      sdxl_error *err);
    sdxl_status (*gather_rows)(backend *b, const tensor *table, const tensor *ids, tensor *y,
                               sdxl_error *err);
    sdxl_status (*copy)(backend *b, const tensor *x, tensor *y, sdxl_error *err);
    sdxl_status (*zero)(backend *b, tensor *y, sdxl_error *err);
} backend_ops;

struct backend {
    const backend_ops *ops;
    backend_params params;
    bool recording; /* between backend_record_begin and backend_record_end */
};

#endif /* SDXL_BACKEND_BACKEND_H */
