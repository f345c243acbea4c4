#!/usr/bin/env bash
# Run the test suite with per-distribution coverage.
#   bash scripts/test.sh --all      # everything, slow tests included (what CI runs)
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
args=()
for arg in "$@"; do
  case "$arg" in
    --all) marker=() ;;
    -m) marker=(); args+=("$arg") ;;
    *) args+=("$arg") ;;
  esac
done
# Small test tensors run fastest on one thread, and stay fast when the machine is busy.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
rm -f .coverage .coverage.*
"$PY" -m pytest "${marker[@]}" --cov --cov-report= -p no:cacheprovider "${args[@]}"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests" >&2
  rc=0
fi
if [ "$rc" -eq 0 ]; then
  "$PY" scripts/coverage_by_distribution.py --fail-under 85 || rc=$?
fi
exit "$rc"
