#!/usr/bin/env bash
# Heron vs MLflow tracking benchmark; see run.py. Usage: bench/tracking/run.sh [--quick]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${HERON_BENCH_PYTHON:-$here/../../.venv/bin/python}"
exec "$python" "$here/run.py" "$@"
