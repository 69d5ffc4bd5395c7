"""Run pages follow their jobs, in Chromium (issue 21, items 8-13).

As used: the admin under uvicorn and a real Celery worker process beside it (the ``worker``
fixture of test_alignment_browser), PostgreSQL, the smoke-test model. A training run's page is
opened while its job runs: progress, step and curves change in place (no reload), Cancel stops
the job, Resume starts it again from the newest checkpoint on the same page. The other pages
this work touched are opened at 1400×900 and 1920×1080 with no sideways scroll (screenshots:
IFLLM_SCREENSHOT_DIR).
"""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command

from alignment.models import EvaluationRun, TrainingRun
from alignment.services import smoke_model_make, training_run_start
from analysis.models import AnalysisFigure, RewardModelRun
from collection.models import LLMModel, Task
from crowd.models import TaskQC
from jobs.models import Job
from tests.support.paths import MINI

from .test_alignment_browser import worker  # noqa: F401  (fixture: a real Celery worker process)
from .test_study_browser import shot

SIZES = {"1400": (1400, 900), "1920": (1920, 1080)}
#: Long enough to still be running when the test cancels it, on an idle machine too (it is cancelled).
LONG_SFT = {"epochs": 400, "batch_size": 1, "grad_accum": 1, "max_length": 96, "max_prompt_length": 48, "lr": 1e-3,
            "warmup_steps": 0, "holdout_test_queries": 3}
TRACEBACK = "Traceback (most recent call last):\n" + "".join(
    f'  File "/srv/ifllm/alignment/frame_{i}.py", line {i}, in step_{i}\n    do_something_{i}()\n' for i in range(60)
) + ("alignment.training.judge.JudgeUnavailable: judge 'gpt-judge' at http://10.0.0.9:8000/v1 did not answer the "
     "check request: APIConnectionError: Connection error.")


def _sizes(page, name: str) -> None:
    """Screenshots at both sizes, each without sideways scroll."""
    for label, (w, h) in SIZES.items():
        page.set_viewport_size({"width": w, "height": h})
        shot(page, f"{name}-{label}")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= w, f"{name} scrolls sideways at {w} px ({width} px wide)"
        hidden = page.evaluate("() => { const r = document.querySelector('.results');"
                               " return r ? r.scrollWidth - r.clientWidth : 0; }")
        assert hidden <= 0, f"{name}: the list hides {hidden} px of columns at {w} px"
    page.set_viewport_size({"width": 1400, "height": 900})


def _log_in(page, username: str, password: str, then: str = ""):
    """The admin's login form, as a person fills it; returns the page."""
    page.goto("/admin/login/" + (f"?next={then}" if then else ""))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    return page


def _figure_png(title: str) -> bytes:
    import io

    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    ax.plot(range(10), [x * x for x in range(10)])
    ax.set_title(title)
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def _panel(page):
    return page.locator(".ifllm-job-panel")


