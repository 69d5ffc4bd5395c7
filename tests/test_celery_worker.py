"""End to end: a real Celery worker process runs a job sent through Redis, against the test database.

Needs REDIS_URL and a PostgreSQL DATABASE_URL (a worker process cannot share pytest's in-memory
SQLite database). Without them the test is skipped on a laptop but FAILS in CI (``CI`` set), so a
CI that lost its services cannot pass silently.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from jobs.models import Job
from jobs.services import job_start

ROOT = Path(__file__).resolve().parent.parent
CELERY = ROOT / ".venv" / "bin" / "celery"
TIMEOUT_S = 90  # worker start-up (Django, app imports) on a busy 2-core machine plus the job


def _missing_services() -> str | None:
    if not os.environ.get("REDIS_URL"):
        return "REDIS_URL is not set"
    if connection.vendor != "postgresql":
        return f"DATABASE_URL is {connection.vendor}, not PostgreSQL"
    return None


def _database_url() -> str:
    """URL of the database the tests use right now (pytest-django's test_<name>)."""
    db = connection.settings_dict
    auth = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or "localhost"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{auth}@{host}{port}/{db['NAME']}"


@pytest.mark.real_celery
@pytest.mark.django_db(transaction=True)
def test_real_worker_runs_job_through_redis() -> None:
    missing = _missing_services()
    if missing:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"CI must run the real-worker test: {missing}")
        pytest.skip(missing)
    from ifllm_site.celery import app

    assert not app.conf.task_always_eager
    # Messages left by an earlier, interrupted run point at rows of a dropped test database.
    app.control.purge()

    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "ifllm_site.settings",
        "PYTHONUNBUFFERED": "1",
    }
    log_path = ROOT / "var" / f"test-worker-{uuid.uuid4().hex[:8]}.log"
    with open(log_path, "w+") as log:
        worker = subprocess.Popen(
            [
                *([str(CELERY)] if CELERY.exists() else [sys.executable, "-m", "celery"]),
                "-A", "ifllm_site", "worker", "-Q", "default,cpu,gpu",
                "--pool=solo", "--concurrency=1", "-l", "info",
                "-n", f"pytest-{uuid.uuid4().hex[:8]}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            job = job_start(kind="jobs.count", params={"n": 3})
            deadline = time.monotonic() + TIMEOUT_S
            while time.monotonic() < deadline and worker.poll() is None:
                job.refresh_from_db()
                if job.is_finished:
                    break
                time.sleep(0.5)
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            log.seek(0)
            worker_log = log.read()
    log_path.unlink()

    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, f"job is {job.status}\n{job.error}\n{worker_log}"
    assert job.progress == 100
    assert job.result == {"counted": 3}
    assert job.log_tail.splitlines() == ["counted 1", "counted 2", "counted 3"]
    assert f"Task jobs.count[{job.celery_task_id}] received" in worker_log
