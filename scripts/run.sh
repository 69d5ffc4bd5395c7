#!/usr/bin/env bash
# Development site: SQLite in var/, tasks run in-process (no Redis needed), demo content.
# Serves ASGI with uvicorn on http://localhost:8000 (override with HOST / PORT).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
PY=.venv/bin/python
$PY manage.py migrate --noinput
$PY manage.py collectstatic --noinput --verbosity 0
# seed_demo (collection app) loads demo data and prints the staff password; optional until it exists.
if $PY manage.py help seed_demo >/dev/null 2>&1; then
    $PY manage.py seed_demo
fi
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
echo "==> IFllm Lab at http://localhost:$PORT/"
exec .venv/bin/uvicorn ifllm_site.asgi:application --host "$HOST" --port "$PORT"
