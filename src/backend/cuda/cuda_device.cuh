/*
 * cuda_device.cuh — what the cuda backend's kernels share: element types as fp32 and back,
 * the dispatch from a dtype to a kernel template, launch sizes, and the activations.
 *
 * Kernels are templates over the element type T (float, __half, __nv_bfloat16); they load T,
 * compute in fp32 and round once on the store. Activations use CUDA's accurate expf and erff
 * (not the __expf intrinsics), so F32 results stay within a few ulp of the cpu backend.
 */
#ifndef SDXL_BACKEND_CUDA_CUDA_DEVICE_CUH
#define SDXL_BACKEND_CUDA_CUDA_DEVICE_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <string.h>

#include <initializer_list>

#include "backend/cuda/cuda_internal.h"

namespace sdxl_cuda {

__device__ __forceinline__ float to_float(float v)
{
    return v;
}
__device__ __forceinline__ float to_float(__half v)
{
    return __half2float(v);
}
__device__ __forceinline__ float to_float(__nv_bfloat16 v)
{
    return __bfloat162float(v);
}

template <typename T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v)
{
    return v;
}
template <> __device__ __forceinline__ __half from_float<__half>(float v)
{
    return __float2half_rn(v);
}
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v)
{
    return __float2bfloat16_rn(v);
}

/* Calls f(T()) with T the element type of t: the one switch from dtype to template. */
template <typename F> static void dispatch_float_type(dtype t, F f)
{
    switch (t) {
    case DTYPE_F16:
        f(__half());
        break;
    case DTYPE_BF16:
        f(__nv_bfloat16());
        break;
    default:
        f(float());
        break;
    }
}

/* Threads per block of the element-wise kernels, and a grid for n elements. Grid-stride
 * loops cover what one launch of at most MAX_BLOCKS blocks does not. */
constexpr int BLOCK = 256;
constexpr int64_t MAX_BLOCKS = 1 << 20;

static inline unsigned grid_for(int64_t n)
{
    int64_t blocks = (n + BLOCK - 1) / BLOCK;
    if (blocks < 1)
        blocks = 1;
    return (unsigned)(blocks < MAX_BLOCKS ? blocks : MAX_BLOCKS);
}

__device__ __forceinline__ int64_t global_thread()
{
    return (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
}

__device__ __forceinline__ int64_t global_stride()
{
    return (int64_t)gridDim.x * blockDim.x;
}

/* 16-byte vectors of T (8 halves, 4 floats): what memory-bound kernels move per thread. A
 * kernel takes the vector path only when every pointer is 16-byte aligned and every row length
 * it steps by is a multiple of VEC<T> (vec_ok); otherwise it runs element by element. */
template <typename T> constexpr int VEC = 16 / (int)sizeof(T);

template <typename T> __device__ __forceinline__ void load_vec(const T *p, T (&v)[VEC<T>])
{
    uint4 raw = *reinterpret_cast<const uint4 *>(p);
    memcpy(v, &raw, sizeof raw);
}

template <typename T> __device__ __forceinline__ void store_vec(T *p, const T (&v)[VEC<T>])
{
    uint4 raw;
    memcpy(&raw, v, sizeof raw);
    *reinterpret_cast<uint4 *>(p) = raw;
}

/* Whether the pointers are aligned to units of unit_bytes and the lengths (counts of elements
 * of elem_bytes) are whole units: what loading unit_bytes at a time needs. */
static inline bool units_ok(size_t unit_bytes, size_t elem_bytes,
                            std::initializer_list<const void *> ptrs,
                            std::initializer_list<int64_t> lengths)
{
    for (const void *p : ptrs)
        if ((uintptr_t)p % unit_bytes)
            return false;
    for (int64_t n : lengths)
        if (n % (int64_t)(unit_bytes / elem_bytes))
            return false;
    return true;
}

/* units_ok for the 16-byte vectors above. */
static inline bool vec_ok(size_t elem_bytes, std::initializer_list<const void *> ptrs,
                          std::initializer_list<int64_t> lengths)
{
    return units_ok(16, elem_bytes, ptrs, lengths);
}

/* Calls f(I()) with I the index type of a kernel over n elements: uint32_t when n fits (64-bit
 * division costs more than the memory a vector kernel moves), else int64_t. */
template <typename F> static void dispatch_index_type(int64_t n, F f)
{
    if (n < INT32_MAX)
        f(uint32_t());
    else
        f(int64_t());
}

/* x * sigmoid(a x): a = 1 for SiLU, 1.702 for CLIP's quick_gelu. */
__device__ __forceinline__ float x_sigmoid(float x, float a)
{
    return x / (1.0f + expf(-(x * a)));
}

/* Exact GELU, as torch.nn.functional.gelu(approximate="none"). */
__device__ __forceinline__ float gelu(float x)
{
    return x * 0.5f * (1.0f + erff(x * 0.70710678118654752f));
}

__device__ __forceinline__ float activate(backend_unary_op op, float x)
{
    switch (op) {
    case BACKEND_UNARY_GELU:
        return gelu(x);
    case BACKEND_UNARY_QUICK_GELU:
        return x_sigmoid(x, 1.702f);
    default:
        return x_sigmoid(x, 1.0f);
    }
}

/* Sum and max over a warp, in a fixed order (the same bits every run). */
__device__ __forceinline__ float warp_sum(float v)
{
    for (int offset = 16; offset > 0; offset /= 2)
        v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

__device__ __forceinline__ float warp_max(float v)
{
    for (int offset = 16; offset > 0; offset /= 2)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

} // namespace sdxl_cuda

#endif /* SDXL_BACKEND_CUDA_CUDA_DEVICE_CUH */
