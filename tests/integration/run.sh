#!/usr/bin/env bash
# Runs the integration tests: real sdxld processes (on the tiny model build/models/tiny-a, which
# the ctest fixture model_tiny-a writes) against real clients — the Python package in
# clients/python (grpcio) and the C CLI build/sdxl.
#
#   tests/integration/run.sh [BUILD_DIR] [pytest args...]     (BUILD_DIR defaults to build)
#
# Makes (or reuses) a virtualenv BUILD_DIR/.venv-integration with the pinned clients
# (requirements.txt), checks that the committed Python stubs are what grpcio-tools generates
# from the proto, then runs pytest. Every server a test starts is stopped by the test.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
shift || true

for f in sdxld sdxl models/tiny-a/model_index.json; do
  [[ -e "$build/$f" ]] || { echo "run.sh: $build/$f is missing: build first (and run the"\
    "model_tiny-a ctest fixture)"; exit 1; }
done

venv="$build/.venv-integration"
stamp="$venv/requirements.txt"
if ! cmp -s "$root/tests/integration/requirements.txt" "$stamp"; then
  echo "run.sh: setting up $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    -r "$root/tests/integration/requirements.txt"
  cp "$root/tests/integration/requirements.txt" "$stamp"
fi

stubs="$build/integration-stubs"
rm -rf "$stubs"
PYTHON="$venv/bin/python" "$root/clients/python/generate.sh" "$stubs"
if ! diff -r -x __init__.py -x __pycache__ "$stubs/sdxl_client/proto" \
    "$root/clients/python/src/sdxl_client/proto" >/dev/null; then
  echo "run.sh: clients/python/src/sdxl_client/proto is stale: run clients/python/generate.sh"
  exit 1
fi

# A sanitizer build runs the engine several times slower: stretch the tests' time limits.
slowdown=1
if grep -q "SDXL_SANITIZE:BOOL=ON" "$build/CMakeCache.txt" 2>/dev/null; then
  slowdown=8
fi
cd "$root/tests/integration"
SDXL_BUILD_DIR="$build" SDXL_TEST_SLOWDOWN="$slowdown" \
  PYTHONPATH="$root/clients/python/src:$root/tests/integration" \
  PYTHONDONTWRITEBYTECODE=1 \
  exec "$venv/bin/python" -m pytest -p no:cacheprovider --basetemp "$build/integration-tmp" -q "$@"
