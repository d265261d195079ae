#!/usr/bin/env bash
# Fetch, on a machine where pip works, the Python packages paraplan needs that the device machine's
# image lacks (its python3 3.12 already holds torch, numpy, networkx, rich, typer, pyyaml; see the
# device tool's KINDS.md): they travel with `run` as `carry: [".whl"]`. Never run by CI.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -rf .whl && mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
    "pydantic==2.14.4" "pydantic-core==2.50.5" "annotated-types==0.8.0" "typing-inspection==0.4.5" \
    "typing-extensions>=4.14" "simpy==4.1.2"
ls -l .whl
