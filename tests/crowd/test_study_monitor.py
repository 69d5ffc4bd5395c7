"""The study monitor on PostgreSQL: which tasks belong to a study, the figures the JSON endpoint
serves, who may read it, and the staff preview session that never counts anywhere."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from collection.models import CalibrationAttempt, Task, Topic, Turn, Worker
from collection.services.release_export import release_export
from crowd import selectors
from crowd.models import Assignment, Payment, Study, TaskQC
from crowd.services import data_selection_create, selection_candidates
from tests.site import conftest as site
from tests.site.conftest import complete_profile, pass_calibration
from tests.site.test_study_flow import ask_and_rate

from .conftest import client_for

pytestmark = pytest.mark.django_db
# The study-site fixtures (topics, chat models, settings), used here by name.
topics, demo_models, settings_row = site.topics, site.demo_models, site.settings_row

S1, S2 = "a" * 24, "b" * 24


@pytest.fixture
def prolific_study() -> Study:
    return Study.objects.create(name="prolific pilot", platform=Study.Platform.PROLIFIC, prolific_study_id=S1,
                                reward=Decimal("2.00"))


def _worker(name: str, *, consent: bool = True, study_id: str = S1, preview: bool = False) -> Worker:
    now = timezone.now()
    return Worker.objects.create(
        pseudonym=f"w-{name}", platform="prolific", platform_worker_id=name, consent=consent,
        consented_at=now if consent else None, is_preview=preview, created_at=now,
        extra={"entries": {f"sess-{name}": {"state": "own", "at": now.isoformat(), "study": study_id,
                                            "entered": (now - timedelta(minutes=5)).isoformat()}}},
    )


def _task(worker: Worker, status: str, *, study_id: str = S1, **kw) -> Task:
    topic, _ = Topic.objects.get_or_create(title="Monitor topic")
    now = timezone.now()
    return Task.objects.create(worker=worker, topic=topic, status=status, mode=kw.pop("mode", "pointwise"),
                               model_1="demo-a", hit_id=study_id, assignment_id=f"sess-{worker.platform_worker_id}",
                               started_at=now - timedelta(minutes=4), **kw)


def _attempt(task: Task, *, passed: bool, failures: list[str] = ()) -> CalibrationAttempt:
    return CalibrationAttempt.objects.create(task=task, kind="calibration", score=80, threshold=70, passed=passed,
                                             viewport_w=1366, viewport_h=768, rule={"failures": list(failures)})


@pytest.fixture
def running(prolific_study: Study) -> dict[str, Task]:
    """A Prolific study with one participant at each of several stages, plus tasks that are not
    its own (another study, a preview)."""
    now = timezone.now()
    _worker("entered", consent=False)
    chatting = _task(_worker("chat"), "chatting", chat_started_at=now)
    _attempt(chatting, passed=False, failures=["accuracy@1", "follows@1"])
    _attempt(chatting, passed=True)
    done = _task(_worker("done"), "completed", chat_started_at=now - timedelta(minutes=3),
                 chat_ended_at=now - timedelta(minutes=1), finished_at=now)
    _attempt(done, passed=True)
    TaskQC.objects.create(task=done, flagged=True, flags=",response_score,")
    assignment = Assignment.objects.create(study=prolific_study, platform="prolific", assignment_id="sess-done",
                                           platform_worker_id="done", worker=done.worker, task=done)
    Payment.objects.create(assignment=assignment, amount=Decimal("0.50"), reason="bonus", unique_request_token="t1")
    way_out = _task(_worker("out"), "abandoned", calibration_failed_at=now)
    _attempt(way_out, passed=False, failures=["no_face"])
    other = _task(_worker("other", study_id=S2), "completed", study_id=S2)
    preview = _task(_worker("preview", preview=True), "chatting", chat_started_at=now)
    return {"chatting": chatting, "done": done, "way_out": way_out, "other": other, "preview": preview}


def test_study_tasks_are_the_studys_own_without_previews(prolific_study, running) -> None:
    ids = set(selectors.study_tasks(prolific_study).values_list("pk", flat=True))
    assert ids == {running["chatting"].pk, running["done"].pk, running["way_out"].pk}
    other = Study.objects.create(name="second", platform=Study.Platform.PROLIFIC, prolific_study_id=S2)
    assert set(selectors.study_tasks(other).values_list("pk", flat=True)) == {running["other"].pk}
    lab = Study.objects.create(name="lab", platform=Study.Platform.LAB)
    assert not selectors.study_tasks(lab).exists()  # no lab task (and the preview is never one)


def test_monitor_figures_of_a_running_study(prolific_study, running) -> None:
    figures = selectors.study_monitor(prolific_study, private=True)
    stages = {s["stage"]: s["n"] for s in figures["stages"]}
    assert stages == {"entered": 1, "consented": 0, "calibrated": 0, "chatting": 1, "post_task": 0,
                      "completed": 1, "way_out": 1, "abandoned": 0}
    assert figures["n_sessions"] == 4 and figures["n_tasks"] == 3
    funnel = {f["stage"]: f["reached"] for f in figures["funnel"]}
    assert funnel == {"entered": 4, "consented": 3, "calibrated": 2, "chatting": 2, "post_task": 1, "completed": 1}
    cal = figures["calibration"]
    assert (cal["n_attempts"], cal["n_passed"]) == (4, 2)
    reasons = {r["reason"]: r["n"] for r in cal["reasons"]}
    assert reasons["distance"] == 1 and reasons["follows"] == 1 and reasons["face"] == 1 and reasons["spread"] == 0
    assert figures["qc"]["flag_rate"] == 1.0 and figures["qc"]["flags"] == [
        {"code": "response_score", "label": "response score (gaze on answer text)", "n": 1}]
    # One submitted assignment at 2.00 plus a pending bonus; the session took 5 minutes: 24.00/h.
    money = figures["money"]
    assert (money["rewards"], money["bonuses_pending"], money["total"], money["basis"]) == (
        "2.00", "0.50", "2.50", "assignments")
    assert figures["pay"]["minimum"] == "6.00" and figures["currency"] == "GBP"
    assert figures["pay"]["per_hour"] == "24.00" and figures["pay"]["below_minimum"] is False
    # Moving a participant on changes the figures: the chatter reaches the post-task questions.
    Task.objects.filter(pk=running["chatting"].pk).update(status="post_task", chat_ended_at=timezone.now())
    after = selectors.study_monitor(prolific_study, private=True)
    assert {s["stage"]: s["n"] for s in after["stages"]}["post_task"] == 1
    assert {f["stage"]: f["reached"] for f in after["funnel"]}["post_task"] == 2


def test_monitor_hides_money_without_the_private_permission(prolific_study, running) -> None:
    figures = selectors.study_monitor(prolific_study, private=False)
    assert figures["pay"] is None and figures["money"] is None and not figures["private"]


def test_minimum_pay_is_a_setting(prolific_study, running, settings) -> None:
    settings.IFLLM_PLATFORM_MIN_PAY_PER_HOUR = {"prolific": ("GBP", "30.00")}
    pay = selectors.study_monitor(prolific_study, private=True)["pay"]
    assert pay["minimum"] == "30.00" and pay["below_minimum"] is True


def test_json_endpoint_per_actor(prolific_study, running, researcher, viewer, staff_no_role, plain_user) -> None:
    url = reverse("crowd:study_monitor_data", kwargs={"study_id": prolific_study.pk})
    r = client_for(researcher).get(url)
    assert r.status_code == 200 and r["Content-Type"] == "application/json"
    assert r.json()["money"]["total"] == "2.50" and r["Cache-Control"] == "no-store"
    r = client_for(viewer).get(url)
    assert r.status_code == 200 and r.json()["money"] is None and r.json()["n_sessions"] == 4
    assert client_for(staff_no_role).get(url).status_code == 403
    for user in (plain_user, None):
        r = client_for(user).get(url)
        assert r.status_code == 302 and r["Location"].startswith(reverse("admin:login"))
    assert client_for(researcher).get(url.replace(str(prolific_study.pk), "999999")).status_code == 404


def test_monitor_page_of_an_empty_study(researcher) -> None:
    study = Study.objects.create(name="empty", platform=Study.Platform.LAB)
    r = client_for(researcher).get(reverse("crowd:study_monitor", kwargs={"study_id": study.pk}))
    assert r.status_code == 200
    page = r.content.decode()
    assert "Nobody has entered this study yet" in page and 'id="monitor-data"' in page
    assert reverse("crowd:study_monitor", kwargs={"study_id": study.pk}) in client_for(researcher).get(
        reverse("crowd:index")).content.decode()
    change = client_for(researcher).get(reverse("admin:crowd_study_change", args=[study.pk])).content.decode()
    assert 'id="study-monitor-link"' in change


def test_preview_needs_post_with_csrf_and_staff(prolific_study, researcher, plain_user) -> None:
    url = reverse("crowd:study_monitor", kwargs={"study_id": prolific_study.pk})
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(researcher)
    assert strict.post(url).status_code == 403
    assert client_for(plain_user).post(url).status_code == 302  # to the admin login
    assert not Worker.objects.filter(is_preview=True).exists()


def test_a_preview_walks_the_study_and_counts_nowhere(
    prolific_study, researcher, topics, demo_models, settings_row, django_capture_on_commit_callbacks,
    tmp_path,
) -> None:
    staff = client_for(researcher)
    live_before = Task.objects.quota_live().count()
    modes_before = {q["name"]: q["used"] for q in selectors.study_monitor(prolific_study, private=True)["mode_quotas"]}
    r = staff.post(reverse("crowd:study_monitor", kwargs={"study_id": prolific_study.pk}))
    assert r.status_code == 302 and r["Location"] == reverse("collection:resume")
    worker = Worker.objects.get(is_preview=True)
    consent = staff.get(staff.get(r["Location"])["Location"])
    assert "Preview — not recorded in the study." in consent.content.decode()
    complete_profile(staff)
    page = staff.get(reverse("collection:topics"))
    assert 'id="preview-banner"' in page.content.decode()
    pool = [c[0] for c in page.context["form"].fields["topics"].choices]
    assert staff.post(reverse("collection:topics"), {"topics": pool[:1]}).status_code == 302
    staff.post(reverse("collection:instructions"))
    task = Task.objects.get(worker=worker)
    # The preview's task was assigned a mode and models, and uses up no quota.
    assert task.mode and task.model_1
    assert Task.objects.quota_live().count() == live_before
    assert {q["name"]: q["used"] for q in selectors.study_monitor(prolific_study, private=True)["mode_quotas"]} \
        == modes_before
    # ... and walks to the end: calibration, three rated turns, the post-task questions.
    pass_calibration(staff, task)
    for q in ("Why is it important?", "How did it start?", "What do critics say?"):
        ask_and_rate(staff, task, q)
    assert staff.post(reverse("collection:api_finish", kwargs={"task_id": task.pk})).status_code == 200
    post = reverse("collection:post_task", args=[task.pk])
    staff.post(post, {"summary": "I learned how it started and what critics say."})
    staff.post(post, {"understand_before": 2, "understand_after": 4})
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        staff.post(post, {"copy_sentence": "Second sentence here.", "feedback": "fine"})
    task.refresh_from_db()
    assert task.status == Task.Status.COMPLETED and Turn.objects.filter(task=task).count() == 3
    assert callbacks == [] and not TaskQC.objects.filter(task=task).exists()  # no QC started
    # A real participant's finished task beside it: it is a candidate, the preview is not.
    real = Task.objects.create(worker=Worker.objects.create(pseudonym="w-real", platform="lab", consent=True),
                               topic=task.topic, mode="pointwise", model_1="demo-a", status="completed")
    Turn.objects.create(task=real, index=0, query="q?", model_1="demo-a", response_1="a", likert_1=4)
    candidates = set(selection_candidates(scope="site").values_list("pk", flat=True))
    assert real.pk in candidates and task.pk not in candidates
    selection = data_selection_create(name="all site", scope="site", require_qc=False, validation=False,
                                      user=researcher)
    assert real.pk in selection.task_ids and task.pk not in selection.task_ids
    assert not selection.tasks().filter(worker__is_preview=True).exists()
    counts = release_export(path=tmp_path / "export", format="parquet")
    assert counts["tasks"] == Task.objects.filter(worker__is_preview=False).count()
    assert worker.pseudonym not in (tmp_path / "export").joinpath("workers.parquet").read_bytes().decode("latin-1")
    # The monitor never shows it: the lab study's figures count the real participant only.
    lab = Study.objects.create(name="lab", platform=Study.Platform.LAB)
    assert task.pk not in set(selectors.study_tasks(lab).values_list("pk", flat=True))
    assert selectors.study_monitor(lab, private=True)["n_tasks"] == 1


def test_a_platform_entry_is_counted_before_any_topic(prolific_study) -> None:
    """The site's own entry service records which study an entry came for, so someone who came
    in and left at the consent page is on the monitor (as entered), and only on their study's."""
    from collection.services import identity
    from collection.services.study import Entry

    entry = Entry(platform="prolific", assignment_id="f" * 24, hit_id=S1, study_id=S1, session_id="f" * 24)
    worker, _ = identity.entry_admit(platform_worker_id="p" * 24, entry=entry)
    recorded = worker.extra["entries"]["f" * 24]
    assert recorded["study"] == S1 and recorded["entered"]
    stages = {s["stage"]: s["n"] for s in selectors.study_monitor(prolific_study, private=False)["stages"]}
    assert stages["entered"] == 1 and sum(stages.values()) == 1
    other = Study.objects.create(name="other", platform=Study.Platform.PROLIFIC, prolific_study_id=S2)
    assert selectors.study_monitor(other, private=False)["n_sessions"] == 0


def test_preview_workers_only_for_staff_and_the_banner_only_for_previews(researcher, plain_user, topics,
                                                                       demo_models) -> None:
    from django.core.exceptions import PermissionDenied

    from collection.services.study import preview_worker_create
    from tests.site.conftest import invitation_url

    with pytest.raises(PermissionDenied):
        preview_worker_create(user=plain_user)
    with pytest.raises(PermissionDenied):
        preview_worker_create(user=None)
    study = Study.objects.create(name="lab", platform=Study.Platform.LAB)
    staff = client_for(researcher)
    staff.post(reverse("crowd:study_monitor", kwargs={"study_id": study.pk}))
    assert "preview-banner" in staff.get(reverse("collection:consent")).content.decode()
    # The same browser then enters as a real participant: no banner, and not a preview worker.
    assert staff.post(invitation_url("lab-real")).status_code == 302
    page = staff.get(reverse("collection:consent")).content.decode()
    assert "preview-banner" not in page and "Information and consent" in page
    assert not Worker.objects.get(platform_worker_id="lab-real").is_preview
