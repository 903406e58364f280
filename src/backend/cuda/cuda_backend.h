/*
 * cuda_backend.h — creating the cuda backend (NVIDIA GPUs through cuBLASLt, cuDNN and kernels
 * of its own; see cuda_internal.h for how it is built).
 *
 * The one entry point outside src/backend/cuda: backend_create("cuda", ...) calls it when the
 * build has the backend (SDXL_WITH_CUDA). This header needs no CUDA header, so backend.c
 * compiles without the toolkit's include paths.
 */
#ifndef SDXL_BACKEND_CUDA_CUDA_BACKEND_H
#define SDXL_BACKEND_CUDA_CUDA_BACKEND_H

#include "backend/backend.h"

/* Takes params->device and computes in params->compute_type (F16, BF16 or F32). Fails with
 * SDXL_ERR_UNSUPPORTED ("no CUDA device: ...") when the machine has no usable CUDA device or
 * driver, or the device is older than compute capability 8.0; SDXL_ERR_BACKEND when the CUDA
 * libraries fail to start. Never aborts. */
sdxl_status cuda_backend_create(const backend_params *params, backend **out, sdxl_error *err);

#endif /* SDXL_BACKEND_CUDA_CUDA_BACKEND_H */
