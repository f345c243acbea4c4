#!/usr/bin/env bash
# Create .venv-cpu: the Esper distributions over a CPU build of torch, for the benchmarks'
# memory figures (benchmarks/bench_cli.py --cpu-python .venv-cpu/bin/python; run_all.py uses
# it when present). A CUDA build of torch maps its CUDA libraries even without a GPU, which is
# most of a small run's memory. Not for the tests: torchvision here pairs only with the CUDA
# build, so the CIFAR loaders are absent from this environment.
#
#   TORCH_SPEC="torch==2.13.0" bash scripts/setup-cpu-env.sh
#
# TORCH_SPEC is passed to pip as is; the default names the CPU build that lies on this
# project's machines. Elsewhere, e.g.: TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cpu"
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
if [ ! -x .venv-cpu/bin/python ]; then
  "$PYTHON" -m venv .venv-cpu
fi
PIP=".venv-cpu/bin/python -m pip"
# shellcheck disable=SC2086  # TORCH_SPEC may carry pip options
$PIP install --quiet $TORCH_SPEC
$PIP install --quiet numpy "pluggy>=1.5" "attrs>=23.1" "structlog>=24.1" "click>=8.1" "importlib-metadata>=6.0"
if ! .venv-cpu/bin/python -c "import sys, torch; sys.exit(torch.version.cuda is not None)"; then
  echo "error: TORCH_SPEC='$TORCH_SPEC' installed a CUDA build of torch; give a CPU build" >&2
  exit 1
fi
# --no-deps: esper-blueprints-cnn would pull torchvision, and with it a CUDA torch.
$PIP install --quiet --no-deps \
  -e ./esper-core -e ./esper-blueprints-cnn -e ./esper-blueprints-transformer \
  -e ./esper-antipatterns -e ./esper-policies -e ./esper-telemetry
echo ".venv-cpu ready: $(.venv-cpu/bin/python -c 'import torch; print("torch", torch.__version__)')"
