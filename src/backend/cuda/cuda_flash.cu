/*
 * cuda_flash.cu — fused attention for F16 and BF16 heads of 64 or 128 channels (every head of
 * the SDXL UNet and of both CLIP text encoders): FlashAttention-2's scheme on the tensor
 * cores' mma.sync m16n8k16 instruction (sm_80 and newer).
 *
 * A block is (64 query rows, head, image): 4 warps of 16 rows (32 rows and 2 warps where the
 * grid would otherwise not fill the GPU). Keys and values stream through shared memory 64 at a
 * time, both stored as they are ([key][channel], 16-byte stores); the second product's B
 * fragments come from ldmatrix.trans, which transposes values on the way to registers. The
 * next tile's loads are issued before the current tile is multiplied: at the UNet's 256 to
 * 1024 tokens a block holds most of an SM alone, and would otherwise wait out one memory
 * latency per tile. The scores, the running maximum and sum and the output stay in registers,
 * in the fragment layout the PTX ISA defines for m16n8k16 (lane = 4 g + t: A holds rows g and
 * g+8, columns 2t, 2t+1 and 2t+8, 2t+9; B holds rows 2t, 2t+1 and 2t+8, 2t+9 of column g; C
 * holds rows g and g+8, columns 2t, 2t+1). A score tile's C
 * fragments are, pair for pair, the A fragments of the probabilities for the second product,
 * so probabilities never leave registers. The Tq x Tk score matrix never exists.
 *
 * Arithmetic: scores, maxima and sums in fp32 (exp2 of scores pre-scaled by log2(e)/sqrt(D));
 * probabilities rounded to T for the second product, as FlashAttention does; fp32
 * accumulation. Each output element is reduced in a fixed order: same bits every run.
 */
#include "backend/cuda/cuda_device.cuh"

#include <math.h>
#include <string.h>

using namespace sdxl_cuda;

