#!/bin/sh
# setup_venv.sh — makes the virtualenv tools/reference needs, from the pinned requirements.
#
#   tools/reference/setup_venv.sh [DIR]      (default DIR: /tmp/sdxld-ref-venv)
#
# then run DIR/bin/python tools/reference/make_goldens.py. Needs python3 (3.11, as on
# Debian 12) with venv, and PyPI. torch's wheel brings ~3 GB of CUDA libraries: slow, not wrong.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-/tmp/sdxld-ref-venv}
python3 -m venv "$dir"
"$dir/bin/pip" install --disable-pip-version-check --no-input -r "$here/requirements.txt"
# ftfy and invisible-watermark change results (see requirements.txt); nothing above pulls them
# in, but a venv reused from elsewhere might hold them.
if "$dir/bin/python" -c "import ftfy" 2>/dev/null || "$dir/bin/python" -c "import imwatermark" 2>/dev/null; then
    echo "setup_venv.sh: $dir has ftfy or invisible-watermark installed; remove them (pip uninstall ftfy invisible-watermark)" >&2
    exit 1
fi
echo "ready: $dir/bin/python $here/make_goldens.py --mkmodel build/mkmodel"
