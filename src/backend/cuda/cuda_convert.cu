/*
 * cuda_convert.cu — converting between float types on the device, for host copies of tensors
 * of another type than the host's (an fp32 picture into a bf16 VAE, its bf16 output back as
 * fp32): the host then copies fp32 as it is, and the GPU rounds, far faster than the host's
 * element-by-element conversion. Rounding is to nearest even, as dtype_from_f32.
 */
#include "backend/cuda/cuda_device.cuh"

using namespace sdxl_cuda;

template <typename S, typename D>
__global__ void convert_kernel(const S *__restrict__ src, D *__restrict__ dst, int64_t n)
{
    for (int64_t i = global_thread(); i < n; i += global_stride())
        dst[i] = from_float<D>(to_float(src[i]));
}

extern "C" sdxl_status cuda_convert(cuda_backend *cb, dtype src_type, const void *src,
                                    dtype dst_type, void *dst, int64_t n, sdxl_error *err)
{
    dispatch_float_type(src_type, [&](auto s) {
        using S = decltype(s);
        dispatch_float_type(dst_type, [&](auto d) {
            using D = decltype(d);
            convert_kernel<S, D><<<grid_for(n), BLOCK, 0, cb->stream>>>((const S *)src, (D *)dst,
                                                                         n);
        });
    });
    return cuda_check_launch("type conversion kernel", err);
}
