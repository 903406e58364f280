#!/usr/bin/env bash
# Runs every test: installs and builds first when needed (scripts/setup.sh), then
#   1. the release build (gcc, warnings as errors) under ctest;
#   2. an AddressSanitizer + UndefinedBehaviorSanitizer build (clang) under ctest, with the
#      libFuzzer targets fuzzing briefly from their seed corpora.
# The last line is the total count over both runs (a skipped test is not counted as passed).
#
#   scripts/test.sh           everything (what CI runs)
#   scripts/test.sh --fast    the release build only
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
fast=0
[[ "${1:-}" == "--fast" ]] && fast=1

missing=0
while read -r pkg; do
  [[ -z "$pkg" || "$pkg" == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing=1
done < scripts/packages.txt
if [[ $missing == 1 ]]; then
  scripts/setup.sh || exit 1
fi

jobs="$(nproc)"
passed=0
failed=0
skipped=0

# run_suite NAME BUILD_DIR CMAKE_ARGS...
run_suite() {
  local name="$1" dir="$2"
  shift 2
  echo "== $name: configure and build ($dir)"
  if ! cmake -S . -B "$dir" "$@" >"$dir.configure.log" 2>&1; then
    cat "$dir.configure.log"
    echo "$name: configure failed"
    failed=$((failed + 1))
    return
  fi
  if ! cmake --build "$dir" -j "$jobs" >"$dir.build.log" 2>&1; then
    grep -E "error|Error" "$dir.build.log" | head -50
    echo "$name: build failed (full log: $dir.build.log)"
    failed=$((failed + 1))
    return
  fi
  echo "== $name: ctest"
  local log="$dir.ctest.log"
  (cd "$dir" && ctest -j "$jobs" --output-on-failure --timeout 900) 2>&1 | tee "$log"
  local summary
  summary="$(grep -E "tests passed, [0-9]+ tests failed out of [0-9]+" "$log" | tail -1)"
  if [[ -z "$summary" ]]; then
    echo "$name: ctest printed no summary"
    failed=$((failed + 1))
    return
  fi
  local total bad
  total="$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$summary")"
  bad="$(sed -E 's/.*, ([0-9]+) tests failed.*/\1/' <<<"$summary")"
  # ctest counts a skipped test (no GPU here for test_cuda_ops) among the passed ones.
  local skips
  skips="$(grep -cE '^[[:space:]]+[0-9]+ - .*\(Skipped\)$' "$log")"
  passed=$((passed + total - bad - skips))
  failed=$((failed + bad))
  skipped=$((skipped + skips))
}

mkdir -p build
run_suite "release" build -DCMAKE_BUILD_TYPE=Release -DSDXL_WERROR=ON
if [[ $fast == 0 ]]; then
  mkdir -p build-asan
  run_suite "asan+ubsan" build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
    -DSDXL_WERROR=ON -DSDXL_SANITIZE=ON -DSDXL_FUZZ=ON -DSDXL_CUDA=OFF
fi

echo "TOTAL: $passed passed, $failed failed, $skipped skipped"
[[ $failed == 0 ]]
