#!/usr/bin/env bash
# tools/bench/run.sh — sdxld's engine and diffusers, timed on this machine in the same run, per
# stage, with FLOPs, GFLOP/s, the measured sgemm floor and peak memory (issue 11). Prints a
# Markdown report for docs/BENCHMARKS.md and keeps every raw result in --results.
#
#   tools/bench/run.sh --model /tmp/sdxl-turbo-fp16            # 512x512 img2img, PRD defaults
#   tools/bench/run.sh --model DIR --width 1024 --height 1024 --runs 1 --only sdxld
#   tools/bench/run.sh --server [--width W --height H] [bench_server.py options]
#                                                              # drive a running sdxld
#
# Options: --runs N (timed runs; 3), --warmup N (untimed runs first; 1), --threads N (2), --width/--height (512),
# --steps (2), --strength (0.8), --guidance (0), --seed (0), --only sdxld|diffusers,
# --build DIR (where bench_engine and bench_ops are; build), --python PATH (a Python with the
# pins of tools/bench/requirements.txt; /tmp/refvenv/bin/python), --results DIR (a new
# temporary directory).
#
# The two sides run one after the other, never together: each holds its weights in float32
# (10-16 GB at full size). Needs: cmake --build build --target bench_engine bench_ops.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/tools/bench"
python=/tmp/refvenv/bin/python
build="$root/build"

# --server: the picture is drawn by the reference Python (numpy), the clients run in a venv of
# their own with grpcio (requirements-server.txt), made on first use in BUILD/.venv-bench-server.
if [[ "${1:-}" == --server ]]; then
  shift
  width=512 height=512 pass=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --build) build="$(cd "$2" && pwd)"; shift 2 ;;
      --python) python="$2"; shift 2 ;;
      --width) width="$2"; shift 2 ;;
      --height) height="$2"; shift 2 ;;
      *) pass+=("$1"); shift ;;
    esac
  done
  venv="$build/.venv-bench-server"
  if [[ ! -x "$venv/bin/python" ]]; then
    echo "run.sh: making $venv (tools/bench/requirements-server.txt)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r "$here/requirements-server.txt"
  fi
  picture="$(mktemp /tmp/sdxld-bench-input.XXXXXX)"
  trap 'rm -f "$picture"' EXIT
  "$python" "$here/bench_diffusers.py" --write-picture "$picture" --width "$width" --height "$height"
  "$venv/bin/python" "$here/bench_server.py" --image "$picture" "${pass[@]}"
  exit
fi

model="" runs=3 warmup=1 threads=2 width=512 height=512 steps=2 strength=0.8 guidance=0 seed=0 only=""
results=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --model) model="$2" ;;
    --runs) runs="$2" ;;
    --warmup) warmup="$2" ;;
    --threads) threads="$2" ;;
    --width) width="$2" ;;
    --height) height="$2" ;;
    --steps) steps="$2" ;;
    --strength) strength="$2" ;;
    --guidance) guidance="$2" ;;
    --seed) seed="$2" ;;
    --only) only="$2" ;;
    --build) build="$(cd "$2" && pwd)" ;;
    --python) python="$2" ;;
    --results) results="$2" ;;
    *) echo "run.sh: unknown option $1 (see the comment at the top of $0)" >&2; exit 2 ;;
  esac
  shift 2
done
if [[ -z "$model" ]]; then
  echo "run.sh: --model DIR is required (e.g. a full-size mkmodel directory)" >&2
  exit 2
fi
for tool in bench_engine bench_ops; do
  if [[ ! -x "$build/$tool" ]]; then
    echo "run.sh: $build/$tool is missing; build it: cmake --build $build --target $tool" >&2
    exit 2
  fi
done
if [[ -z "$results" ]]; then
  results="$(mktemp -d /tmp/sdxld-bench.XXXXXX)"
fi
mkdir -p "$results"
echo "run.sh: results in $results" >&2

# The machine may be shared: before each side loads, wait (up to 30 minutes) until the memory
# available covers its float32 weights (twice an fp16 directory's files) plus 2 GB.
need_kb=$(find "$model" -name '*.safetensors' -printf '%s\n' | awk '{s += $1 / 1024} END {printf "%.0f", s}')
if find "$model" -name '*.fp16.safetensors' | grep -q .; then need_kb=$((need_kb * 2)); fi
need_kb=$((need_kb + 2 * 1024 * 1024))
wait_for_memory() {
  local waited=0 avail
  while avail=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo); ((avail < need_kb)); do
    if ((waited == 0)); then
      echo "run.sh: $1 needs $((need_kb / 1048576)) GB free, $((avail / 1048576)) GB available; waiting" >&2
    fi
    if ((waited >= 1800)); then
      echo "run.sh: still too little memory after 30 minutes; giving up" >&2
      exit 1
    fi
    sleep 10
    waited=$((waited + 10))
  done
}

common=(--model "$model" --image "$results/input.png" --runs "$runs" --warmup "$warmup"
        --threads "$threads"
        --steps "$steps" --strength "$strength" --guidance "$guidance" --seed "$seed")

"$python" "$here/bench_diffusers.py" --write-picture "$results/input.png" --width "$width" --height "$height"
echo "run.sh: counting FLOPs" >&2
"$python" "$here/flops.py" --model "$model" --width "$width" --height "$height" --steps "$steps" \
  --strength "$strength" --guidance "$guidance" > "$results/flops.json"
echo "run.sh: measuring sgemm (build/bench_ops, $threads threads and 1)" >&2
"$build/bench_ops" --threads "$threads" --seconds 1 > "$results/bench_ops.txt"
"$build/bench_ops" --threads 1 --seconds 1 > "$results/bench_ops_1.txt"
# Load averages around each side: the machine may be shared, and wall times say how much.
load() { echo "$1 $(cut -d' ' -f1-3 /proc/loadavg)" >> "$results/load.txt"; }
if [[ "$only" != diffusers ]]; then
  wait_for_memory sdxld
  echo "run.sh: sdxld (build/bench_engine)" >&2
  load "sdxld start"
  "$build/bench_engine" "${common[@]}" --out "$results/sdxld.png" > "$results/sdxld.json"
  load "sdxld end"
fi
if [[ "$only" != sdxld ]]; then
  wait_for_memory diffusers
  echo "run.sh: diffusers" >&2
  load "diffusers start"
  "$python" "$here/bench_diffusers.py" "${common[@]}" --out "$results/diffusers.png" \
    > "$results/diffusers.json"
  load "diffusers end"
fi
"$python" "$here/report.py" --dir "$results" | tee "$results/report.md"
