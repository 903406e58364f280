/*
 * cuda_norm.cu — group normalisation (optionally followed by SiLU) and layer normalisation.
 *
 * Group norm reduces in three launches whose cut depends on the shape of one image only:
 * partial sums of x and x² in double per (image, chunk of positions, group); one warp per
 * (image, group) adds the chunks in a fixed order into the mean and 1/sqrt(var + eps); then
 * every element is normalised. Sums in double keep E[x²] - mean² accurate (as the cpu backend
 * does). A statistics block reads its chunk as channel pairs, several position rows at once
 * (enough blocks and loads in flight to stream at memory speed; one block per 256 positions
 * left a 64x64 UNet activation on 16 of 132 multiprocessors).
 *
 * Layer norm is one warp per row, the row held in registers (read once): the mean, then the
 * variance around it, then the output, each a fixed-order warp reduction. Rows wider than the
 * registers hold (none in SDXL) re-read the row.
 */
#include "backend/cuda/cuda_device.cuh"

#include <math.h>

using namespace sdxl_cuda;

/* Chunks of positions per image for the group-norm partial sums: about GN_CHUNKS, each of at
 * least GN_MIN_POSITIONS (fixed by the image's shape: it decides the summation order). */
constexpr int64_t GN_CHUNKS = 512;
constexpr int64_t GN_MIN_POSITIONS = 64;
/* Shared memory a kernel gets without opting in. */
constexpr size_t DEFAULT_SHARED = 48 * 1024;

static int64_t gn_chunk_positions(int64_t positions)
{
    int64_t p = (positions + GN_CHUNKS - 1) / GN_CHUNKS;
    return p > GN_MIN_POSITIONS ? p : GN_MIN_POSITIONS;
}

/* Two consecutive channels as floats (x is at an even channel of an even-width row). */
__device__ __forceinline__ float2 load_pair(const float *x)
{
    return *reinterpret_cast<const float2 *>(x);
}
__device__ __forceinline__ float2 load_pair(const __half *x)
{
    return __half22float2(*reinterpret_cast<const __half2 *>(x));
}
__device__ __forceinline__ float2 load_pair(const __nv_bfloat16 *x)
{
    return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(x));
}

/* Block (chunk, image, slice of groups_per_block groups), threads (lane, row): lane sums the
 * slice's channel pairs lane, lane + lanes, ... over positions p0 + row, p0 + row + rows, ...
 * (a warp reads consecutive pairs of one position: coalesced); the rows' sums are added in
 * order per channel, then each group adds its channels in order. Which block sums a group
 * does not change how it is summed. A slice has an even number of channels. */
template <typename T>
__global__ void __launch_bounds__(BLOCK)
    group_stats_kernel(const T *x, double2 *partials, int64_t positions, int64_t c, int groups,
                       int groups_per_block, int64_t chunk_positions, int64_t chunks)
{
    extern __shared__ double2 sums[]; /* [rows][slice channels] */
    int64_t cg = c / groups, first_group = (int64_t)blockIdx.z * groups_per_block;
    int64_t cs = cg * groups_per_block, pairs = cs / 2;
    int lanes = pairs < BLOCK ? (int)pairs : BLOCK, rows = BLOCK / lanes;
    int lane = threadIdx.x % lanes, row = threadIdx.x / lanes;
    int64_t chunk = blockIdx.x, image = blockIdx.y;
    int64_t p0 = chunk * chunk_positions;
    int64_t p1 = p0 + chunk_positions < positions ? p0 + chunk_positions : positions;
    const T *base = x + image * positions * c + first_group * cg;
    if (row < rows) {
        for (int64_t cp = lane; cp < pairs; cp += lanes) {
            double s0 = 0.0, s1 = 0.0, q0 = 0.0, q1 = 0.0;
            int64_t p = p0 + row;
            for (; p + 3 * rows < p1; p += 4 * rows) {
                float2 v[4];
#pragma unroll
                for (int k = 0; k < 4; k++)
                    v[k] = load_pair(base + (p + k * rows) * c + 2 * cp);
#pragma unroll
                for (int k = 0; k < 4; k++) {
                    s0 += v[k].x;
                    s1 += v[k].y;
                    q0 += (double)v[k].x * v[k].x;
                    q1 += (double)v[k].y * v[k].y;
                }
            }
            for (; p < p1; p += rows) {
                float2 v = load_pair(base + p * c + 2 * cp);
                s0 += v.x;
                s1 += v.y;
                q0 += (double)v.x * v.x;
                q1 += (double)v.y * v.y;
            }
            sums[row * cs + 2 * cp] = make_double2(s0, q0);
            sums[row * cs + 2 * cp + 1] = make_double2(s1, q1);
        }
    }
    __syncthreads();
    for (int64_t ch = threadIdx.x; ch < cs; ch += blockDim.x) {
        double2 t = sums[ch];
        for (int r = 1; r < rows; r++) {
            t.x += sums[r * cs + ch].x;
            t.y += sums[r * cs + ch].y;
        }
        sums[ch] = t;
    }
    __syncthreads();
    for (int g = threadIdx.x; g < groups_per_block; g += blockDim.x) {
        double s = 0.0, s2 = 0.0;
        for (int64_t ch = g * cg; ch < (g + 1) * cg; ch++) {
            s += sums[ch].x;
            s2 += sums[ch].y;
        }
        partials[(image * chunks + chunk) * groups + first_group + g] = make_double2(s, s2);
    }
}

