#!/usr/bin/env bash
# Regenerates the committed gRPC stubs in src/sdxl_client/proto/ from
# proto/sdxl/v1/image_generation.proto. Needs grpcio-tools (pip install grpcio-tools==1.85.1).
#
# The proto is mapped to the virtual path sdxl_client/proto/, so the generated modules import
# each other inside this package (the wire names — sdxl.v1.ImageGeneration, … — do not change).
#
#   clients/python/generate.sh [OUT_DIR]     (default: clients/python/src)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$here/src}"
python="${PYTHON:-python3}"
mkdir -p "$out/sdxl_client/proto"
"$python" -m grpc_tools.protoc -Isdxl_client/proto="$root/proto/sdxl/v1" \
  --python_out="$out" --grpc_python_out="$out" --pyi_out="$out" \
  sdxl_client/proto/image_generation.proto
