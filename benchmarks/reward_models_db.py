"""Benchmark: from the dev release in PostgreSQL to the full reward-model table (all protocols).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ifllm_bench \
        .venv/bin/python benchmarks/reward_models_db.py [--seeds 0,1] [--trees 200] [--text]

Run ``benchmarks/import_dev.py`` first (same DATABASE_URL) to load the release.  Prints the table
and the time of each stage: loading and decoding samples + matching + features, reward models
per setting, and the total.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ifllm_site.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ifllm_bench")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--trees", type=int, default=200)
    parser.add_argument("--no-quality-filter", action="store_true")
    parser.add_argument("--no-worker-normalise", action="store_true")
    parser.add_argument("--text", action="store_true")
    args = parser.parse_args()

    import django

    django.setup()
    from analysis.models import RewardModelRun
    from analysis.services import reward_model_run_execute
    from collection.models import TrajectoryChunk

    if not TrajectoryChunk.objects.exists():
        sys.exit("no trajectories in this database: run benchmarks/import_dev.py first")
    params = {
        "seeds": [int(s) for s in args.seeds.split(",")],
        "trees": args.trees,
        "quality_filter": not args.no_quality_filter,
        "worker_normalise": not args.no_worker_normalise,
        "text": args.text,
    }
    run = RewardModelRun.objects.create(name="benchmark", params=params)
    started = time.perf_counter()
    run = reward_model_run_execute(run=run)
    total = time.perf_counter() - started
    print(run.table_text)
    print("\nmatching/filtering:", json.dumps(run.report, default=str))
    print("\nstage timings (s):")
    for name, value in run.timings.items():
        print(f"  {name:40s} {value:7.1f}")
    print(f"  {'total (incl. storing predictions)':40s} {total:7.1f}")


if __name__ == "__main__":
    main()
