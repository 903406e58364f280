#!/usr/bin/env bash
# tools/bench/run_gpu.sh — sdxld's engine on the cuda backend beside diffusers fp16 eager on the
# same GPU, in the same run, per stage, against the floor from FLOPs and the GPU's measured bf16
# rate (issue 10, item 5). Prints a Markdown table for docs/BENCHMARKS.md on stdout, progress on
# stderr, and keeps every raw result in --results.
#
#   tools/bench/run_gpu.sh --build build-cuda --model /tmp/sdxl-turbo [--results DIR]
#
# Options: --build DIR (a cuda build with bench_engine; build), --model DIR (a full-size mkmodel
# sdxl-turbo with fp16 files; required), --python PATH (a Python with torch and the diffusers of
# tools/bench/requirements-gpu.txt; python3), --results DIR (a new temporary directory),
# --runs N (timed runs at batch 1; 10), --warmup N (untimed runs first at batch 1; 3),
# --batched-runs N (timed runs at batch 8, after one untimed; 3).
# For a dry run of this script's logic on a machine without a GPU: --backend cpu (sdxld's
# backend, and diffusers' device; cuda) and --sizes "64" (square sizes; "512 1024") with a tiny
# model and --python /tmp/refvenv/bin/python.
#
# Cases, one process each, one after the other: for every size, batch 1 and 8, sdxld with the
# engine's default dtypes and diffusers fp16; then per size sdxld with --same-prompt (the prompt
# cache answers the text stage), and at the first size sdxld in fp32 with an fp32 VAE (the
# check path). Before them: the test pictures, the FLOP counts (flops.py) and the GPU's ceilings
# (gpu_ceilings.py). Stops at the first failure, naming the case and showing its log.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/tools/bench"
build="$root/build" model="" python=python3 results="" runs=10 warmup=3 batched_runs=3
backend=cuda sizes="512 1024"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build="$(cd "$2" && pwd)" ;;
    --model) model="$2" ;;
    --python) python="$2" ;;
    --results) results="$2" ;;
    --runs) runs="$2" ;;
    --warmup) warmup="$2" ;;
    --batched-runs) batched_runs="$2" ;;
    --backend) backend="$2" ;;
    --sizes) sizes="$2" ;;
    *) echo "run_gpu.sh: unknown option $1 (see the comment at the top of $0)" >&2; exit 2 ;;
  esac
  shift 2
done
if [[ -z "$model" ]]; then
  echo "run_gpu.sh: --model DIR is required (a full-size model: build/mkmodel --config" \
       "models/configs/sdxl-turbo --seed 1 --dtype fp16 --out DIR)" >&2
  exit 2
fi
if [[ ! -x "$build/bench_engine" ]]; then
  echo "run_gpu.sh: $build/bench_engine is missing; build it: cmake --build $build --target bench_engine" >&2
  exit 2
fi
if [[ -z "$results" ]]; then
  results="$(mktemp -d /tmp/sdxld-bench-gpu.XXXXXX)"
fi
mkdir -p "$results"
echo "run_gpu.sh: results in $results" >&2

# step NAME OUTPUT COMMAND...: runs COMMAND with stdout to OUTPUT and stderr to NAME.log, or
# stops the whole run naming the step and showing the end of its log.
step() {
  local name="$1" output="$2"
  shift 2
  echo "run_gpu.sh: $name" >&2
  if ! "$@" > "$output" 2> "$results/$name.log"; then
    echo "run_gpu.sh: FAILED: $name; the end of $results/$name.log:" >&2
    tail -n 20 "$results/$name.log" >&2
    echo "run_gpu.sh: the command was: $*" >&2
    exit 1
  fi
}

# median KEY FILE: a median from a bench JSON, for the progress lines.
median() { "$python" -c 'import json, sys; print(f"{json.load(open(sys.argv[2]))[sys.argv[1]]:.2f}")' "$@"; }

step ceilings "$results/ceilings.json" "$python" "$here/gpu_ceilings.py"
if [[ "$backend" == cuda ]] && grep -q '"device": null' "$results/ceilings.json"; then
  echo "run_gpu.sh: torch ($python) sees no GPU: nothing to measure here (--backend cpu is for" \
       "dry runs of this script)" >&2
  exit 1
fi
for size in $sizes; do
  step "picture_$size" /dev/null "$python" "$here/bench_diffusers.py" \
    --write-picture "$results/input_$size.png" --width "$size" --height "$size"
  step "flops_$size" "$results/flops_$size.json" "$python" "$here/flops.py" --model "$model" \
    --width "$size" --height "$size"
done

# bench_case SIDE SIZE BATCH [VARIANT [FLAGS...]]: one timed case into SIDE_SIZE_bBATCH[_VARIANT].json.
bench_case() {
  local side="$1" size="$2" batch="$3" variant="${4:-}"
  shift 3
  if [[ $# -gt 0 ]]; then shift; fi
  local name="${side}_${size}_b${batch}${variant:+_$variant}" n="$runs" w="$warmup"
  if ((batch > 1)); then n="$batched_runs" w=1; fi
  local common=(--model "$model" --image "$results/input_$size.png" --width "$size" --height "$size"
                --batch "$batch" --runs "$n" --warmup "$w")
  # The last image of the plain batch-1 cases, for the pixel comparison of the report.
  if ((batch == 1)) && [[ -z "$variant" ]]; then common+=(--out "$results/$name.png"); fi
  if [[ "$side" == sdxld ]]; then
    step "$name" "$results/$name.json" "$build/bench_engine" "${common[@]}" --backend "$backend" "$@"
  else
    step "$name" "$results/$name.json" "$python" "$here/bench_diffusers.py" "${common[@]}" \
      --device "$backend" --dtype fp16 "$@"
  fi
  echo "run_gpu.sh: $name: median generate $(median median_generate_ms "$results/$name.json") ms" >&2
}

first_size="${sizes%% *}"
for size in $sizes; do
  for batch in 1 8; do
    bench_case sdxld "$size" "$batch"
    bench_case diffusers "$size" "$batch"
  done
  bench_case sdxld "$size" 1 same --same-prompt
done
bench_case sdxld "$first_size" 1 fp32 --dtype fp32 --vae-dtype fp32

"$python" "$here/report.py" --gpu --dir "$results" | tee "$results/report.md"
