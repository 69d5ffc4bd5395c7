#!/usr/bin/env bash
# The full fuzz run of the study site (issue 22): schemathesis over every API operation and every
# worker-facing form, plus the hand-made hostile bodies and every body charset and content type,
# against uvicorn and PostgreSQL. Prints the number of cases, of 5xx answers (must be 0) and the
# cases per operation. CI runs the same test with 2 random cases per operation; this runs
# IFLLM_SCHEMA_EXAMPLES (default 700) per operation: over 10,000 cases in all. Stored data is
# compared around every IFLLM_SCHEMA_SNAPSHOT_EVERY-th generated case (default 10; CI: every one).
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/ifllm benchmarks/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export IFLLM_SCHEMA_EXAMPLES="${IFLLM_SCHEMA_EXAMPLES:-700}"
export IFLLM_SCHEMA_SNAPSHOT_EVERY="${IFLLM_SCHEMA_SNAPSHOT_EVERY:-10}"
export IFLLM_FUZZ_STATS_DIR="${IFLLM_FUZZ_STATS_DIR:-$(mktemp -d)}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/ifllm}"
# -n: the operations spread over pytest-xdist workers (each with its own test database and
# uvicorn); every worker prints its own counts, the sum is the run's.
status=0
.venv/bin/pytest -p no:cacheprovider -q -n "${FUZZ_WORKERS:-4}" tests/site/test_schemathesis.py "$@" || status=$?
.venv/bin/python - "$IFLLM_FUZZ_STATS_DIR" <<'PY'
import collections, json, pathlib, sys
total = collections.Counter()
for f in sorted(pathlib.Path(sys.argv[1]).glob("*.json")):
    total.update(json.loads(f.read_text()))
ops = sorted((k[6:], v) for k, v in total.items() if k.startswith("cases "))
print(f"fuzz: {total['cases']} cases over {len(ops)} operations, {total['5xx']} answered 5xx; by status: "
      + ", ".join(f"{k[7:]}: {v}" for k, v in sorted(total.items()) if k.startswith("status ")))
print("fuzz cases per operation: " + ", ".join(f"{k} {v}" for k, v in ops))
PY
exit $status
