/*
 * clones.h — where GCC's target_clones attribute can compile a hot function twice, once for the
 * baseline and once for an instruction-set extension, the CPU choosing at load time: x86-64
 * Linux with GCC (clang's support differs). SDXL_CLONES is 1 there and 0 elsewhere, where the
 * baseline alone is built. Each user names its own clones (cpu_simd.h: AVX2; rng.c: FMA).
 */
#ifndef SDXL_BASE_CLONES_H
#define SDXL_BASE_CLONES_H

#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__)
#define SDXL_CLONES 1
#else
#define SDXL_CLONES 0
#endif

#endif /* SDXL_BASE_CLONES_H */