@pytest.mark.real_celery
@pytest.mark.django_db(transaction=True)
def test_training_run_page_follows_its_job_with_cancel_and_resume(browser, asgi_server, worker, settings,  # noqa: F811
                                                                   tmp_path, django_user_model) -> None:
    settings.IFLLM_RUNS_DIR = tmp_path / "runs"
    settings.IFLLM_MODELS_DIR = tmp_path / "models"
    call_command("import_ifllm", str(MINI), "--jobs", "1", stdout=StringIO())
    django_user_model.objects.create_superuser("lab", "lab@example.org", "pw-for-the-browser")
    smoke, _ = smoke_model_make()
    run = training_run_start(method="sft", base_model=str(smoke), config=LONG_SFT, name="long SFT")

    context = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=asgi_server)
    page = _log_in(context.new_page(), "lab", "pw-for-the-browser")

    # 1. Live: the page is opened once; step, progress and curves change under it without a reload.
    page.goto(f"/admin/alignment/trainingrun/{run.pk}/change/")
    page.evaluate("window.__notReloaded = true")
    assert _panel(page).get_attribute("data-live") == "1"
    page.locator(".ifllm-job-panel .job-status", has_text="Running").wait_for(timeout=180_000)
    page.locator(".field-curves svg").wait_for(timeout=180_000)
    first_step = page.locator(".field-step .readonly").inner_text()
    page.wait_for_function(
        "s => document.querySelector('.field-step .readonly').innerText !== s", arg=first_step, timeout=120_000)
    assert page.evaluate("window.__notReloaded") is True  # followed in place
    assert re.search(r"step \d+ of \d+", _panel(page).inner_text())
    assert int(_panel(page).locator("progress").get_attribute("value")) > 0
    _sizes(page, "h21c-01-training-run-live")

    # 2. Cancel on the run's page: the job stops, the panel offers Resume.
    page.get_by_role("button", name="Cancel").click()
    page.locator(".ifllm-job-panel .job-status", has_text="Cancelled").wait_for()
    assert page.url.endswith(f"/admin/alignment/trainingrun/{run.pk}/change/")
    cancelled = Job.objects.get(pk=run.job_id)
    assert cancelled.status == Job.Status.CANCELLED
    _sizes(page, "h21c-02-training-run-cancelled")

    # 3. Resume: a new job on the same run, followed live again.
    page.get_by_role("button", name="Resume").click()
    run.refresh_from_db()
    assert run.job.rerun_of_id == cancelled.pk
    page.locator(".ifllm-job-panel .job-status", has_text=re.compile("Pending|Running")).wait_for()
    assert f"Job {run.job_id}" in _panel(page).inner_text()
    page.locator(".ifllm-job-panel .job-status", has_text="Running").wait_for(timeout=180_000)
    page.get_by_role("button", name="Cancel").click()
    page.locator(".ifllm-job-panel .job-status", has_text="Cancelled").wait_for()

    # 4. The job's own page: the same panel.
    page.goto(f"/admin/jobs/job/{run.job_id}/change/")
    assert page.get_by_role("button", name="Run again").count() == 1
    _sizes(page, "h21c-03-job-cancelled")

    # 5. A failed evaluation: one-line cause, the traceback behind a toggle, answers as Markdown.
    aligned = TrainingRun.objects.create(method="rdpo", base_model=str(smoke), sft_run=run, name="rDPO (row only)")
    judge = LLMModel.objects.create(name="gpt-judge", provider="openai", model_id="j", base_url="http://10.0.0.9:8000/v1",
                                    can_judge=True)
    failed = Job.objects.create(kind="alignment.evaluate", status=Job.Status.FAILED, error=TRACEBACK, progress=1,
                                message="checking the judge gpt-judge")
    answer = "Plants grow from **seeds**:\n\n1. water\n2. light\n\n```\ncode stays code\n```"
    ev = EvaluationRun.objects.create(name="failed judge", sft_run=run, aligned_run=aligned, judge=judge, job=failed,
                                      comparisons=[{"query": "How do plants grow?", "sft_answer": answer,
                                                    "dpo_answer": "Short *answer*."}])
    page.goto(f"/admin/alignment/evaluationrun/{ev.pk}/change/")
    cause = page.locator(".ifllm-job-panel .job-cause")
    assert cause.inner_text().startswith("alignment.training.judge.JudgeUnavailable: judge 'gpt-judge'")
    assert not page.locator(".ifllm-job-panel details pre").is_visible()  # behind the toggle
    assert page.locator(".field-answers .md-answer strong", has_text="seeds").count() == 1
    assert page.get_by_role("button", name="Resume").count() == 1
    _sizes(page, "h21c-04-evaluation-failed")
    page.locator(".ifllm-job-panel details summary").click()
    assert page.locator(".ifllm-job-panel details pre").is_visible()
    page.goto(f"/admin/jobs/job/{failed.pk}/change/")
    assert page.locator(".field-error_pre .job-cause").inner_text().endswith("Connection error.")
    _sizes(page, "h21c-05-job-failed")

    # 6. A reward-model run whose job runs: the panel with Cancel.
    reward_job = Job.objects.create(kind="analysis.reward_models", status=Job.Status.RUNNING, progress=40,
                                    message="reward models: pairwise, seed 0")
    reward = RewardModelRun.objects.create(name="running reward run", job=reward_job)
    page.goto(f"/admin/analysis/rewardmodelrun/{reward.pk}/change/")
    assert page.get_by_role("button", name="Cancel").count() == 1
    _sizes(page, "h21c-06-reward-run-running")
    reward_job.status = Job.Status.CANCELLED
    reward_job.save()

    # 7. Lists and forms: the training runs with their summary, the overlay, the short-run refusal.
    run.metrics = {**run.metrics, "valid/reward_accuracy": 0.61, "valid/reward_margin": 0.042, "valid/nll": 2.31,
                   "history": [*(run.metrics.get("history") or []), {"step": 3, "valid/nll": 2.31}]}
    run.save()
    aligned.metrics = {"loss/train": 0.66, "history": [{"step": s, "loss/train": 0.7 - s / 100,
                                                        "rewards_train/margins": s / 50} for s in range(1, 20)]
                       + [{"step": 19, "valid/reward_accuracy": 0.6, "valid/reward_margin": 0.3}]}
    aligned.save()
    page.goto("/admin/alignment/trainingrun/")
    _sizes(page, "h21c-07-training-runs")
    page.locator("#result_list tbody input[type=checkbox]").nth(0).check()
    page.locator("#result_list tbody input[type=checkbox]").nth(1).check()
    page.locator("select[name=action]").select_option("compare_curves")
    page.get_by_role("button", name="Go").click()
    page.locator("#compare-curves svg").wait_for()
    _sizes(page, "h21c-08-training-curves-overlay")

    # 8. Readability pages.
    for task in Task.objects.filter(chunks__isnull=False).distinct()[:6]:
        from crowd.services import task_qc_compute

        task_qc_compute(task=task)
    page.goto("/admin/crowd/taskqc/")
    _sizes(page, "h21c-09-task-qc-list")
    qc = TaskQC.objects.first()
    page.goto(f"/crowd/task/{qc.task_id}/")
    _sizes(page, "h21c-10-task-review")
    for i, title in enumerate(("Reading time per answer", "Fixations per word", "Regressions by side",
                               "Gaze coverage")):
        AnalysisFigure.objects.create(name=f"fig-{i}", title=title, png=_figure_png(title), svg="<svg></svg>")
    for url, name in (("/crowd/", "h21c-11-crowd-index"), ("/admin/", "h21c-12-admin-index"),
                      ("/analysis/", "h21c-13-analysis-dashboard")):
        page.goto(url)
        if url == "/admin/":  # each staff page's name on one line, not one letter per line
            heights = page.locator("#ifllm-staff-pages th").evaluate_all("ths => ths.map(t => t.offsetHeight)")
            assert max(heights) < 40, heights
        _sizes(page, name)
    viewer = django_user_model.objects.create_user("victor", password="pw-victor-123", is_staff=True)
    from django.contrib.auth.models import Group

    viewer.groups.add(Group.objects.get(name="viewer"))
    other = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=asgi_server)
    vpage = _log_in(other.new_page(), "victor", "pw-victor-123")
    vpage.goto(f"/admin/jobs/job/{failed.pk}/change/")
    assert vpage.get_by_role("button", name="Run again").count() == 0  # viewers see no buttons
    token = vpage.evaluate("document.cookie.match(/csrftoken=([^;]+)/)[1]")
    response = vpage.request.post(f"{asgi_server}/admin/jobs/job/{failed.pk}/rerun/",
                                  headers={"Referer": f"{asgi_server}/admin/", "X-CSRFToken": token})
    assert response.status == 403 and "victor may not re-run alignment.evaluate jobs" in response.text()
    # A staff account without a role opens a staff page: the 403 page with the admin's chrome.
    django_user_model.objects.create_user("sam", password="pw-sam-123456", is_staff=True)
    vpage.context.clear_cookies()
    _log_in(vpage, "sam", "pw-sam-123456", then="/analysis/").wait_for_url("**/analysis/")
    assert "This page needs the access.view_staff_pages permission" in vpage.locator(".errornote").inner_text()
    assert vpage.locator("#header").count() == 1
    _sizes(vpage, "h21c-14-forbidden")
    other.close()
    context.close()
