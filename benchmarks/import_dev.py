"""Benchmark: import the whole dev release archive into PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ifllm_bench \
        .venv/bin/python benchmarks/import_dev.py [../shared/ifllm/ifllm-dev.tar.xz] [--jobs 2]

Creates the database if needed, migrates it, empties the collection tables, unpacks the archive
to a temporary folder (timed apart), imports it and prints samples/s and peak RSS (this process
and, separately, the largest parser child).  Run it twice to also time an idempotent re-import.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ifllm_site.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ifllm_bench")


def _ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("select 1 from pg_database where datname = %s", [name]).fetchone():
            conn.execute(f'create database "{name}"')


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("archive", nargs="?", default=str(ROOT.parent / "shared/ifllm/ifllm-dev.tar.xz"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="do not empty the tables first")
    args = parser.parse_args()

    url = os.environ["DATABASE_URL"]
    if not url.startswith("postgres"):
        sys.exit("DATABASE_URL must point at PostgreSQL for this benchmark")
    _ensure_database(url)

    import django

    django.setup()
    from django.core.management import call_command

    from collection.models import Task, Worker
    from collection.services.release_import import release_import

    call_command("migrate", verbosity=0)
    if not args.keep:
        Task.objects.all().delete()
        Worker.objects.all().delete()

    with tempfile.TemporaryDirectory(prefix="ifllm-bench-") as tmp:
        t0 = time.perf_counter()
        with tarfile.open(args.archive) as tar:
            tar.extractall(tmp, filter="data")
        t_unpack = time.perf_counter() - t0
        root = next(Path(tmp).rglob("query_logs_table.csv")).parent

        t0 = time.perf_counter()
        summary = release_import(path=root, n_jobs=args.jobs)
        t_import = time.perf_counter() - t0

    samples = summary.counts["samples"]
    raw_rows = samples + summary.counts["duplicate_abs_gaze_rows_dropped"]
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"unpack: {t_unpack:.1f} s (not part of the import)")
    print(f"import: {t_import:.1f} s for {summary.counts['task_folders']} task folders")
    print(f"samples stored: {samples:,} ({raw_rows:,} trajectory file rows read)")
    print(f"throughput: {samples / t_import:,.0f} samples/s, {raw_rows / t_import:,.0f} file rows/s")
    print(f"peak RSS: main process {self_rss:.0f} MiB, largest parser child {child_rss:.0f} MiB")
    print(f"loaded: {summary.as_dict()['loaded']}")
    print(f"skipped: {summary.as_dict()['skipped']}; notes: {summary.as_dict()['notes']}")


if __name__ == "__main__":
    main()
