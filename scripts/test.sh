#!/usr/bin/env bash
# The whole check: environment, services, ruff, then the full pytest suite against PostgreSQL and
# Redis. Extra arguments go to pytest (e.g. scripts/test.sh tests/test_jobs.py -x).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
scripts/services.sh

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/ifllm}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/15}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

# pytest-django creates its own test_ifllm; the main database is for manage.py and workers run
# by hand with the same environment.
if [[ "$DATABASE_URL" == postgres://postgres@127.0.0.1:5432/ifllm ]]; then
    createdb -h 127.0.0.1 -U postgres ifllm 2>/dev/null || true
fi

echo "==> ruff check"
.venv/bin/ruff check .

echo "==> pytest"
exec .venv/bin/pytest -p no:cacheprovider "$@"
