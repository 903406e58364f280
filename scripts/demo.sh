#!/usr/bin/env bash
# The demo, on a fresh Debian 12 machine: installs what is needed and builds (scripts/setup.sh),
# makes the tiny test model unless a model is given, starts sdxld, runs one img2img through the
# Python client (clients/python, in a virtualenv under build/), writes the image, and stops the
# server.
#
#   scripts/demo.sh [MODEL_DIR]          (default: build/models/tiny-a, made by build/mkmodel)
#   SDXL_SKIP_APT=1 scripts/demo.sh      skip the package install (already done)
#   SDXL_BUILD_DIR=DIR scripts/demo.sh   use binaries already built in DIR instead of build/
#
# Writes BUILD/demo/input.png and BUILD/demo/output.png.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
build="${SDXL_BUILD_DIR:-build}"

if [[ ! -x "$build/sdxld" || ! -x "$build/mkmodel" ]]; then
  scripts/setup.sh
fi

model="${1:-}"
if [[ -z "$model" ]]; then
  model="$build/models/tiny-a"
  if [[ ! -f "$model/model_index.json" ]]; then
    echo "demo: writing the tiny test model to $model (random weights: the image is noise)"
    "$build/mkmodel" --config models/configs/tiny-a --seed 1 --dtype fp32 --out "$model" >/dev/null
  fi
fi

venv="$build/.venv-demo"
if [[ ! -x "$venv/bin/python" ]]; then
  echo "demo: installing the Python client (clients/python) into $venv"
  python3 -m venv "$venv"
  # Built from a copy: an in-tree build would leave build/ and *.egg-info in clients/python.
  copy="$(mktemp -d)"
  cp -r clients/python "$copy/"
  "$venv/bin/pip" install --quiet --disable-pip-version-check pillow==11.0.0 "$copy/python"
  rm -rf "$copy"
fi

mkdir -p "$build/demo"
"$venv/bin/python" - "$build/demo/input.png" <<'PY'
import sys
from PIL import Image
img = Image.new("RGB", (256, 256))
img.putdata([(x, y, (x * y) % 256) for y in range(256) for x in range(256)])
img.save(sys.argv[1])
PY

port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log="$build/demo/sdxld.log"
"$build/sdxld" --model "$model" --listen "127.0.0.1:$port" --metrics-listen none >"$log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT
echo "demo: sdxld (pid $server) on 127.0.0.1:$port, log in $log"

for _ in $(seq 1 600); do
  if "$build/sdxl" --server "127.0.0.1:$port" health >/dev/null 2>&1; then break; fi
  kill -0 $server 2>/dev/null || { cat "$log"; echo "demo: sdxld exited"; exit 1; }
  sleep 0.2
done

"$venv/bin/python" clients/python/examples/img2img.py --server "127.0.0.1:$port" \
  --image "$build/demo/input.png" --prompt "a watercolor painting of a fox" --seed 42 \
  --out "$build/demo/output.png"

kill -TERM $server
wait $server
trap - EXIT
echo "demo: done: $build/demo/output.png (server stopped cleanly)"
