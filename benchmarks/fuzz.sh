#!/usr/bin/env bash
# The full fuzz run of the study site (issue 22): schemathesis over every API operation and every
# worker-facing form, plus the hand-made hostile bodies and every body charset and content type,
# against uvicorn and PostgreSQL. Prints the number of cases, of 5xx answers (must be 0) and the
# cases per operation. CI runs the same test with 2 random cases per operation; this runs
# IFLLM_SCHEMA_EXAMPLES (default 700) per operation: over 10,000 cases in all.
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/ifllm benchmarks/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export IFLLM_SCHEMA_EXAMPLES="${IFLLM_SCHEMA_EXAMPLES:-700}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/ifllm}"
exec .venv/bin/pytest -p no:cacheprovider -q tests/site/test_schemathesis.py "$@"
