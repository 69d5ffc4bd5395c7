"""import_ifllm / export_ifllm against the database (PostgreSQL in CI)."""

from __future__ import annotations

import shutil
from io import StringIO
from pathlib import Path

import pandas as pd
import pytest
from django.core.management import call_command

from collection.models import ImportRun, Task, TrajectoryChunk, Turn, Worker
from collection.release import reader
from collection.selectors import task_samples, task_stream_summary
from tests.support.paths import MINI

from .release_compare import table_differences, trajectory_differences

pytestmark = pytest.mark.django_db


def _import(path: Path) -> str:
    out = StringIO()
    call_command("import_ifllm", str(path), "--jobs", "1", stdout=out)
    return out.getvalue()


def _fingerprint() -> dict:
    """Everything the import writes, without primary keys and timestamps of the run itself."""
    return {
        "workers": sorted(
            Worker.objects.values_list("pseudonym", "platform", "age", "consent", "gender", "created_at")
        ),
        "tasks": sorted(
            Task.objects.values_list(
                "worker__pseudonym", "release_task_id", "topic__title", "mode", "model_1", "model_2",
                "calibration_score", "finished_at", "summary", "copy_sentence",
            )
        ),
        "turns": sorted(
            Turn.objects.values_list(
                "release_query_id", "task__release_task_id", "index", "query", "response_1",
                "response_2", "likert_1", "likert_2", "preferred", "better_than_previous",
                "bullet_instruction", "asked_at",
            )
        ),
        "chunks": sorted(
            TrajectoryChunk.objects.values_list("task__release_task_id", "seq", "n_samples", "digest")
        ),
    }


def test_import_mini_loads_everything() -> None:
    out = _import(MINI)
    assert "samples: 84972" in out
    assert Worker.objects.count() == 3
    assert Turn.objects.count() == 28
    assert Task.objects.count() == 30
    # pairwise labels parsed as 1/2, never collapsed to 0
    pairwise = Turn.objects.exclude(model_2="")
    assert pairwise.count() == 16
    assert set(pairwise.exclude(preferred=None).values_list("preferred", flat=True)) == {1, 2}
    assert not Turn.objects.filter(model_2="", preferred__isnull=False).exists()
    assert ImportRun.objects.get().summary["loaded"]["turns"] == 28


def test_samples_decode_and_summarise() -> None:
    _import(MINI)
    folder = next(d for _, _, d in reader.iter_task_dirs(MINI))
    task = Task.objects.get(worker__pseudonym=folder.parent.name, release_task_id=int(folder.name))
    samples = task_samples(task=task)
    expected = reader.read_task_trajectories(folder).samples
    pd.testing.assert_frame_equal(
        samples.sort_values(["signal", "frame", "row"]).reset_index(drop=True),
        expected.sort_values(["signal", "frame", "row"]).reset_index(drop=True),
        check_categorical=False,
    )
    summary = task_stream_summary(task=task)
    assert sum(s["count"] for s in summary.values()) == len(expected)
    assert summary["gaze/box1"]["first_ms"] <= summary["gaze/box1"]["last_ms"]


def test_import_is_idempotent() -> None:
    _import(MINI)
    first = _fingerprint()
    _import(MINI)
    assert _fingerprint() == first
    assert ImportRun.objects.count() == 2


def test_export_release_roundtrip(tmp_path: Path) -> None:
    _import(MINI)
    call_command("export_ifllm", str(tmp_path), stdout=StringIO())
    assert table_differences(MINI, tmp_path) == []
    assert trajectory_differences(MINI, tmp_path) == []


def test_export_parquet(tmp_path: Path) -> None:
    _import(MINI)
    call_command("export_ifllm", str(tmp_path), "--format", "parquet", stdout=StringIO())
    turns = pd.read_parquet(tmp_path / "turns.parquet")
    samples = pd.read_parquet(tmp_path / "samples.parquet")
    assert len(turns) == 28 and len(samples) == 84972
    assert {"worker", "task_id", "signal", "frame", "char_index", "snippet"} <= set(samples.columns)
    assert "platform_worker_id" not in pd.read_parquet(tmp_path / "workers.parquet").columns


def test_malformed_file_is_reported_and_rest_imported(tmp_path: Path) -> None:
    root = tmp_path / "release"
    shutil.copytree(MINI, root)
    for p in root.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    folder = next(d for _, _, d in reader.iter_task_dirs(root))
    rel = next(folder.glob("rel_*.csv"))
    lines = rel.read_text().splitlines()
    lines.insert(3, "garbage line without fields")
    rel.write_text("\n".join(lines) + "\n")
    with open(root / "query_logs_table.csv", "a") as fh:
        fh.write('notanumber,worker_x,1,"q","a","","m","",4.0,,,0,2025-01-01 00:00:00\n')
    out = _import(root)
    assert f"{rel}:4" in out
    assert "query_logs_table.csv" in out and "notanumber" not in out.split("Loaded:")[0]
    assert Turn.objects.count() == 28
    assert TrajectoryChunk.objects.exists()


def test_missing_path_is_a_clean_error(tmp_path: Path) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="does not exist"):
        call_command("import_ifllm", str(tmp_path / "nope"))


def test_import_from_archive(tmp_path: Path) -> None:
    import tarfile

    archive = tmp_path / "release.tar.xz"
    with tarfile.open(archive, "w:xz") as tar:
        tar.add(MINI, arcname="ifllm-mini")
    out = _import(archive)
    assert "samples: 84972" in out
    assert Turn.objects.count() == 28
