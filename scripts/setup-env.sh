#!/usr/bin/env bash
# Create .venv (if missing) and install all six Esper distributions in editable mode,
# plus the test tools and linters. Safe to run again: it only installs what is missing or changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PIP=".venv/bin/python -m pip"
$PIP install --quiet --upgrade pip >/dev/null
# torch and torchvision are pinned to a matching pair (torchvision's C++ ops must match torch).
$PIP install --quiet "torch==2.14.1" "torchvision==0.29.1"
$PIP install --quiet \
  -e "./esper-core[onnx]" \
  -e ./esper-blueprints-cnn \
  -e ./esper-blueprints-transformer \
  -e ./esper-antipatterns \
  -e ./esper-policies \
  -e ./esper-telemetry \
  pytest pytest-cov pytest-xdist hypothesis "ruff==0.17.6" "mypy==2.4.1"