/* Groups per statistics block: the fewest (a divisor of groups, with an even number of
 * channels) that still give the GPU about GN_BLOCKS blocks, so that small images with many
 * channels are not summed by a few blocks. */
constexpr int64_t GN_BLOCKS = 264;

static int gn_groups_per_block(int groups, int64_t cg, int64_t blocks_without_slicing)
{
    int per_block = groups;
    while (per_block % 2 == 0 && cg * (per_block / 2) % 2 == 0 &&
           blocks_without_slicing * (groups / per_block) < GN_BLOCKS)
        per_block /= 2;
    return per_block;
}

/* One warp per (image, group): stats = (mean, 1 / sqrt(var + eps)). */
__global__ void group_finalize_kernel(const double2 *partials, float2 *stats, int64_t chunks,
                                      int groups, int64_t total, double count, float eps)
{
    int lane = threadIdx.x % 32;
    for (int64_t w = global_thread() / 32; w < total; w += global_stride() / 32) {
        int64_t image = w / groups, g = w % groups;
        double s = 0.0, s2 = 0.0;
        for (int64_t i = lane; i < chunks; i += 32) {
            double2 p = partials[(image * chunks + i) * groups + g];
            s += p.x;
            s2 += p.y;
        }
        for (int offset = 16; offset > 0; offset /= 2) {
            s += __shfl_xor_sync(0xffffffffu, s, offset);
            s2 += __shfl_xor_sync(0xffffffffu, s2, offset);
        }
        double mean = s / count, var = s2 / count - mean * mean;
        var = var > 0.0 ? var : 0.0;
        if (lane == 0)
            stats[w] = make_float2((float)mean, (float)(1.0 / sqrt(var + (double)eps)));
    }
}

__device__ __forceinline__ float group_norm_value(float x, float2 st, float gamma, float beta,
                                                  bool silu)
{
    float v = (x - st.x) * st.y * gamma + beta;
    return silu ? x_sigmoid(v, 1.0f) : v;
}

template <typename T>
__global__ void group_apply_kernel(const T *x, T *y, const float2 *stats, const T *gamma,
                                   const T *beta, int64_t per_image, int64_t c, int64_t cg,
                                   int groups, bool silu, int64_t n)
{
    for (int64_t i = global_thread(); i < n; i += global_stride()) {
        int64_t ch = i % c;
        float2 st = stats[(i / per_image) * groups + ch / cg];
        y[i] = from_float<T>(
            group_norm_value(to_float(x[i]), st, to_float(gamma[ch]), to_float(beta[ch]), silu));
    }
}

/* The same, a 16-byte vector per thread (c a multiple of the vector width), with index
 * arithmetic in I (32 bits when n allows: 64-bit division costs more than the memory). */
template <typename T, typename I>
__global__ void group_apply_vec_kernel(const T *x, T *y, const float2 *stats, const T *gamma,
                                       const T *beta, I per_image, I c, I cg, int groups,
                                       bool silu, I n)
{
    constexpr int N = VEC<T>;
    for (I i = (I)global_thread() * N; i < n; i += (I)global_stride() * N) {
        I ch = i % c, g = ch / cg, next = (g + 1) * cg; /* a vector spans at most two groups */
        const float2 *image_stats = stats + (i / per_image) * groups;
        float2 st = image_stats[g], st_next = image_stats[g + 1 < (I)groups ? g + 1 : g];
        T xv[N], gv[N], bv[N], yv[N];
        load_vec(x + i, xv);
        load_vec(gamma + ch, gv);
        load_vec(beta + ch, bv);
#pragma unroll
        for (int k = 0; k < N; k++)
            yv[k] = from_float<T>(group_norm_value(to_float(xv[k]),
                                                   ch + k < next ? st : st_next, to_float(gv[k]),
                                                   to_float(bv[k]), silu));
        store_vec(y + i, yv);
    }
}

/* One warp per row of c elements, re-reading the row (any width). In place is safe: each lane
 * writes only what it read. */
