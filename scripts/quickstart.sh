#!/usr/bin/env bash
# Set up the environment (idempotent) and run the default job: `esper run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
exec .venv/bin/esper run "$@"
