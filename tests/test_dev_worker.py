"""`make run` without Redis: a job started by the web process runs in the worker beside it.

As used: a SQLite file, the folder broker (``IFLLM_BROKER_DIR``), a real Celery worker process
(the command scripts/run.sh starts) and a separate process that starts the job, as a request
would. The starting process returns while the job is still PENDING/RUNNING, which is the point:
the job no longer runs inside the request.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 120  # worker start-up plus the job on a busy 2-core machine


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "IFLLM_JOBS_EAGER"}}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        IFLLM_BROKER_DIR=str(tmp_path / "broker"),
        DJANGO_SETTINGS_MODULE="ifllm_site.settings",
        PYTHONUNBUFFERED="1",
    )
    return env


def _job_row(db: Path, pk: int) -> tuple[str, int, str]:
    with sqlite3.connect(db, timeout=20) as conn:
        return conn.execute("SELECT status, progress, log_tail FROM jobs_job WHERE id = ?", [pk]).fetchone()


def test_job_runs_in_the_worker_not_in_the_request(tmp_path: Path) -> None:
    env = _env(tmp_path)
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    start = (
        "from jobs.services import job_start;"
        "j = job_start(kind='jobs.count', params={'n': 4, 'delay': 0.5});"
        "j.refresh_from_db(); print(j.pk, j.status)"
    )
    # Started before any worker exists: returns at once with the job waiting, not done.
    t0 = time.monotonic()
    out = subprocess.run([python, "manage.py", "shell", "-c", start], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    pk, status = int(out[-2]), out[-1]
    assert status == "PENDING", out
    assert list((tmp_path / "broker" / "messages").glob("*.msg")), "no message in the folder broker"
    db = tmp_path / "db.sqlite3"
    assert _job_row(db, pk)[0] == "PENDING"
    assert time.monotonic() - t0 < TIMEOUT_S

    celery = [python, "-m", "celery", "-A", "ifllm_site", "worker", "-Q", "default,cpu,gpu",
              "-c", "1", "-n", f"pytest-{os.getpid()}@%h", "-l", "info"]
    with open(tmp_path / "worker.log", "w+") as log:
        worker = subprocess.Popen(celery, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + TIMEOUT_S
            seen_running = False
            while time.monotonic() < deadline:
                status, progress, log_tail = _job_row(db, pk)
                seen_running |= status == "RUNNING" and 0 < progress < 100
                if status in {"SUCCEEDED", "FAILED", "CANCELLED"}:
                    break
                time.sleep(0.2)
            else:
                log.seek(0)
                pytest.fail(f"job {pk} did not finish: {status}\n{log.read()[-3000:]}")
        finally:
            worker.terminate()
            worker.wait(timeout=30)
    assert status == "SUCCEEDED" and progress == 100
    assert seen_running, "progress was not visible while the job ran"
    assert log_tail.splitlines()[-1] == "counted 4"