template <typename T>
__global__ void layer_norm_kernel(const T *x, T *y, const T *gamma, const T *beta, int64_t rows,
                                  int64_t c, float eps)
{
    int lane = threadIdx.x % 32;
    for (int64_t r = global_thread() / 32; r < rows; r += global_stride() / 32) {
        const T *xr = x + r * c;
        T *yr = y + r * c;
        float s = 0.0f;
        for (int64_t j = lane; j < c; j += 32)
            s += to_float(xr[j]);
        float mean = warp_sum(s) / (float)c;
        float d2 = 0.0f;
        for (int64_t j = lane; j < c; j += 32) {
            float d = to_float(xr[j]) - mean;
            d2 += d * d;
        }
        float rstd = 1.0f / sqrtf(warp_sum(d2) / (float)c + eps);
        for (int64_t j = lane; j < c; j += 32)
            yr[j] = from_float<T>((to_float(xr[j]) - mean) * rstd * to_float(gamma[j]) +
                                  to_float(beta[j]));
    }
}

/* 16-byte vectors one thread holds: rows up to LN_VECS · VEC<T> · 1024 elements wide. */
constexpr int LN_VECS = 2;

/* The sum over a block, in a fixed order (the same bits every run), returned to every thread.
 * scratch: 32 floats of shared memory, free again when this returns. */
__device__ __forceinline__ float block_sum(float v, float *scratch)
{
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
    v = warp_sum(v);
    if (lane == 0)
        scratch[warp] = v;
    __syncthreads();
    float total = warp_sum(lane < warps ? scratch[lane] : 0.0f);
    __syncthreads();
    return total;
}

/* One block per row of c elements (c a multiple of VEC<T>, every pointer 16-byte aligned).
 * Each thread loads its vectors of x, gamma and beta at once, so a row costs one memory
 * latency, not one per pass: the UNet's and the text encoders' rows (77 to 4096 of them,
 * 640 to 2048 wide) are too few for a warp per row to fill the GPU. */
template <typename T>
__global__ void layer_norm_rows_kernel(const T *x, T *y, const T *gamma, const T *beta,
                                       int c, float eps)
{
    constexpr int V = VEC<T>;
    __shared__ float scratch[32];
    const T *xr = x + (int64_t)blockIdx.x * c;
    T *yr = y + (int64_t)blockIdx.x * c;
    float v[LN_VECS][V];
    T g[LN_VECS][V], b[LN_VECS][V];
    float s = 0.0f;
#pragma unroll
    for (int k = 0; k < LN_VECS; k++) {
        int j = (threadIdx.x + k * blockDim.x) * V;
        T xv[V];
        if (j < c) {
            load_vec(xr + j, xv);
            load_vec(gamma + j, g[k]);
            load_vec(beta + j, b[k]);
        }
#pragma unroll
        for (int i = 0; i < V; i++) {
            v[k][i] = j < c ? to_float(xv[i]) : 0.0f;
            s += v[k][i];
        }
    }
    float mean = block_sum(s, scratch) / (float)c;
    float d2 = 0.0f;
#pragma unroll
    for (int k = 0; k < LN_VECS; k++)
        if ((threadIdx.x + k * blockDim.x) * V < c)
#pragma unroll
            for (int i = 0; i < V; i++) {
                float d = v[k][i] - mean;
                d2 += d * d;
            }
    float rstd = 1.0f / sqrtf(block_sum(d2, scratch) / (float)c + eps);
#pragma unroll
    for (int k = 0; k < LN_VECS; k++) {
        int j = (threadIdx.x + k * blockDim.x) * V;
        if (j < c) {
            T out[V];
#pragma unroll
            for (int i = 0; i < V; i++)
                out[i] = from_float<T>((v[k][i] - mean) * rstd * to_float(g[k][i]) +
                                       to_float(b[k][i]));
            store_vec(yr + j, out);
        }
    }
}

