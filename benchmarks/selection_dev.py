"""What a data selection with the paper's filter leaves out of the dev release, and its export.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ifllm_selection \
        .venv/bin/python benchmarks/selection_dev.py [../shared/ifllm/ifllm-dev.tar.xz]

Creates and migrates the database if needed, imports the archive (skipped when its tasks are
already there), computes QC of every release task (in this process), creates a selection with
the paper's two thresholds (response score >= 0.75, max-index score >= 0.3; every other rule off)
and exports it; prints the selection's counts per reason, then what the manifest and
``tasks.parquet`` of the export say. Also prints the unselected export's ``included_flagged_by_qc``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ifllm_site.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ifllm_selection")
os.environ.setdefault("IFLLM_JOBS_EAGER", "true")


def main() -> None:
    from benchmarks.import_dev import _ensure_database

    archive = sys.argv[1] if len(sys.argv) > 1 else str(ROOT.parent / "shared/ifllm/ifllm-dev.tar.xz")
    _ensure_database(os.environ["DATABASE_URL"])

    import django

    django.setup()
    import pandas as pd
    from django.core.management import call_command

    from collection.models import Platform, Task
    from crowd import services
    from crowd.models import TaskQC
    from crowd.qc import PAPER_THRESHOLDS

    call_command("migrate", verbosity=0)
    if not Task.objects.filter(worker__platform=Platform.RELEASE).exists():
        started = time.perf_counter()
        call_command("import_ifllm", archive, "--jobs", "2", verbosity=0)
        print(f"imported in {time.perf_counter() - started:.0f} s")
    todo = Task.objects.filter(worker__platform=Platform.RELEASE, chunks__isnull=False, qc__isnull=True).distinct()
    started = time.perf_counter()
    for task in todo.select_related("worker"):
        services.task_qc_compute(task=task)
    print(f"QC computed for {TaskQC.objects.count()} tasks ({time.perf_counter() - started:.0f} s this run)")
    fails = TaskQC.objects.filter(response_score__lt=0.75).count()
    print(f"tasks whose response score is below 0.75: {fails} of {TaskQC.objects.count()} with QC")
    selection = services.data_selection_create(name="paper filter (benchmark)", thresholds=PAPER_THRESHOLDS,
                                               scope="release", validation=False)
    print(f"\nselection {selection}: kept {selection.n_kept}, left out {selection.n_left_out}")
    for code, entry in selection.summary["by_reason"].items():
        print(f"  {entry['label']} ({code}): {entry['tasks']} tasks, {entry['only']} for this reason alone")
    with tempfile.TemporaryDirectory() as tmp:
        services.dataset_export(path=Path(tmp) / "sel", selection=selection, formats=("parquet", "hf"))
        manifest = json.loads((Path(tmp) / "sel" / "manifest.json").read_text())
        tasks = pd.read_parquet(Path(tmp) / "sel" / "parquet" / "tasks.parquet")
        print(f"\nexport of the selection: {len(tasks)} tasks in tasks.parquet, manifest left_out total "
              f"{manifest['left_out']['total']}, by reason "
              f"{ {k: v['tasks'] for k, v in manifest['left_out']['by_reason'].items()} }")
        print(f"  tasks.parquet QC columns: {sorted(c for c in tasks.columns if c.startswith(('qc_', 'selection_')))}")
        print(f"  lowest qc_response_score exported: {tasks['qc_response_score'].min():.3f}")
        services.dataset_export(path=Path(tmp) / "all", formats=("parquet", "hf"))
        plain = json.loads((Path(tmp) / "all" / "manifest.json").read_text())
        print(f"\nexport without a selection: qc_applied={plain['qc_applied']}, included_flagged_by_qc="
              f"{plain['included_flagged_by_qc']} (under the QC defaults), left out {plain['left_out']['total']}")


if __name__ == "__main__":
    main()
