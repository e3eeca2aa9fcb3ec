#!/usr/bin/env bash
# The prepared GPU check (issue 17): one call on a GPU machine, at most 8 minutes, one JSON summary.
#
#   scripts/gpu_check.sh --out DIR [--dry-run] [--data FILE] [--budget SECONDS]
#
# Writes DIR/summary.json, DIR/check.log, DIR/pytest.xml and DIR/induction-base.tar.gz.
# On a machine without network, first run scripts/gpu_wheels.sh where pip works and bring var/gpu
# along: when DeepSpeed is missing, its wheels are installed from there offline into a scratch
# folder. --dry-run runs the CPU parts at tiny sizes (the test suite does).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
WHEELS="${GPU_WHEELS:-var/gpu/wheels}"
dry=0
for arg in "$@"; do [ "$arg" = "--dry-run" ] && dry=1; done
if [ "$dry" = 0 ] && ! "$PY" -c "import deepspeed" 2>/dev/null; then
  if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
    SITE="${TMPDIR:-/tmp}/webrl-gpu-site"
    "$PY" -m pip install -q --no-index --find-links "$WHEELS" --no-deps --no-compile \
      --no-cache-dir --upgrade --target "$SITE" "$WHEELS"/*.whl
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
  else
    echo "gpu_check: no DeepSpeed and no wheels in $WHEELS (scripts/gpu_wheels.sh): its parts will fail" >&2
  fi
fi
exec "$PY" -m trainer.bench.gpu_check check "$@"