namespace {

constexpr int BN = 64; /* keys per tile */
/* Shared-memory row stride of the K and V tiles ([key][channel]): rows stay 16-byte aligned,
 * and the 8 rows an ldmatrix reads at once fall in 8 different groups of 4 banks. */
template <int D> constexpr int KV_STRIDE = D + 8;

template <typename T> struct mma;

template <> struct mma<__half> {
    static __device__ __forceinline__ void run(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                               uint32_t b1)
    {
        asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
            "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
    /* Two values as one register: lo in the low half (the lower column). */
    static __device__ __forceinline__ uint32_t pack(float lo, float hi)
    {
        __half2 h = __floats2half2_rn(lo, hi);
        uint32_t u;
        memcpy(&u, &h, sizeof(u));
        return u;
    }
};

template <> struct mma<__nv_bfloat16> {
    static __device__ __forceinline__ void run(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                               uint32_t b1)
    {
        asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
            "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
    static __device__ __forceinline__ uint32_t pack(float lo, float hi)
    {
        __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
        uint32_t u;
        memcpy(&u, &h, sizeof(u));
        return u;
    }
};

/* Elements (row, col) and (row, col + 1) of a row-major matrix; zeros past the last row. */
template <typename T>
__device__ __forceinline__ uint32_t load_pair(const T *m, int row, int col, int rows, int64_t width)
{
    return row < rows ? *reinterpret_cast<const uint32_t *>(m + row * width + col) : 0u;
}

/* 16-byte loads per thread for one tile of K and one of V. */
template <int D, int W> constexpr int TILE_LOADS = BN * D / 8 / (W * 32);

/* Keys k0 .. k0+BN-1 of K and V into registers (zeros past the last key: their weight is 0),
 * by a block of W warps. Load i of a thread is row r, channels c .. c+7 of the tile. */
template <typename T, int D, int W>
__device__ __forceinline__ void fetch_tile(const T *kh, const T *vh, int k0, int tk,
                                           int64_t width, uint4 (&kr)[TILE_LOADS<D, W>],
                                           uint4 (&vr)[TILE_LOADS<D, W>])
{
#pragma unroll
    for (int l = 0; l < TILE_LOADS<D, W>; l++) {
        int i = threadIdx.x + l * W * 32, r = i / (D / 8), c = (i % (D / 8)) * 8;
        kr[l] = vr[l] = make_uint4(0, 0, 0, 0);
        if (k0 + r < tk) {
            kr[l] = *reinterpret_cast<const uint4 *>(kh + (int64_t)(k0 + r) * width + c);
            vr[l] = *reinterpret_cast<const uint4 *>(vh + (int64_t)(k0 + r) * width + c);
        }
    }
}

/* The fetched tile into shared memory. */
template <typename T, int D, int W>
__device__ __forceinline__ void stash_tile(const uint4 (&kr)[TILE_LOADS<D, W>],
                                           const uint4 (&vr)[TILE_LOADS<D, W>], T *k_tile,
                                           T *v_tile)
{
#pragma unroll
    for (int l = 0; l < TILE_LOADS<D, W>; l++) {
        int i = threadIdx.x + l * W * 32, r = i / (D / 8), c = (i % (D / 8)) * 8;
        *reinterpret_cast<uint4 *>(k_tile + r * KV_STRIDE<D> + c) = kr[l];
        *reinterpret_cast<uint4 *>(v_tile + r * KV_STRIDE<D> + c) = vr[l];
    }
}

/* Four 8x8 matrices of 16-bit elements from shared memory, transposed: lane i gives the row
 * address of row i % 8 of matrix i / 8, and register j receives matrix j as the B fragment of
 * m16n8k16 wants it (elements (2t, g) and (2t + 1, g) of the stored matrix, lane = 4 g + t). */
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void *row)
{
    uint32_t addr = (uint32_t)__cvta_generic_to_shared(row);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

/* W warps of 16 query rows each. */
template <typename T, int D, int W>
__global__ void __launch_bounds__(W * 32)
    flash_kernel(const T *__restrict__ q, const T *__restrict__ k, const T *__restrict__ v,
                 T *__restrict__ y, int tq, int tk, int64_t width, float scale_log2, bool causal)
{
    constexpr int KS = KV_STRIDE<D>;
    __shared__ __align__(16) T k_tile[BN * KS]; /* [key][channel] */
    __shared__ __align__(16) T v_tile[BN * KS]; /* [key][channel] */

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int g = lane / 4, t = lane % 4;
    constexpr int BM = 16 * W; /* query rows per block */
    const int block_q0 = blockIdx.x * BM;
    const int r0 = block_q0 + warp * 16 + g, r1 = r0 + 8; /* this thread's two query rows */
    const int64_t head = (int64_t)blockIdx.y * D;
    const T *qh = q + (int64_t)blockIdx.z * tq * width + head;
    const T *kh = k + (int64_t)blockIdx.z * tk * width + head;
    const T *vh = v + (int64_t)blockIdx.z * tk * width + head;

    uint32_t qa[D / 16][4]; /* Q as A fragments, one per 16 channels */
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
        int c = kk * 16 + t * 2;
        qa[kk][0] = load_pair(qh, r0, c, tq, width);
        qa[kk][1] = load_pair(qh, r1, c, tq, width);
        qa[kk][2] = load_pair(qh, r0, c + 8, tq, width);
        qa[kk][3] = load_pair(qh, r1, c + 8, tq, width);
    }

    float o[D / 8][4]; /* output: C fragments, one per 8 channels */
#pragma unroll
    for (int nt = 0; nt < D / 8; nt++)
        o[nt][0] = o[nt][1] = o[nt][2] = o[nt][3] = 0.0f;
    float m0 = -INFINITY, m1 = -INFINITY; /* running maxima of rows r0, r1 (log2 units) */
    float l0 = 0.0f, l1 = 0.0f;           /* this thread's part of the running sums */

    /* Causal: no query of this block sees a key past its last row. */
    int kv_end = causal && block_q0 + BM < tk ? block_q0 + BM : tk;
    uint4 k_next[TILE_LOADS<D, W>], v_next[TILE_LOADS<D, W>];
    fetch_tile<T, D, W>(kh, vh, 0, tk, width, k_next, v_next);
    for (int k0 = 0; k0 < kv_end; k0 += BN) {
        __syncthreads(); /* the previous tile is no longer read */
        stash_tile<T, D, W>(k_next, v_next, k_tile, v_tile);
        __syncthreads();
        /* The next tile's loads fly while this one is multiplied. */
        if (k0 + BN < kv_end)
            fetch_tile<T, D, W>(kh, vh, k0 + BN, tk, width, k_next, v_next);

        /* S = Q Kᵀ for 16 rows x 64 keys: B[channel][key] = K[key][channel]. */
        float s[BN / 8][4];
#pragma unroll
        for (int nt = 0; nt < BN / 8; nt++) {
            s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
            const T *krow = k_tile + (nt * 8 + g) * KS + t * 2;
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++)
                mma<T>::run(s[nt], qa[kk], *reinterpret_cast<const uint32_t *>(krow + kk * 16),
                            *reinterpret_cast<const uint32_t *>(krow + kk * 16 + 8));
        }

        float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < BN / 8; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int key = k0 + nt * 8 + t * 2 + (e & 1);
                int row = e < 2 ? r0 : r1;
                float val = s[nt][e] * scale_log2;
                if (key >= tk || (causal && key > row))
                    val = -INFINITY;
                s[nt][e] = val;
                if (e < 2)
                    mx0 = fmaxf(mx0, val);
                else
                    mx1 = fmaxf(mx1, val);
            }
        /* A row's 64 scores are spread over the 4 lanes of its group. */
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
        float new0 = fmaxf(m0, mx0), new1 = fmaxf(m1, mx1);
        /* A row that has seen no key yet has maximum -inf: subtract 0 so exp2 gives 0, not NaN. */
        float base0 = new0 == -INFINITY ? 0.0f : new0, base1 = new1 == -INFINITY ? 0.0f : new1;
        float a0 = exp2f(m0 - base0), a1 = exp2f(m1 - base1);
        m0 = new0;
        m1 = new1;
        l0 *= a0;
        l1 *= a1;
#pragma unroll
        for (int nt = 0; nt < D / 8; nt++) {
            o[nt][0] *= a0;
            o[nt][1] *= a0;
            o[nt][2] *= a1;
            o[nt][3] *= a1;
        }
#pragma unroll
        for (int nt = 0; nt < BN / 8; nt++) {
            s[nt][0] = exp2f(s[nt][0] - base0);
            s[nt][1] = exp2f(s[nt][1] - base0);
            s[nt][2] = exp2f(s[nt][2] - base1);
            s[nt][3] = exp2f(s[nt][3] - base1);
            l0 += s[nt][0] + s[nt][1];
            l1 += s[nt][2] + s[nt][3];
        }

        /* O += P V, 16 keys per step: P's A fragment is score tiles 2kk and 2kk+1. */
#pragma unroll
        for (int kk = 0; kk < BN / 16; kk++) {
            const uint32_t pa[4] = {
                mma<T>::pack(s[2 * kk][0], s[2 * kk][1]),
                mma<T>::pack(s[2 * kk][2], s[2 * kk][3]),
                mma<T>::pack(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                mma<T>::pack(s[2 * kk + 1][2], s[2 * kk + 1][3]),
            };
            /* B[key][channel] = V: keys kk·16 .. +15 of channels 8 nt .. 8 nt + 15, two
             * fragments at once (matrices: keys 0-7 and 8-15, then the same 8 channels on). */
#pragma unroll
            for (int nt = 0; nt < D / 8; nt += 2) {
                uint32_t b[4];
                ldmatrix_x4_trans(b, v_tile + (kk * 16 + lane % 16) * KS + nt * 8 + lane / 16 * 8);
                mma<T>::run(o[nt], pa, b[0], b[1]);
                mma<T>::run(o[nt + 1], pa, b[2], b[3]);
            }
        }
    }

    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    float inv0 = 1.0f / l0, inv1 = 1.0f / l1;
    T *yh = y + (int64_t)blockIdx.z * tq * width + head;
#pragma unroll
    for (int nt = 0; nt < D / 8; nt++) {
        int c = nt * 8 + t * 2;
        if (r0 < tq)
            *reinterpret_cast<uint32_t *>(yh + r0 * width + c) =
                mma<T>::pack(o[nt][0] * inv0, o[nt][1] * inv0);
        if (r1 < tq)
            *reinterpret_cast<uint32_t *>(yh + r1 * width + c) =
                mma<T>::pack(o[nt][2] * inv1, o[nt][3] * inv1);
    }
}

template <typename T, int D, int W>
void flash_blocks(const cuda_backend *cb, const tensor *q, const tensor *k, const tensor *v,
                  tensor *y, int heads, bool causal)
{
    int64_t tq = q->shape[1];
    float scale_log2 = (float)(1.4426950408889634 / sqrt((double)D));
    dim3 grid((unsigned)((tq + 16 * W - 1) / (16 * W)), (unsigned)heads, (unsigned)q->shape[0]);
    flash_kernel<T, D, W><<<grid, W * 32, 0, cb->stream>>>(
        (const T *)q->data, (const T *)k->data, (const T *)v->data, (T *)y->data, (int)tq,
        (int)k->shape[1], q->shape[2], scale_log2, causal);
}

/* Blocks of 4 warps (64 query rows); for heads of 64, of 2 where those would leave
 * multiprocessors idle (the UNet's 256-token levels: 80 blocks of 4 warps on an H100's 132,
 * and the text encoders' 77 tokens); heads of 128 would spill with 2. Every row is computed
 * the same way whatever its block: the choice never changes a bit. */
template <typename T, int D>
void flash_launch(const cuda_backend *cb, const tensor *q, const tensor *k, const tensor *v,
                  tensor *y, int heads, bool causal)
{
    if constexpr (D == 64) {
        int64_t wide_blocks = (q->shape[1] + 63) / 64 * heads * q->shape[0];
        if (wide_blocks < cb->multiprocessors) {
            flash_blocks<T, D, 2>(cb, q, k, v, y, heads, causal);
            return;
        }
    }
    flash_blocks<T, D, 4>(cb, q, k, v, y, heads, causal);
}

} // namespace