extern "C" sdxl_status cuda_group_norm(backend *b, const tensor *x, int groups, float eps,
                                       const tensor *gamma, const tensor *beta, bool silu,
                                       tensor *y, sdxl_error *err)
{
    cuda_backend *cb = cuda_of(b);
    int64_t n = tensor_numel(x), images = x->shape[0], c = tensor_last_dim(x);
    int64_t positions = n / (images * c), chunk_positions = gn_chunk_positions(positions);
    int64_t chunks = (positions + chunk_positions - 1) / chunk_positions;
    if (c % 2)
        return error_set(err, SDXL_ERR_UNSUPPORTED,
                         "group_norm: %lld channels; the cuda backend needs an even number",
                         (long long)c);
    int64_t cg = c / groups;
    int per_block = gn_groups_per_block(groups, cg, chunks * images);
    int64_t slice = cg * per_block, lanes = slice / 2 < BLOCK ? slice / 2 : BLOCK;
    size_t shared = (size_t)(BLOCK / lanes) * (size_t)slice * sizeof(double2);
    if (shared > (size_t)cb->max_shared_optin)
        return error_set(err, SDXL_ERR_UNSUPPORTED,
                         "group_norm: %lld channels need %zu bytes of shared memory; this GPU "
                         "gives a block at most %d",
                         (long long)c, shared, cb->max_shared_optin);
    size_t partial_bytes = (size_t)(images * chunks * groups) * sizeof(double2);
    size_t stats_bytes = (size_t)(images * groups) * sizeof(float2);
    sdxl_status st = cuda_buffer_reserve(cb, &cb->scratch, partial_bytes + stats_bytes,
                                         "group norm scratch", err);
    if (st)
        return st;
    double2 *partials = (double2 *)cb->scratch.data;
    float2 *stats = (float2 *)((unsigned char *)cb->scratch.data + partial_bytes);
    cudaStream_t s = cb->stream;
    cudaError_t attr = cudaSuccess;
    dispatch_float_type(x->type, [&](auto tag) {
        using T = decltype(tag);
        if (shared > DEFAULT_SHARED)
            attr = cudaFuncSetAttribute(group_stats_kernel<T>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shared);
        if (attr == cudaSuccess)
            group_stats_kernel<T><<<dim3((unsigned)chunks, (unsigned)images,
                                         (unsigned)(groups / per_block)),
                                    BLOCK, shared, s>>>((const T *)x->data, partials, positions, c,
                                                        groups, per_block, chunk_positions,
                                                        chunks);
    });
    st = cuda_check(attr, "group norm shared memory", err);
    if (!st)
        st = cuda_check_launch("group norm statistics kernel", err);
    if (st)
        return st;
    int64_t total = images * groups;
    group_finalize_kernel<<<grid_for(total * 32), BLOCK, 0, s>>>(
        partials, stats, chunks, groups, total, (double)(positions * cg), eps);
    st = cuda_check_launch("group norm finalize kernel", err);
    if (st)
        return st;
    /* A vector (at a multiple of its width) must span at most two groups. */
    size_t es = dtype_size(x->type);
    int64_t width = (int64_t)(16 / es);
    bool vec = vec_ok(es, {x->data, y->data, gamma->data, beta->data}, {c}) &&
               (cg >= width || 2 * cg == width);
    dispatch_float_type(x->type, [&](auto tag) {
        using T = decltype(tag);
        if (vec)
            dispatch_index_type(n, [&](auto index) {
                using I = decltype(index);
                group_apply_vec_kernel<T, I><<<grid_for(n / VEC<T>), BLOCK, 0, s>>>(
                    (const T *)x->data, (T *)y->data, stats, (const T *)gamma->data,
                    (const T *)beta->data, (I)(n / images), (I)c, (I)cg, groups, silu, (I)n);
            });
        else
            group_apply_kernel<T><<<grid_for(n), BLOCK, 0, s>>>(
                (const T *)x->data, (T *)y->data, stats, (const T *)gamma->data,
                (const T *)beta->data, n / images, c, cg, groups, silu, n);
    });
    return cuda_check_launch("group norm kernel", err);
}

extern "C" sdxl_status cuda_layer_norm(backend *b, const tensor *x, float eps, const tensor *gamma,
                                       const tensor *beta, tensor *y, sdxl_error *err)
{
    int64_t rows = tensor_rows(x), c = tensor_last_dim(x);
    cudaStream_t s = cuda_of(b)->stream;
    size_t es = dtype_size(x->type);
    int64_t vectors = c / (int64_t)(16 / es);
    int64_t per_thread = vectors > 0 ? (vectors + 1023) / 1024 : 1;
    int threads = (int)((vectors + per_thread - 1) / per_thread + 31) / 32 * 32;
    bool by_rows = vectors > 0 && per_thread <= LN_VECS && rows > 0 && rows <= INT32_MAX &&
                   vec_ok(es, {x->data, y->data, gamma->data, beta->data}, {c});
    dispatch_float_type(x->type, [&](auto tag) {
        using T = decltype(tag);
        if (by_rows)
            layer_norm_rows_kernel<T><<<(unsigned)rows, threads, 0, s>>>(
                (const T *)x->data, (T *)y->data, (const T *)gamma->data, (const T *)beta->data,
                (int)c, eps);
        else
            layer_norm_kernel<T><<<grid_for(rows * 32), BLOCK, 0, s>>>(
                (const T *)x->data, (T *)y->data, (const T *)gamma->data, (const T *)beta->data,
                rows, c, eps);
    });
    return cuda_check_launch("layer norm kernel", err);
}
