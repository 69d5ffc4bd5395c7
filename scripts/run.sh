#!/usr/bin/env bash
# Development site: SQLite in var/, demo content, no Redis needed.
# Serves ASGI with uvicorn on http://localhost:8000 (override with HOST / PORT) and runs a Celery
# worker beside it on the folder broker var/broker (jobs run there, never inside a request).
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

# Without REDIS_URL the broker is var/broker; with it, this worker serves the Redis queues.
# Two processes: a reward table does not hold up a quality-check job. Stopped with the site.
mkdir -p var/log
.venv/bin/celery -A ifllm_site worker -Q default,cpu,gpu --concurrency="${WORKERS:-2}" \
    -n "dev-$$@%h" -l info >var/log/worker.log 2>&1 &
WORKER_PID=$!
trap 'kill "$WORKER_PID" 2>/dev/null; wait "$WORKER_PID" 2>/dev/null' EXIT INT TERM
echo "==> job worker started (pid $WORKER_PID, log var/log/worker.log)"
echo "==> IFllm Lab at http://localhost:$PORT/"
# Forwarded headers only from the proxies IFLLM_TRUSTED_PROXIES names (none by default).
if [ -n "${IFLLM_TRUSTED_PROXIES:-}" ]; then
    PROXY_ARGS=(--proxy-headers --forwarded-allow-ips "$IFLLM_TRUSTED_PROXIES")
else
    PROXY_ARGS=(--no-proxy-headers)
fi
.venv/bin/uvicorn ifllm_site.asgi:application --host "$HOST" --port "$PORT" "${PROXY_ARGS[@]}"
