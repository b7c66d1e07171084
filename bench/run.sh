#!/usr/bin/env bash
# Gateway benchmark entry point: ATP vs LiteLLM's proxy vs Portkey's gateway.
# Installs what is missing (wrk, node, the references under bench/.cache), runs the
# scenarios and writes bench/results/<date>.json and bench/results/latest.md.
# Arguments go to bench/run.py, e.g. `bash bench/run.sh --targets upstream,atp --window 5`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ]; then
    PY=.venv/bin/python
else
    PY=python3
fi
exec "$PY" bench/run.py "$@"
