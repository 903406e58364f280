/*
 * cpu_platform.c — what the cpu backend needs from the platform: the BLAS library's own
 * threading, and aligned host memory.
 *
 * The only file that knows which CBLAS is linked. With OpenBLAS we turn its thread pool off:
 * the backend splits work over its own pool and calls CBLAS from those threads, and two pools
 * busy on the same cores would halve both (OpenBLAS workers also spin after each call). Apple's
 * Accelerate (or a reference CBLAS) needs nothing here.
 */
#include "backend/cpu/cpu_backend.h"

#include <stdlib.h>

#include <cblas.h>

void cpu_platform_blas_single_thread(void)
{
#if defined(OPENBLAS_VERSION)
    openblas_set_num_threads(1);
#endif
}

void *cpu_platform_alloc(size_t bytes)
{
    /* aligned_alloc wants a multiple of the alignment. */
    size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded < bytes)
        return NULL;
    return aligned_alloc(64, rounded ? rounded : 64);
}

void cpu_platform_free(void *p)
{
    free(p);
}
