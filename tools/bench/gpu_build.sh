#!/usr/bin/env bash
# tools/bench/gpu_build.sh — builds sdxld with the cuda backend on a lent GPU machine whose image
# has no Debian packages (see docs/BENCHMARKS.md, "How the lent machine builds and measures"),
# and makes the full-size test model, so that the GPU checks and run_gpu.sh can follow.
#
# Before the loan, on the development machine (the lent machine reaches no network):
#   mkdir -p .devdeps && (cd .devdeps && apt-get download libcjson1 libcjson-dev libcmocka0 \
#       libcmocka-dev libgfortran5 libquadmath0 libjpeg62-turbo libjpeg62-turbo-dev \
#       libopenblas0-pthread libopenblas-pthread-dev libopenblas-dev libpng16-16 libpng-dev \
#       libwebp7 libwebpdemux2 libwebpmux3 libwebp-dev zlib1g-dev)
#   pip download --no-deps -d .whl -r tools/bench/requirements-gpu.txt
# and carry .devdeps and .whl with the working tree. On the lent machine:
#   tools/bench/gpu_build.sh --build /tmp/b --model /tmp/full
#   source /tmp/b/gpu.env        # the unpacked libraries, cuDNN and diffusers for what follows
#   /tmp/b/tests/test_cuda_ops && (cd /tmp/b && ctest -R "mkmodel_tiny|test_pipeline")
#   tools/bench/run_gpu.sh --build /tmp/b --model /tmp/full > report.md
#
# Options: --build DIR (/tmp/b), --model DIR (made with mkmodel when it has no UNet yet; none
# without the option), --debs DIR (.devdeps), --wheels DIR (.whl), --arch SM (90).
# cuDNN and its headers come from the image's pip nvidia-cudnn package. The .deb files are
# unpacked into /tmp/deps, the wheels installed into /tmp/site. The model (about 45 s) is made
# while everything else builds.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build=/tmp/b model="" debs="$root/.devdeps" wheels="$root/.whl" arch=90
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build="$2" ;;
    --model) model="$2" ;;
    --debs) debs="$2" ;;
    --wheels) wheels="$2" ;;
    --arch) arch="$2" ;;
    *) echo "gpu_build.sh: unknown option $1 (see the comment at the top of $0)" >&2; exit 2 ;;
  esac
  shift 2
done
shopt -s nullglob
deb_files=("$debs"/*.deb) wheel_files=("$wheels"/*.whl)
if ((${#deb_files[@]} == 0)); then
  echo "gpu_build.sh: no .deb files in $debs (fetch them first: see the top of $0)" >&2
  exit 1
fi

# logged LOG COMMAND...: runs COMMAND with its output appended to LOG; on failure shows LOG's
# errors and stops.
logged() {
  local log="$1"
  shift
  if ! "$@" >> "$log" 2>&1; then
    echo "gpu_build.sh: failed: $* (log: $log)" >&2
    grep -E -B2 -A8 "error|Error" "$log" | head -60 >&2 || tail -30 "$log" >&2
    exit 1
  fi
}

deps=/tmp/deps lib=/tmp/deps/usr/lib/x86_64-linux-gnu
mkdir -p "$deps" "$build"
for f in "${deb_files[@]}"; do dpkg -x "$f" "$deps"; done
cudnn="$(python3 -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cudnn"))')"
cat > "$build/gpu.env" <<EOF
export LD_LIBRARY_PATH="$cudnn/lib:$lib:$lib/openblas-pthread\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export PYTHONPATH="/tmp/site\${PYTHONPATH:+:\$PYTHONPATH}"
EOF
# shellcheck source=/dev/null
source "$build/gpu.env"
if ((${#wheel_files[@]} > 0)); then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "${wheel_files[@]}"
fi

export PKG_CONFIG_SYSROOT_DIR="$deps" PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 PKG_CONFIG_ALLOW_SYSTEM_LIBS=1
export PKG_CONFIG_PATH="$lib/pkgconfig:$lib/openblas-pthread/pkgconfig"
logged "$build/build.log" cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release \
  -DSDXL_SERVER=OFF -DSDXL_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$arch" \
  -DCUDNN_INCLUDE_DIR="$cudnn/include" -DCUDNN_LIBRARY="$cudnn/lib/libcudnn.so.9" \
  "-DCMAKE_C_FLAGS=-I$deps/usr/include -I$deps/usr/include/x86_64-linux-gnu"
logged "$build/build.log" cmake --build "$build" -j "$(nproc)" --target mkmodel
maker=""
if [[ -n "$model" && ! -f "$model/unet/diffusion_pytorch_model.safetensors" ]]; then
  "$build/mkmodel" --config "$root/models/configs/sdxl-turbo" --seed 1 --dtype fp16 \
    --out "$model" > "$build/mkmodel.log" 2>&1 &
  maker=$!
fi
logged "$build/build.log" cmake --build "$build" -j "$(nproc)"
if [[ -n "$maker" ]] && ! wait "$maker"; then
  echo "gpu_build.sh: mkmodel failed; see $build/mkmodel.log" >&2
  exit 1
fi
echo "gpu_build.sh: built $build${model:+, model in $model}; now: source $build/gpu.env" >&2
