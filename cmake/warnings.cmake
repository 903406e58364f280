# Compiler flags shared by every target: warnings, determinism, sanitizers.
#
# -ffp-contract=off: floating-point results must not depend on whether the compiler chose to
# fuse a multiply and an add; code that wants a fused multiply-add calls fmaf() explicitly.
add_compile_options(
  -Wall -Wextra -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes
  -Wvla -Wformat=2 -Wundef -Wno-unused-parameter
  -ffp-contract=off)
add_compile_definitions(_GNU_SOURCE)
if(SDXL_WERROR)
  add_compile_options(-Werror)
endif()
if(SDXL_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
if(SDXL_FUZZ)
  # Coverage instrumentation in every library, not only in the fuzz targets' own files: without
  # it libFuzzer sees only the target's few edges and cannot steer into the code it tests.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
