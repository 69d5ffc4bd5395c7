"""A lab member on a fresh install walks SFT -> rDPO -> evaluation from the admin, in Chromium.

As used: the admin under uvicorn, and a real Celery worker process beside it that runs the jobs
(so the pages return at once and the job page follows the job live), the smoke-test model made
by the button on the empty Training runs page, and the offline demo judge of ``seed_demo``.
The one substitute is the reward-model dataset: its predictions are written by the fixture
(the mini release is too small for a reward-model run), as in the alignment job tests.

Needs REDIS_URL and PostgreSQL (the worker is another process); skipped on a laptop without
them, failed in CI. Screenshots: set IFLLM_SCREENSHOT_DIR.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from alignment.models import EvaluationRun, PreferenceDataset, TrainingRun
from alignment.services import preference_dataset_build
from analysis.models import RewardModelRun, RewardPrediction
from collection.models import Turn
from jobs.models import Job
from tests.support.paths import MINI

from .test_results_browser import _right_edge_inside
from .test_study_browser import shot

ROOT = Path(__file__).resolve().parents[2]
JOB_TIMEOUT_MS = 300_000  # one training job on a busy 2-core machine
SIZES = {"1400": (1400, 900), "1920": (1920, 1080)}


def _database_url() -> str:
    db = connection.settings_dict
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{db['USER']}@{db['HOST'] or 'localhost'}{port}/{db['NAME']}"


@pytest.fixture
def worker(transactional_db, tmp_path) -> Iterator[None]:
    missing = None if os.environ.get("REDIS_URL") else "REDIS_URL is not set"
    if connection.vendor != "postgresql":
        missing = "the worker process needs PostgreSQL"
    if missing:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"CI must run this test: {missing}")
        pytest.skip(missing)
    from ifllm_site.celery import app

    app.control.purge()
    env = {**os.environ, "DATABASE_URL": _database_url(), "DJANGO_SETTINGS_MODULE": "ifllm_site.settings",
           "PYTHONUNBUFFERED": "1"}
    log = open(tmp_path / "worker.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "ifllm_site", "worker", "-Q", "default,cpu,gpu", "--pool=solo",
         "-n", f"browser-{uuid.uuid4().hex[:8]}@%h", "-l", "info"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.seek(0)
        print(log.read()[-4000:])  # shown when the test fails
        log.close()


def _reward_dataset() -> PreferenceDataset:
    run = RewardModelRun.objects.create(name="fixture predictions")
    for i, turn in enumerate(Turn.objects.exclude(model_2="").exclude(preferred=None).order_by("pk")):
        prob_1 = 0.8 if (turn.preferred == 1) != (i % 4 == 0) else 0.3
        RewardPrediction.objects.create(
            run=run, turn=turn, model_name="RF + IF", protocol="grouped", prob_1=prob_1,
            predicted=1 if prob_1 >= 0.5 else 2, p_winner=max(prob_1, 1 - prob_1), label=turn.preferred,
        )
    return preference_dataset_build(name="RF + IF labels", source=PreferenceDataset.Source.REWARD_RUN, reward_run=run)


def _wait_for_job(page, name: str) -> None:
    """Open the job from the success message and let its page follow it to the end."""
    page.wait_for_load_state()
    if page.locator(".errornote").count():
        shot(page, f"{name}-form-errors")
        pytest.fail("form refused: " + " | ".join(page.locator(".errorlist").all_inner_texts()))
    page.locator(".messagelist a", has_text="job").first.click()
    page.wait_for_selector(".field-progress_bar progress")
    shot(page, f"{name}-job-running")
    page.locator(".field-status .readonly", has_text=re.compile("succeeded|failed|cancelled", re.I)).wait_for(
        timeout=JOB_TIMEOUT_MS
    )
    status = page.locator(".field-status .readonly").inner_text()
    assert status.lower() == "succeeded", page.locator(".field-error_pre").inner_text()
    shot(page, f"{name}-job-done")


def _shots(page, name: str) -> None:
    for label, (w, h) in SIZES.items():
        page.set_viewport_size({"width": w, "height": h})
        shot(page, f"{name}-{label}")
    page.set_viewport_size({"width": 1400, "height": 900})


@pytest.mark.real_celery
@pytest.mark.django_db(transaction=True)
def test_smoke_model_sft_rdpo_evaluation_from_the_admin(browser, asgi_server, worker, settings, tmp_path,
                                                        django_user_model) -> None:
    settings.IFLLM_RUNS_DIR = tmp_path / "runs"
    settings.IFLLM_MODELS_DIR = tmp_path / "models"
    call_command("import_ifllm", str(MINI), "--jobs", "1", stdout=StringIO())
    call_command("seed_demo", stdout=StringIO())  # the offline demo judge
    dataset = _reward_dataset()
    django_user_model.objects.create_superuser("lab", "lab@example.org", "pw-for-the-browser")

    context = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=asgi_server)
    page = context.new_page()
    page.goto("/admin/login/")
    page.get_by_label("Username").fill("lab")
    page.get_by_label("Password").fill("pw-for-the-browser")
    page.get_by_role("button", name="Log in").click()

    # 1. The empty Training runs page offers the smoke-test model; the button opens a filled SFT form.
    page.goto("/admin/alignment/trainingrun/")
    _shots(page, "a01-training-runs-empty")
    page.get_by_role("button", name="Make the smoke-test model").click()
    assert page.get_by_label("Base model").input_value().endswith("smoke-test-tiny-gpt2")
    _shots(page, "a02-sft-form")
    page.get_by_role("button", name="Save", exact=True).click()
    _wait_for_job(page, "a03-sft")
    sft = TrainingRun.objects.get(method="sft")
    assert (Path(sft.output_dir) / "final" / "config.json").exists()
    page.goto(f"/admin/alignment/trainingrun/{sft.pk}/change/")
    assert page.locator(".field-curves svg").count() == 1
    _shots(page, "a04-sft-run")

    # 2. rDPO from the SFT run, on the reward-model dataset.
    page.goto("/admin/alignment/trainingrun/add/")
    page.get_by_label("Method").select_option("rdpo")
    page.get_by_label("Dataset").select_option(str(dataset.pk))
    page.get_by_label("SFT run").select_option(str(sft.pk))
    for label, value in (("Learning rate", "0.001"), ("Batch size (per micro-batch)", "4"),
                         ("Gradient accumulation", "1"), ("Warm-up steps", "0"),
                         ("Max tokens (prompt + answer)", "128"), ("Max prompt tokens", "64")):
        page.get_by_label(label).fill(value)
    page.get_by_role("button", name="Save", exact=True).click()
    _wait_for_job(page, "a05-rdpo")
    rdpo = TrainingRun.objects.get(method="rdpo")
    page.goto(f"/admin/alignment/trainingrun/{rdpo.pk}/change/")
    assert "reward margin" in page.locator(".field-curves").inner_text() or page.locator(".field-curves svg").count()
    _shots(page, "a06-rdpo-run")

    # 3. Evaluation judged by the offline demo judge: only judges are offered.
    page.goto("/admin/alignment/evaluationrun/add/")
    judges = page.get_by_label("Judge").locator("option").all_inner_texts()
    assert [j for j in judges if j.strip("-")] == ["Demo judge (offline heuristic)"]
    page.get_by_label("SFT run").select_option(str(sft.pk))
    page.get_by_label("Aligned run").select_option(str(rdpo.pk))
    page.get_by_label("Judge").select_option(label="Demo judge (offline heuristic)")
    page.get_by_label("Test queries").fill("3")
    page.get_by_label("Max new tokens per answer").fill("16")
    _shots(page, "a07-evaluation-form")
    page.get_by_role("button", name="Save", exact=True).click()
    _wait_for_job(page, "a08-evaluation")
    ev = EvaluationRun.objects.get()
    page.goto(f"/admin/alignment/evaluationrun/{ev.pk}/change/")
    assert page.locator(".field-table_html table tr").count() >= 2
    assert page.locator(".field-win_chart svg").count() == 1
    assert page.locator(".field-answers table tbody tr").count() == 3
    answers = page.locator(".field-answers td:nth-child(2), .field-answers td:nth-child(3)").all_inner_texts()
    assert len(answers) == 6 and all(a.strip() for a in answers)  # blank answers are said to be blank
    assert "reward source: RF + IF labels" in page.locator(".field-table_html caption").text_content()
    _right_edge_inside(page, ".field-table_html .ifllm-scroll")
    assert page.get_by_role("button", name="Save", exact=True).count() == 0  # a run's page is read-only
    _shots(page, "a09-evaluation-run")
    assert Job.objects.filter(status=Job.Status.SUCCEEDED).count() == 3

    # 4. The lists with their runs: the job and step columns stay in view at 1400 px.
    page.goto("/admin/alignment/trainingrun/")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 2
    assert "Succeeded" in rows.first.locator("td.field-job_state").inner_text()
    assert re.fullmatch(r"\d+/\d+", rows.first.locator("td.field-step").inner_text().strip())
    _right_edge_inside(page, "#result_list th.column-step")
    _shots(page, "a10-training-runs")
    page.goto("/admin/alignment/evaluationrun/")
    assert page.locator("#result_list tbody tr").count() == 1
    assert "Demo judge" in page.locator("#result_list tbody").inner_text()
    _right_edge_inside(page, "#result_list th.column-job_state")
    _shots(page, "a11-evaluation-runs")
    page.goto("/admin/jobs/job/")
    assert page.locator("#result_list tbody tr").count() == 3
    assert page.locator("#result_list td.field-status_progress", has_text="Succeeded").count() == 3
    _right_edge_inside(page, "#result_list th.column-duration")
    _shots(page, "a12-jobs")
