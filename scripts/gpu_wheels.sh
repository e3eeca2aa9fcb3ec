#!/usr/bin/env bash
# What the GPU check carries to a machine without network, in var/gpu (gitignored, about 8 MB):
#   var/gpu/wheels/   DeepSpeed (built here as a pure-Python wheel) and the needs of it that the GPU
#                     image lacks, for CPython 3.12 on x86-64 (scripts/gpu_check.sh installs them);
#   var/gpu/steps.jsonl  the built-in world's train prompts in demo-cpu's compact view, for the
#                     induction base and the sampler's tokenizer (needs Chromium; --no-data skips it).
#
#   scripts/gpu_wheels.sh [--no-data]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
OUT=var/gpu/wheels
DEEPSPEED=0.19.8
mkdir -p "$OUT"
if ! ls "$OUT"/deepspeed-"$DEEPSPEED"-*.whl >/dev/null 2>&1; then
  tmp=$(mktemp -d)
  "$PY" -m pip download -q --no-deps --no-binary=:all: -d "$tmp" "deepspeed==$DEEPSPEED"
  # DS_BUILD_OPS=0: no op is compiled here; DeepSpeed builds the ones it needs (CPU Adam) there.
  DS_BUILD_OPS=0 "$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$OUT" "$tmp"/deepspeed-*.tar.gz
  rm -rf "$tmp"
fi
# The image has einops, msgpack, ninja, numpy, packaging, psutil, py-cpuinfo, torch and tqdm.
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$OUT" hjson==3.1.0 pydantic==2.14.3 pydantic-core==2.50.4 annotated-types==0.8.0 \
  typing-inspection==0.4.5 typing-extensions==4.16.0
if [ "${1:-}" != "--no-data" ] && [ ! -s var/gpu/steps.jsonl ]; then
  "$PY" manage.py world export-sft --split train --limit 200 --view compact \
    --world-url "http://127.0.0.1:${GPU_WORLD_PORT:-9417}" --out var/gpu/steps.jsonl --json
fi
du -sh var/gpu
