#!/usr/bin/env bash
# Lint (ruff, mypy), then run the test suite with per-distribution coverage.
#   bash scripts/test.sh --all      # everything, slow tests included (what CI runs)
#   bash scripts/test.sh            # fast lane: everything not marked slow
#   bash scripts/test.sh -m slow    # extra pytest arguments are passed through
#   bash scripts/test.sh --no-lint  # skip ruff and mypy (e.g. tests of a half-finished change)
#   bash scripts/test.sh --help     # this text
set -uo pipefail
cd "$(dirname "$0")/.."
for arg in "$@"; do
  if [ "$arg" = "--help" ] || [ "$arg" = "-h" ]; then
    sed -n '2,7s/^# \{0,1\}//p' "$0"  # the usage lines at the top of this file
    exit 0
  fi
done
PY=.venv/bin/python
if [ ! -x "$PY" ]; then
  echo "error: .venv is missing; run 'bash scripts/setup-env.sh' first" >&2
  exit 2
fi
marker=(-m "not slow")
args=()
lint=1
for arg in "$@"; do
  case "$arg" in
    --all) marker=() ;;
    --no-lint) lint=0 ;;
    -m) marker=(); args+=("$arg") ;;
    *) args+=("$arg") ;;
  esac
done
if [ "$lint" -eq 1 ]; then
  # ruff checks every Python file in the repository; mypy the files pyproject.toml's
  # [tool.mypy] names (the distributions and benchmarks), incrementally through .mypy_cache.
  # Both run, so one pass shows every finding; either failing stops the script before pytest.
  failed=()
  .venv/bin/ruff check . || failed+=("ruff check .")
  .venv/bin/mypy || failed+=("mypy")
  if [ "${#failed[@]}" -gt 0 ]; then
    for tool in "${failed[@]}"; do
      echo "lint failed: $tool (findings above; --no-lint skips the linters)" >&2
    done
    exit 1
  fi
fi
# Small test tensors run fastest on one thread, and stay fast when the machine is busy.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
# One pytest worker per core (pytest-xdist; ESPER_TEST_WORKERS=0 runs in this process). Tests of
# one module stay on one worker, so module fixtures are built once. On the 2-core machine the
# whole suite took 12 min 39 s with two workers against 17 min 56 s in one process.
workers=(-n "${ESPER_TEST_WORKERS:-auto}" --dist loadscope)
rm -f .coverage .coverage.*
"$PY" -m pytest "${marker[@]}" "${workers[@]}" --cov --cov-report= -p no:cacheprovider "${args[@]}"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests" >&2
  rc=0
fi
if [ "$rc" -eq 0 ]; then
  "$PY" scripts/coverage_by_distribution.py --fail-under 85 || rc=$?
fi
exit "$rc"
