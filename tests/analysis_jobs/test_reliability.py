"""The reliability diagram of the latest reward-model run: figures job, dashboard, analysis_figures."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from analysis.models import AnalysisFigure, RewardModelRun
from jobs.models import Job
from jobs.services import job_start
from tests.support.paths import MINI
from tests.support.scaled_release import scaled_release

SMALL = {"seeds": [0], "trees": 20, "k": 10, "n_splits": 3, "quality_filter": False, "worker_normalise": False,
         "calibration": "platt"}

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    return scaled_release(MINI, tmp_path_factory.mktemp("scaled"), copies=4)


def test_reliability_diagram_of_the_latest_run_on_dashboard_and_files(
    release: Path, admin_client, django_capture_on_commit_callbacks, tmp_path
) -> None:
    call_command("import_ifllm", str(release), "--jobs", "1", stdout=StringIO())
    out = tmp_path / "figs"
    call_command("analysis_figures", "--out", str(out), stdout=StringIO(), stderr=StringIO())
    assert not (out / "reliability.png").exists()  # no reward-model run yet: no diagram, no error

    run = RewardModelRun.objects.create(params=SMALL)
    with django_capture_on_commit_callbacks(execute=True):
        job = job_start(kind="analysis.reward_models", params={"run_pk": run.pk})
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert run.predictions.filter(protocol="grouped", prob_1_cal__isnull=False).exists()

    call_command("analysis_figures", "--out", str(out), stdout=StringIO(), stderr=StringIO())
    assert (out / "reliability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = (out / "reliability.svg").read_text()
    assert "RF + IF, calibrated" in svg and "RF + Text lengths, raw" in svg and "ECE" in svg
    fig = AnalysisFigure.objects.filter(name="reliability").latest("pk")
    page = admin_client.get("/analysis/").content.decode()
    assert fig.title in page and f"/analysis/figures/{fig.pk}.png" in page
