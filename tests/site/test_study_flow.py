"""The study flow through the pages and APIs, with the state kept on the server."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from collection.models import CalibrationAttempt, Mode, Task, Turn, Worker
from collection.services import study

from .conftest import centre_points, choose, complete_profile, enter_lab, pass_calibration

pytestmark = pytest.mark.django_db


def answer_all(turn: Turn) -> None:
    study.turn_response_store(turn=turn, side=1, text=f"First answer to {turn.query}. Second sentence here.")
    if turn.task.mode == Mode.PAIRWISE:
        study.turn_response_store(turn=turn, side=2, text=f"Other answer to {turn.query}.")


def ask_and_rate(client: Client, task: Task, query: str) -> Turn:
    r = client.post(reverse("collection:api_turns", kwargs={"task_id": task.pk}), {"query": query},
                    content_type="application/json")
    assert r.status_code == 201, r.content
    turn = Turn.objects.get(pk=r.json()["id"])
    answer_all(turn)
    ratings = {"likert_1": 4}
    if task.mode == Mode.PAIRWISE:
        ratings |= {"likert_2": 3, "preferred": 1}
    elif turn.index > 0:
        ratings["better_than_previous"] = True
    url = reverse("collection:api_turn_rate", kwargs={"task_id": task.pk, "turn_id": turn.pk})
    for name, value in ratings.items():  # one rating per request: each is saved when given
        r = client.post(url, {name: value}, content_type="application/json")
        assert r.status_code == 200, r.content
    return turn


def test_lab_entry_consent_and_demographics_validation(client, topics, demo_models, settings_row):
    settings_row.lab_typed_ids = True  # the typed-id form only exists behind this setting
    settings_row.save()
    r = client.post(reverse("collection:start"), {"worker_id": "  "})
    assert r.status_code == 200 and r.context["form"].errors
    worker = enter_lab(client, "w-7")
    assert worker.pseudonym.startswith("w") and "w-7" not in worker.pseudonym
    assert client.get(reverse("collection:resume")).url == reverse("collection:consent")
    r = client.post(reverse("collection:consent"), {})
    assert "You need to tick this box" in r.content.decode()
    client.post(reverse("collection:consent"), {"consent": "on"})
    base = {"location": "X", "education": "bachelor", "race": "asian", "gender": "female"}
    for age in (17, 123, "abc"):
        r = client.post(reverse("collection:demographics"), {**base, "age": age})
        assert r.status_code == 200 and "age" in r.context["form"].errors
    r = client.post(reverse("collection:demographics"), {**base, "age": 40, "race": "other", "race_other": ""})
    assert "race_other" in r.context["form"].errors
    r = client.post(reverse("collection:demographics"),
                    {**base, "age": 40, "gender": "other", "gender_other": "agender"})
    assert r.status_code == 302
    worker.refresh_from_db()
    assert (worker.age, worker.gender, worker.consent) == (40, "other: agender", True)


def test_returning_worker_skips_profile(client, topics, demo_models):
    enter_lab(client, "again")
    complete_profile(client)
    other = Client()
    enter_lab(other, "again")
    assert other.get(reverse("collection:resume")).url == reverse("collection:topics")


def test_full_pointwise_flow_to_completion_code(client, topics, demo_models, settings_row,
                                                django_capture_on_commit_callbacks):
    settings_row.pairwise_quota = 0
    settings_row.save()
    enter_lab(client)
    complete_profile(client)
    (task,) = choose(client)
    assert task.mode == Mode.POINTWISE and task.model_1 and not task.model_2
    assert client.get(reverse("collection:resume")).url == reverse("collection:calibrate", args=[task.pk])
    pass_calibration(client, task)
    assert client.get(reverse("collection:resume")).url == reverse("collection:chat", args=[task.pk])
    assert client.get(reverse("collection:chat", args=[task.pk])).status_code == 200
    finish = reverse("collection:api_finish", kwargs={"task_id": task.pk})
    ask_and_rate(client, task, "Why is it important?")
    r = client.post(finish)
    assert r.status_code == 409 and r.json()["code"] == "too_few_turns"
    ask_and_rate(client, task, "How did it start?")
    ask_and_rate(client, task, "What do critics say?")
    assert client.get(reverse("collection:done", args=[task.pk])).status_code == 302  # no code before completion
    r = client.post(finish)
    assert r.status_code == 200 and r.json()["status"] == "post_task"
    post = reverse("collection:post_task", args=[task.pk])
    assert client.post(post, {"summary": "short"}).status_code == 200
    assert client.post(post, {"summary": "I learned how it started and what critics say."}).status_code == 302
    assert client.post(post, {"understand_before": 2, "understand_after": 4}).status_code == 302
    r = client.post(post, {"copy_sentence": "Not from any answer at all."})
    assert "not in any of the answers" in r.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(post, {"copy_sentence": "Second sentence here.", "feedback": "fine"})
    assert r.status_code == 302 and r.url == reverse("collection:done", args=[task.pk])
    task.refresh_from_db()
    assert task.status == Task.Status.COMPLETED and len(task.completion_code) >= 16
    # completing a task starts its quality control (crowd app, through collection.signals)
    from crowd.models import TaskQC
    from jobs.models import Job

    job = Job.objects.get(kind="crowd.compute_qc")
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.params["task_ids"] == [task.pk] and TaskQC.objects.filter(task=task).exists()
    page = client.get(r.url).content.decode()
    assert task.completion_code in page


def test_finish_needs_min_seconds_on_the_server(chatting, settings_row):
    client, task = chatting
    task.extra["min_seconds"] = 3600
    task.save()
    for q in ("a?", "b?", "c?"):
        ask_and_rate(client, task, q)
    r = client.post(reverse("collection:api_finish", kwargs={"task_id": task.pk}))
    assert r.status_code == 409 and r.json()["code"] == "too_early"


def test_next_query_needs_ratings_and_errors_are_not_rateable(chatting):
    client, task = chatting
    turns_url = reverse("collection:api_turns", kwargs={"task_id": task.pk})
    r = client.post(turns_url, {"query": "first?"}, content_type="application/json")
    turn = Turn.objects.get(pk=r.json()["id"])
    study.turn_response_store(turn=turn, side=1, error="APIConnectionError: boom")
    if task.mode == Mode.PAIRWISE:
        study.turn_response_store(turn=turn, side=2, text="fine")
    rate = reverse("collection:api_turn_rate", kwargs={"task_id": task.pk, "turn_id": turn.pk})
    r = client.post(rate, {"likert_1": 3}, content_type="application/json")
    assert r.status_code == 409 and r.json()["code"] == "unanswered"
    turn.refresh_from_db()
    assert turn.response_1 == "" and turn.error_1.startswith("APIConnectionError")
    r = client.post(turns_url, {"query": "second?"}, content_type="application/json")
    assert r.status_code == 409 and r.json()["code"] == "unanswered"
    study.turn_response_store(turn=turn, side=1, text="now answered")
    r = client.post(turns_url, {"query": "second?"}, content_type="application/json")
    assert r.status_code == 409 and r.json()["code"] == "unrated"
    r = client.post(rate, {"likert_1": 9}, content_type="application/json")
    assert r.status_code == 400 and "likert_1" in r.json()
    r = client.post(rate, {"likert_1": 5}, content_type="application/json")
    assert r.status_code == 200
    turn.refresh_from_db()
    assert turn.likert_1 == 5 and turn.error_1 == ""  # saved at once, error cleared by the answer


def test_other_workers_tasks_are_not_found(chatting, topics):
    client, task = chatting
    intruder = Client()
    enter_lab(intruder, "intruder")
    complete_profile(intruder)
    urls = [
        reverse("collection:api_task", kwargs={"task_id": task.pk}),
        reverse("collection:api_turns", kwargs={"task_id": task.pk}),
        reverse("collection:api_batches", kwargs={"task_id": task.pk}),
        reverse("collection:api_finish", kwargs={"task_id": task.pk}),
    ]
    assert intruder.get(urls[0]).status_code == 404
    for url in urls[1:]:
        assert intruder.post(url, {}, content_type="application/json").status_code == 404
    assert intruder.get(reverse("collection:chat", args=[task.pk])).status_code == 404
    assert intruder.get(reverse("collection:done", args=[task.pk])).status_code == 404
    assert Client().get(urls[0]).status_code == 403  # no session at all


def test_calibration_attempts_all_stored_and_failing_keeps_calibrating(client, topics, demo_models):
    enter_lab(client)
    complete_profile(client)
    (task,) = choose(client)
    client.get(reverse("collection:calibrate", kwargs={"task_id": task.pk}))
    url = reverse("collection:api_calibration", kwargs={"task_id": task.pk})
    body = {"kind": "calibration", "viewport_w": 1000, "viewport_h": 800, "points": centre_points(err=240)}
    r = client.post(url, body, content_type="application/json")
    assert r.status_code == 201
    # d = 240 px at every target: above the rule's 200 px (the centre score, 100 * (1 - 240/400) = 40,
    # is recorded beside it)
    assert r.json()["score"] == pytest.approx(40.0) and not r.json()["passed"]
    assert r.json()["reason"] == "accuracy" and "accuracy@0" in r.json()["rule"]["failures"]
    task.refresh_from_db()
    assert task.status == Task.Status.CALIBRATING
    body["points"] = centre_points(err=40)
    r = client.post(url, body, content_type="application/json")
    assert r.json()["passed"] and r.json()["score"] == pytest.approx(90.0)
    point = r.json()["points"][1]
    assert point["share_within_radius"] == 1.0 and point["mean_distance"] == pytest.approx(40.0)
    assert point["samples_per_second"] == pytest.approx(1000 / 33, rel=1e-6)
    assert CalibrationAttempt.objects.filter(task=task).count() == 2
    task.refresh_from_db()
    assert task.status == Task.Status.CHATTING and task.calibration_score == pytest.approx(90.0)
    r = client.post(url, body, content_type="application/json")
    assert r.status_code == 409  # no calibration once chatting


def test_calibration_input_validation_names_fields(client, topics, demo_models):
    enter_lab(client)
    complete_profile(client)
    (task,) = choose(client)
    url = reverse("collection:api_calibration", kwargs={"task_id": task.pk})
    r = client.post(url, {"kind": "calibration", "viewport_w": 1000, "viewport_h": "tall",
                          "points": centre_points()}, content_type="application/json")
    assert r.status_code == 400 and "viewport_h" in r.json()
    pts = centre_points()
    pts[0]["samples"][3]["x"] = "left"
    r = client.post(url, {"kind": "calibration", "viewport_w": 1000, "viewport_h": 800, "points": pts},
                    content_type="application/json")
    assert r.status_code == 400 and "points" in r.json()


def test_mturk_preview_entry_and_submit_form(client, topics, demo_models, settings_row):
    r = client.get(reverse("collection:start"), {"assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE", "hitId": "H"})
    assert r.status_code == 200 and "preview" in r.content.decode().lower()
    assert Worker.objects.count() == 0
    bad = client.get(reverse("collection:start"), {"assignmentId": "A1", "hitId": "H1", "workerId": "W1",
                                                   "turkSubmitTo": "https://evil.example"})
    assert bad.status_code == 400
    params = {"assignmentId": "A1", "hitId": "H1", "workerId": "W1",
              "turkSubmitTo": "https://workersandbox.mturk.com"}
    r = client.get(reverse("collection:start"), params)
    assert r.status_code == 302
    complete_profile(client)
    (task,) = choose(client)
    assert (task.assignment_id, task.hit_id) == ("A1", "H1")
    task.status, task.completion_code = Task.Status.COMPLETED, "code-xyz"
    task.save()
    page = client.get(reverse("collection:done", args=[task.pk])).content.decode()
    assert 'action="https://workersandbox.mturk.com/mturk/externalSubmit"' in page
    assert 'name="assignmentId" value="A1"' in page and "code-xyz" in page


def test_prolific_entry_and_redirect(client, topics, demo_models, settings_row):
    settings_row.prolific_completion_url = "https://app.prolific.com/submissions/complete?cc=ABC"
    settings_row.save()
    r = client.get(reverse("collection:start"), {"PROLIFIC_PID": "P1", "STUDY_ID": "S1", "SESSION_ID": "X1"})
    assert r.status_code == 302
    worker = Worker.objects.get(platform="prolific")
    assert worker.platform_worker_id == "P1"
    complete_profile(client)
    (task,) = choose(client)
    task.status, task.completion_code = Task.Status.COMPLETED, "code-p"
    task.save()
    page = client.get(reverse("collection:done", args=[task.pk])).content.decode()
    assert "https://app.prolific.com/submissions/complete?cc=ABC" in page


def test_finished_topics_not_offered_and_pool_shuffled(client, topics, demo_models, settings_row):
    enter_lab(client)
    complete_profile(client)
    (task,) = choose(client)
    task.status = Task.Status.COMPLETED
    task.save()
    r = client.get(reverse("collection:topics"))
    offered = [c[0] for c in r.context["form"].fields["topics"].choices]
    assert task.topic_id not in offered and len(offered) == len(topics) - 1
    r = client.post(reverse("collection:topics"), {"topics": [task.topic_id]})
    assert r.status_code == 200 and Task.objects.count() == 1
    orders = {tuple(study.topic_pool_draw(worker=task.worker)) for _ in range(20)}
    assert len(orders) > 1


def test_assignment_balances_modes_and_models_not_topic_parity(db, topics, demo_models, settings_row):
    workers = [study.worker_get_or_create(platform="lab", platform_worker_id=f"b{i}") for i in range(12)]
    entry = study.Entry(platform="lab")
    tasks = []
    for i, w in enumerate(workers):
        tid = topics[i % 2].pk  # two topics only: parity would give each a single mode
        tasks += study.tasks_create_for_topics(worker=w, topic_ids=[tid], offered=[tid], entry=entry)
    for topic in topics[:2]:
        modes = [t.mode for t in tasks if t.topic_id == topic.pk]
        assert modes.count(Mode.POINTWISE) == modes.count(Mode.PAIRWISE) == 3
    uses = {m.name: 0 for m in demo_models}
    for t in tasks:
        for name in (t.model_1, t.model_2):
            if name:
                uses[name] += 1
        assert t.model_1 != t.model_2
    assert max(uses.values()) - min(uses.values()) <= 1


def test_bullet_instruction_probability_and_flag(chatting, settings_row):
    client, task = chatting
    settings_row.bullet_probability = 1.0
    settings_row.save()
    turn = study.turn_create(task=task, query="Tell me more")
    assert turn.bullet_instruction and turn.query_sent == "Tell me more" + settings_row.bullet_suffix
    assert turn.query == "Tell me more"
    settings_row.bullet_probability = 0.0
    settings_row.save()
    Turn.objects.all().delete()
    turn = study.turn_create(task=task, query="Tell me more")
    assert not turn.bullet_instruction and turn.query_sent == "Tell me more"


def test_idle_session_ends(chatting, settings_row):
    client, task = chatting
    session = client.session
    session["ifllm.seen"] -= settings_row.idle_timeout_s + 5
    session.save()
    r = client.get(reverse("collection:chat", args=[task.pk]))
    assert r.status_code == 302 and r.url == reverse("collection:session_ended")
    assert client.get(reverse("collection:api_task", kwargs={"task_id": task.pk})).status_code == 403
    assert "has ended" in client.get(reverse("collection:session_ended")).content.decode()


def test_second_topic_starts_with_revalidation(client, topics, demo_models, settings_row):
    enter_lab(client)
    complete_profile(client)
    first, second = choose(client, 2)
    pass_calibration(client, first)
    Task.objects.filter(pk=first.pk).update(status=Task.Status.COMPLETED, completion_code="c1")
    assert client.get(reverse("collection:resume")).url == reverse("collection:calibrate", args=[second.pk])
    r = client.get(reverse("collection:calibrate", args=[second.pk]))
    assert r.context["config"]["mode"] == "revalidation"
    page = client.get(reverse("collection:done", args=[first.pk])).content.decode()
    assert "next topic" in page.lower()


def test_csrf_is_enforced_on_study_apis(chatting):
    client, task = chatting
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = client.cookies
    r = strict.post(reverse("collection:api_turns", kwargs={"task_id": task.pk}), {"query": "x"},
                    content_type="application/json")
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