extern "C" bool cuda_flash_supported(dtype type, int64_t d, const tensor *q, const tensor *k,
                                     const tensor *v, const tensor *y)
{
    if ((type != DTYPE_F16 && type != DTYPE_BF16) || (d != 64 && d != 128))
        return false;
    /* 16-byte loads of K and V rows; rows stay aligned since the width is a multiple of 8. */
    const tensor *all[4] = {q, k, v, y};
    for (int i = 0; i < 4; i++)
        if ((uintptr_t)all[i]->data % 16 != 0)
            return false;
    return q->shape[1] <= INT32_MAX && k->shape[1] <= INT32_MAX && q->shape[0] <= 65535;
}

extern "C" sdxl_status cuda_flash_attention(cuda_backend *cb, const tensor *q, const tensor *k,
                                            const tensor *v, int heads, bool causal, tensor *y,
                                            sdxl_error *err)
{
    int64_t d = q->shape[2] / heads;
    if (q->type == DTYPE_F16)
        d == 64 ? flash_launch<__half, 64>(cb, q, k, v, y, heads, causal)
                : flash_launch<__half, 128>(cb, q, k, v, y, heads, causal);
    else
        d == 64 ? flash_launch<__nv_bfloat16, 64>(cb, q, k, v, y, heads, causal)
                : flash_launch<__nv_bfloat16, 128>(cb, q, k, v, y, heads, causal);
    return cuda_check_launch("flash attention kernel", err);
}
