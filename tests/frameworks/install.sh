#!/usr/bin/env bash
# Install the pinned frameworks' configuration code for the `frameworks` test group into
# ${1:-.frameworks/site} (a folder the tests put on PYTHONPATH of their subprocesses only).
# CPU only: every package --no-deps, so pip never pulls a CUDA torch over the CPU one.
#   megatron-core 0.19.2: the wheel is cp312-only (Requires-Python >= 3.12); its pure-Python
#     sources (megatron/training/arguments.py included) are unpacked, not pip-installed.
#   deepspeed 0.19.8: sdist built with DS_BUILD_OPS=0 (no CUDA ops); its setup.py imports torch,
#     so it builds without isolation (needs setuptools and wheel in the running environment).
#   torchtitan 0.3.0 and the rest: tests/frameworks/requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
TARGET="${1:-.frameworks/site}"
PY="${PYTHON:-python}"
STAMP="$TARGET/.paraplan-frameworks"
HASH="$(cat tests/frameworks/requirements.txt tests/frameworks/install.sh | sha256sum | cut -c1-16)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ]; then
  echo "frameworks already installed in $TARGET"; exit 0
fi
rm -rf "$TARGET"; mkdir -p "$TARGET"
WHEELS="$(mktemp -d)"; trap 'rm -rf "$WHEELS"' EXIT
"$PY" -m pip install -q --no-deps --target "$TARGET" -r tests/frameworks/requirements.txt
"$PY" -m pip download -q --no-deps --python-version 3.12 --only-binary=:all: megatron-core==0.19.2 -d "$WHEELS"
"$PY" -m zipfile -e "$WHEELS"/megatron_core-0.19.2-*.whl "$TARGET"
"$PY" -m pip install -q wheel setuptools
DS_BUILD_OPS=0 "$PY" -m pip install -q --no-deps --no-build-isolation --target "$TARGET" deepspeed==0.19.8
echo "$HASH" > "$STAMP"
echo "frameworks installed in $TARGET"
