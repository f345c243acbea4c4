#!/usr/bin/env bash
# Run the test suite (fast lane) with per-distribution coverage.
#   bash scripts/test.sh            # fast lane: everything not marked slow
#   bash scripts/test.sh -m slow    # extra pytest arguments are passed through
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
if [ ! -x "$PY" ]; then
  echo "error: .venv is missing; run 'bash scripts/setup-env.sh' first" >&2
  exit 2
fi
marker=(-m "not slow")
for arg in "$@"; do [ "$arg" = "-m" ] && marker=(); done
# Small test tensors run fastest on one thread, and stay fast when the machine is busy.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
rm -f .coverage .coverage.*
"$PY" -m pytest "${marker[@]}" --cov --cov-report= -p no:cacheprovider "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests" >&2
  rc=0
fi
if [ "$rc" -eq 0 ]; then
  "$PY" scripts/coverage_by_distribution.py --fail-under 85 || rc=$?
fi
exit "$rc"
