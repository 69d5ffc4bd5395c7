"""The review queue on PostgreSQL: who may look and call, bad input, two reviewers' calls, and how
calls change the task's decision (services.review and the queue's views)."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from collection.models import DataSelection, Task
from crowd import services
from crowd.models import ReviewCall, TaskQC
from crowd.qc import THRESHOLD_NAMES
from tests.support.site_tasks import site_task

from .conftest import _user, client_for

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def uma(db: None) -> User:
    """A second researcher."""
    return _user("uma", staff=True, group="researcher")


@pytest.fixture
def queue(db: None) -> DataSelection:
    """Three site tasks with QC figures, all kept by a selection without thresholds."""
    tasks = [site_task(name=f"q{n}", n_turns=2) for n in range(3)]
    turn = tasks[0].turns.get(index=0)
    turn.response_1 = "A **bold** claim.\n\n- one\n- two\n\n<script>alert(1)</script>"
    turn.save(update_fields=["response_1"])
    for task in tasks:
        services.task_qc_compute(task=task)
    return services.data_selection_create(
        name="queue", thresholds=dict.fromkeys(THRESHOLD_NAMES), require_qc=False, validation=False,
    )


def _page(selection: DataSelection, **query: str) -> str:
    url = reverse("crowd:review_queue", args=[selection.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def _call_url(selection: DataSelection) -> str:
    return reverse("crowd:review_queue", args=[selection.pk])


def _tasks(selection: DataSelection) -> list[int]:
    return sorted(selection.task_ids)


# --------------------------------------------------------------------------- who may look, who may call
def test_non_staff_are_sent_to_login_and_staff_without_a_role_refused(queue, plain_user, staff_no_role) -> None:
    for client in (client_for(None), client_for(plain_user)):
        response = client.get(_page(queue))
        assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
        post = client.post(_call_url(queue), {"task": _tasks(queue)[0], "call": "keep"})
        assert post.status_code == 302
    roleless = client_for(staff_no_role)
    assert roleless.get(_page(queue)).status_code == 403
    assert roleless.post(_call_url(queue), {"task": _tasks(queue)[0], "call": "keep"}).status_code == 403
    assert not ReviewCall.objects.exists()


def test_a_viewer_sees_the_queue_but_a_call_is_403(queue, viewer, researcher) -> None:
    client = client_for(viewer)
    page = client.get(_page(queue))
    assert page.status_code == 200
    html = page.content.decode()
    assert "1 of 3" in html and 'id="rq-form"' not in html and "crowd.review_task" in html
    task = _tasks(queue)[0]
    plain = client.post(_call_url(queue), {"task": task, "call": "keep"})
    assert plain.status_code == 403 and "text/html" in plain["Content-Type"]
    assert 'id="rq-errors"' in plain.content.decode() and "crowd.review_task" in plain.content.decode()
    refused = client.post(_call_url(queue), {"task": task, "call": "keep"}, **JSON)
    assert refused.status_code == 403 and "crowd.review_task" in refused.json()["errors"]["__all__"][0]
    assert not ReviewCall.objects.exists()
    # The same POST by a researcher is accepted (the refusal above is the permission, not the input).
    assert client_for(researcher).post(_call_url(queue), {"task": task, "call": "keep"}).status_code == 302
    assert ReviewCall.objects.count() == 1


def test_the_service_checks_the_permission_and_wants_a_person(queue, viewer) -> None:
    task = Task.objects.get(pk=_tasks(queue)[0])
    with pytest.raises(PermissionDenied):
        services.review_call_save(task=task, call="keep", user=viewer)
    with pytest.raises(services.CrowdError, match="logged-in reviewer"):
        services.review_call_save(task=task, call="keep", user=None)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("data", "field"), [
    ({"call": "exclude", "reason": "bogus"}, "reason"),
    ({"call": "exclude"}, "reason"),
    ({"call": "maybe"}, "call"),
    ({"call": "keep", "task": "abc"}, "task"),
    ({"call": "keep", "task": "999999"}, "task"),  # not in this queue
    ({"call": "keep", "only": "everything"}, "only"),
])
def test_bad_input_is_a_400_naming_the_field(queue, researcher, data: dict, field: str) -> None:
    client = client_for(researcher)
    body = {"task": _tasks(queue)[0], **data}
    plain = client.post(_call_url(queue), body)
    assert plain.status_code == 400 and "text/html" in plain["Content-Type"]
    html = plain.content.decode()
    # The queue page again, the message beside the field (reason) or above the form (the rest).
    assert 'id="rq-position"' in html
    assert (f'id="rq-error-{field}"' if field == "reason" else 'id="rq-errors"') in html
    fetched = client.post(_call_url(queue), body, **JSON)
    assert fetched.status_code == 400 and list(fetched.json()["errors"]) == [field]
    assert not ReviewCall.objects.exists()


def test_a_refused_plain_call_shows_the_same_task_with_the_message_and_what_was_typed(queue, researcher) -> None:
    client = client_for(researcher)
    first, second, _ = _tasks(queue)
    refused = client.post(_call_url(queue), {"task": second, "call": "exclude", "note": "camera <froze>",
                                             "turn": "1"})
    assert refused.status_code == 400
    html = refused.content.decode()
    assert "2 of 3" in html and f'name="task" value="{second}"' in html  # the same task, not the first
    assert 'id="rq-error-reason"' in html and "Reason: an exclusion needs a reason" in html
    assert 'aria-invalid="true"' in html and 'value="camera &lt;froze&gt;"' in html  # the note kept, escaped
    assert 'name="turn" value="1"' in html  # the same turn's replay
    # A bad reason keeps the queue's filter and names the field; a good call after it goes on as usual.
    bad = client.post(_call_url(queue), {"task": first, "call": "exclude", "reason": "bogus", "only": "unreviewed"})
    again = bad.content.decode()
    assert bad.status_code == 400 and "1 of 3" in again and 'id="rq-error-reason"' in again
    assert 'name="only" value="unreviewed"' in again
    ok = client.post(_call_url(queue), {"task": second, "call": "exclude", "reason": "technical"})
    assert ok.status_code == 302 and 'rq-error' not in client.get(ok["Location"]).content.decode()
    # A task outside the queue: the first task, the message above the form.
    outside = client.post(_call_url(queue), {"task": "999999", "call": "keep"})
    assert outside.status_code == 400 and "1 of 3" in outside.content.decode()
    assert "Task:</strong> task 999999 is not in this queue" in outside.content.decode()


def test_the_service_refuses_bad_values_naming_the_field(queue, researcher) -> None:
    task = Task.objects.get(pk=_tasks(queue)[0])
    with pytest.raises(ValueError, match="^reason: an exclusion needs a reason"):
        services.review_call_save(task=task, call="exclude", user=researcher)
    with pytest.raises(ValueError, match="^call: "):
        services.review_call_save(task=task, call="drop", user=researcher)
    row = services.review_call_save(task=task, call="keep", reason="other", user=researcher)
    assert row.reason == ""  # a keep has no reason


# --------------------------------------------------------------------------- calls and decisions
def test_a_keep_applies_and_the_queue_moves_on(queue, researcher) -> None:
    client = client_for(researcher)
    first, second, _ = _tasks(queue)
    response = client.post(_call_url(queue), {"task": first, "call": "keep", "note": "reads well"})
    assert response.status_code == 302 and response["Location"] == _page(queue, i="2")
    qc = TaskQC.objects.get(task_id=first)
    assert (qc.decision, qc.decided_by, qc.note) == ("keep", researcher, "review queue; reads well")
    answer = client.post(_call_url(queue), {"task": second, "call": "exclude", "reason": "copied_summary"}, **JSON)
    assert answer.status_code == 200
    assert answer.json() == {"call": "exclude", "reason": "copied_summary", "task": second, "status": "exclude",
                             "next_url": _page(queue, i="3")}
    assert Task.objects.get(pk=second).excluded
    assert TaskQC.objects.get(task_id=second).note == "review queue: Copied summary"


def test_changing_a_call_replaces_it(queue, researcher) -> None:
    task = Task.objects.get(pk=_tasks(queue)[0])
    services.review_call_save(task=task, call="exclude", reason="not_reading", user=researcher)
    services.review_call_save(task=task, call="keep", user=researcher)
    assert list(ReviewCall.objects.values_list("call", flat=True)) == ["keep"]
    assert not Task.objects.get(pk=task.pk).excluded  # the one reviewer changed their mind


def test_a_flag_decides_nothing(queue, researcher) -> None:
    task = Task.objects.get(pk=_tasks(queue)[0])
    services.review_call_save(task=task, call="flag", reason="calibration_drift", user=researcher)
    assert TaskQC.objects.get(task=task).decision == "" and not Task.objects.get(pk=task.pk).excluded
    services.review_call_save(task=task, call="exclude", reason="calibration_drift", user=researcher)
    services.review_call_save(task=task, call="flag", user=researcher)  # back to "look again": stays excluded
    assert Task.objects.get(pk=task.pk).excluded


def test_two_reviewers_calls_are_both_kept_and_a_dispute_keeps_the_first_decision(queue, researcher, uma) -> None:
    first, second, third = (Task.objects.get(pk=pk) for pk in _tasks(queue))
    services.review_call_save(task=first, call="exclude", reason="copied_summary", user=researcher)
    services.review_call_save(task=first, call="keep", user=uma)
    services.review_call_save(task=second, call="keep", user=researcher)
    services.review_call_save(task=second, call="keep", user=uma)
    services.review_call_save(task=third, call="flag", user=uma)
    assert sorted(ReviewCall.objects.filter(task=first).values_list("reviewer__username", "call")) == [
        ("rita", "exclude"), ("uma", "keep")]
    qc = TaskQC.objects.get(task=first)
    assert Task.objects.get(pk=first.pk).excluded and (qc.decision, qc.decided_by) == ("exclude", researcher)

    html = client_for(uma).get(_page(queue)).content.decode()
    assert "disputed" in html and "✗ differs from yours" in html
    assert "Copied summary" in html
    # Header: rita and uma share two tasks and agree on one: 50 %, kappa with n = 2.
    assert "<strong>rita</strong> vs <strong>uma</strong>" in html
    assert "50% agree" in html and "(1 of n = 2)" in html
    disputed = client_for(uma).get(_page(queue, only="disputed")).content.decode()
    assert "1 of 1" in disputed and f'href="/crowd/task/{first.pk}/"' in disputed
    assert "disputed (1)" in disputed and "flagged by a reviewer (1)" in disputed

    # Resolved: rita changes her call to keep; both agree, the task is kept.
    services.review_call_save(task=first, call="keep", user=researcher)
    assert not Task.objects.get(pk=first.pk).excluded and TaskQC.objects.get(task=first).decision == "keep"
    page = client_for(uma).get(_page(queue)).content.decode()
    assert "✓ agrees with you" in page and "100% agree" in page and "κ = undefined" in page


def test_not_called_by_you_narrows_per_reviewer_and_the_next_task_is_found_by_task(queue, researcher, uma) -> None:
    first, second, third = _tasks(queue)
    services.review_call_save(task=Task.objects.get(pk=first), call="keep", user=uma)
    rita = client_for(researcher)
    assert "1 of 3" in rita.get(_page(queue, only="unreviewed")).content.decode()  # uma's call is hers
    response = rita.post(_call_url(queue), {"task": first, "call": "keep", "only": "unreviewed"})
    # The first task left the filtered queue: the next task is now number 1 of 2.
    assert response["Location"] == _page(queue, only="unreviewed", i="1")
    html = rita.get(response["Location"]).content.decode()
    assert "1 of 2" in html and f'name="task" value="{second}"' in html


# --------------------------------------------------------------------------- what the page shows
def test_the_page_shows_ratings_rendered_answers_qc_marks_and_the_replay(queue, researcher) -> None:
    html = client_for(researcher).get(_page(queue)).content.decode()
    assert "1 of 3" in html and "Choices and ratings" in html
    assert "<strong>bold</strong>" in html and "<li>one</li>" in html  # Markdown rendered
    assert "<script>alert(1)</script>" not in html  # ... and safely
    assert 'id="replay-data"' in html and "crowd/replay.mjs" in html and "crowd/review_queue.mjs" in html
    assert "✓" in html  # a figure passing its threshold
    data = json.loads(html.split('id="replay-data" type="application/json">')[1].split("</script>")[0])
    assert data["boxes"][0]["text"].startswith("A **bold** claim.")
    end = client_for(researcher).get(_page(queue, i="4")).content.decode()
    assert "end of queue (3 tasks)" in end and "Back to the first task" in end


def test_a_failed_threshold_is_marked(queue, researcher) -> None:
    qc = TaskQC.objects.get(task_id=_tasks(queue)[0])
    qc.thresholds = {**qc.thresholds, "min_calibration_score": 95.0}
    qc.reasons = [{"code": "calibration_score", "message": "calibration 80 < 95"}]
    qc.flagged, qc.flags = True, ",calibration_score,"
    qc.save()
    html = client_for(researcher).get(_page(queue)).content.decode()
    assert '<span class="bad" title="fails">✗</span>' in html and "&gt;= 95.0" in html
    assert f"flagged by QC ({TaskQC.objects.filter(flagged=True).count()})" in html


def test_the_queue_is_linked_from_the_selection_pages_and_the_index(queue, researcher) -> None:
    client = client_for(researcher)
    url = _page(queue)
    assert url in client.get(reverse("admin:collection_dataselection_change", args=[queue.pk])).content.decode()
    assert url in client.get(reverse("admin:collection_dataselection_changelist")).content.decode()
    assert url in client.get(reverse("crowd:index")).content.decode()


def test_a_queue_over_the_tasks_left_out_and_an_unknown_one(queue, researcher) -> None:
    left = DataSelection.objects.create(name="strict", task_ids=_tasks(queue)[:1],
                                        left_out=[{"task": t, "worker": "w", "task_id": t, "reasons": ["x"]}
                                                  for t in _tasks(queue)[1:]] + [{"task": 10**9, "reasons": []}])
    assert services.review_queue_task_ids(selection=left, over="left_out") == _tasks(queue)[1:]  # gone task dropped
    assert services.review_queue_task_ids(selection=left, over="all") == _tasks(queue)
    with pytest.raises(ValueError, match="^over: "):
        services.review_queue_task_ids(selection=left, over="everything")
    html = client_for(researcher).get(_page(left, over="left_out")).content.decode()
    assert "1 of 2" in html and f'name="task" value="{_tasks(queue)[1]}"' in html


def test_the_review_calls_admin_lists_calls_read_only(queue, researcher, viewer) -> None:
    services.review_call_save(task=Task.objects.get(pk=_tasks(queue)[0]), call="flag", user=researcher)
    listing = client_for(viewer).get(reverse("admin:crowd_reviewcall_changelist"))
    assert listing.status_code == 200 and "Flag (needs another look)" in listing.content.decode()
    assert client_for(researcher).get(reverse("admin:crowd_reviewcall_add")).status_code == 403


def test_a_queue_over_release_tasks_replays_them_through_the_matching(mini_release, researcher) -> None:
    tasks = Task.objects.filter(release_task_id__isnull=False, chunks__isnull=False).distinct().order_by("pk")[:2]
    for task in tasks:
        services.task_qc_compute(task=task)
    selection = DataSelection.objects.create(name="release", task_ids=[t.pk for t in tasks])
    client = client_for(researcher)
    response = client.get(_page(selection))
    assert response.status_code == 200
    html = response.content.decode()
    assert "1 of 2" in html and 'id="replay-data"' in html
    n_samples = int(html.split(" samples linked to this turn")[0].rsplit("— ", 1)[1])
    assert n_samples > 0  # the release's samples reach the queue's replay
    client.post(_page(selection), {"task": tasks[0].pk, "call": "exclude", "reason": "not_reading"})
    assert Task.objects.get(pk=tasks[0].pk).excluded


def test_a_queue_over_the_tasks_qc_flagged(queue, researcher) -> None:
    first, second, third = _tasks(queue)
    TaskQC.objects.filter(task_id=second).update(flagged=False, flags="", reasons=[])
    TaskQC.objects.filter(task_id=third).update(flagged=True, flags=",calibration_score,")
    TaskQC.objects.filter(task_id=first).update(flagged=True, flags=",time_on_task_s,")
    client = client_for(researcher)
    url = reverse("crowd:review_queue_qc")
    html = client.get(url).content.decode()
    assert "1 of 2" in html and f'name="task" value="{first}"' in html and "QC-flagged tasks" in html
    narrowed = client.get(url + "?flag=calibration_score").content.decode()
    assert "1 of 1" in narrowed and f'name="task" value="{third}"' in narrowed
    assert '<input type="hidden" name="flag" value="calibration_score">' in narrowed
    response = client.post(url, {"task": third, "call": "flag", "flag": "calibration_score"})
    assert response["Location"] == url + "?flag=calibration_score&i=2"  # past the end of a one-task queue
    assert ReviewCall.objects.get(task_id=third).selection is None
    refused = client.post(url, {"task": second, "call": "keep"})  # QC passed it: not in this queue
    assert refused.status_code == 400 and f"task {second} is not in this queue" in refused.content.decode()
    bad = client.post(url, {"task": first, "call": "keep", "flag": "nonsense"}, **JSON)
    assert bad.status_code == 400 and list(bad.json()["errors"]) == ["flag"]
    assert url in client.get(reverse("crowd:index")).content.decode()


def test_the_database_holds_one_call_per_reviewer_and_task_and_no_exclusion_without_reason(queue, researcher) -> None:
    from django.db import IntegrityError, transaction

    task = Task.objects.get(pk=_tasks(queue)[0])
    ReviewCall.objects.create(task=task, reviewer=researcher, call="keep")
    with pytest.raises(IntegrityError), transaction.atomic():
        ReviewCall.objects.create(task=task, reviewer=researcher, call="flag")
    with pytest.raises(IntegrityError), transaction.atomic():
        ReviewCall.objects.create(task=Task.objects.get(pk=_tasks(queue)[1]), reviewer=researcher, call="exclude")
    ReviewCall.objects.create(task=Task.objects.get(pk=_tasks(queue)[1]), reviewer=researcher, call="exclude",
                              reason="technical")
    assert ReviewCall.objects.count() == 2


def test_the_qc_counts_are_in_words_and_word_values_are_shown(queue, researcher) -> None:
    html = client_for(researcher).get(_page(queue)).content.decode()
    assert "time on task measured from" in html and "calibration validation" in html
    assert "tail gap s" not in html and "n gaze samples" not in html
    row = html.split("time on task measured from", 1)[1].split("</tr>", 1)[0]
    assert "task start to finish" in row or "first to last sample" in row  # not an empty cell
    validation = html.split("calibration validation", 1)[1].split("</tr>", 1)[0]
    assert any(word in validation for word in ("passed", "failed", "not run")) and ">1<" not in validation
