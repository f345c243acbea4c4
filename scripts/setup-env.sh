#!/usr/bin/env bash
# Create .venv (if missing) and install all six Esper distributions in editable mode,
# plus the test tools and linters. Safe to run again: it only installs what is missing or changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
# pip runs quietly; these lines say which step is under way, and how long each took.
started=$SECONDS
step() { echo "setup-env: $1 ($((SECONDS - started)) s so far)" >&2; }
if [ ! -x .venv/bin/python ]; then
  step "creating .venv"
  "$PYTHON" -m venv .venv
fi
PIP=".venv/bin/python -m pip"
$PIP install --quiet --upgrade pip >/dev/null
# torch and torchvision are pinned to a matching pair (torchvision's C++ ops must match torch).
step "installing torch and torchvision (the longest step: a minute or two the first time)"
$PIP install --quiet "torch==2.14.1" "torchvision==0.29.1"
step "installing the six Esper distributions (editable), the test tools and the linters"
$PIP install --quiet \
  -e "./esper-core[onnx]" \
  -e ./esper-blueprints-cnn \
  -e ./esper-blueprints-transformer \
  -e ./esper-antipatterns \
  -e ./esper-policies \
  -e ./esper-telemetry \
  pytest pytest-cov pytest-xdist hypothesis "ruff==0.17.6" "mypy==2.4.1"
step "done"
