"""Issue 20, item 11: what the worker is told and asked, and open tasks whose worker left.

Each rule has a case that must pass and one that must fail: the copy-a-sentence rule, the
instructions' click count and validation wording (from the settings), the topic page's time per
topic, demo answers without a model name, and the expiry of idle open tasks (which then stop
counting in the quota balance) while an active task stays open.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from collection.llm.clients import DemoClient
from collection.models import LLMModel, Mode, Task, TrajectoryChunk
from collection.sentences import copy_problem, split_sentences
from collection.services import study

from .conftest import choose, complete_profile, enter_lab, pass_calibration

ANSWER = ("The printing press spread quickly in Europe. It made books cheaper, e.g. bibles and pamphlets. "
          "Literacy rose as a result!\n- Ideas moved faster.\n- Censors could not keep up.")


# --- copy a sentence --------------------------------------------------------------------------------


def test_sentences_split_at_full_stops_and_lines_not_abbreviations():
    assert split_sentences(ANSWER) == [
        "The printing press spread quickly in Europe.",
        "It made books cheaper, e.g. bibles and pamphlets.",
        "Literacy rose as a result!",
        "- Ideas moved faster.",
        "- Censors could not keep up.",
    ]


@pytest.mark.parametrize("copy", [
    "It made books cheaper, e.g. bibles and pamphlets.",
    "It made  books cheaper,\n e.g. bibles and pamphlets",  # white space and end punctuation may differ
    "Ideas moved faster.",
    "The printing press spread quickly",  # most of the sentence
])
def test_one_sentence_is_accepted(copy):
    assert copy_problem(copy, [ANSWER]) is None


@pytest.mark.parametrize(("copy", "problem"), [
    (ANSWER, "several"),  # the whole answer
    ("The printing press spread quickly in Europe. It made books cheaper", "several"),
    ("Ideas moved faster. - Censors could not keep up.", "several"),  # two bullet points
    ("quickly in", "fragment"),
    ("A sentence from nowhere at all.", "not_found"),
    ("It", "short"),
])
def test_whole_answers_fragments_and_inventions_are_refused(copy, problem):
    assert copy_problem(copy, [ANSWER]) == problem


@pytest.mark.django_db
def test_post_task_page_refuses_a_whole_answer_and_takes_one_sentence(client, topics, demo_models, settings_row):
    settings_row.pairwise_quota = 0
    settings_row.min_turns = 1
    settings_row.save()
    enter_lab(client)
    complete_profile(client)
    (task,) = choose(client)
    pass_calibration(client, task)
    turn = study.turn_create(task=task, query="Why?")
    study.turn_response_store(turn=turn, side=1, text=ANSWER)
    study.turn_rate(turn=turn, ratings={"likert_1": 4})
    study.task_chat_finish(task=task)
    post = reverse("collection:post_task", args=[task.pk])
    client.post(post, {"summary": "It is about how printing changed Europe."})
    client.post(post, {"understand_before": 2, "understand_after": 4})
    r = client.post(post, {"copy_sentence": ANSWER})
    assert r.status_code == 200 and "only one sentence" in r.content.decode()
    task.refresh_from_db()
    assert task.status == Task.Status.POST_TASK and not task.copy_sentence
    r = client.post(post, {"copy_sentence": "It made books cheaper, e.g. bibles and pamphlets."})
    assert r.status_code == 302
    task.refresh_from_db()
    assert task.status == Task.Status.COMPLETED
    assert task.copy_sentence == "It made books cheaper, e.g. bibles and pamphlets."


# --- what the pages say -----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("clicks", [1, 3, 5])
def test_instructions_say_the_configured_clicks_and_the_moving_dot(client, topics, demo_models, settings_row, clicks):
    settings_row.calibration_clicks_per_point = clicks
    settings_row.save()
    enter_lab(client)
    complete_profile(client)
    choose(client)
    page = client.get(reverse("collection:instructions")).content.decode()
    assert "five times" not in page
    if clicks == 1:
        assert "click each red dot while looking" in page
    else:
        assert f"click each red dot {clicks} times" in page
    assert "moves to a few other places" in page and "until it disappears" not in page


@pytest.mark.django_db
def test_topic_page_says_each_topic_adds_the_minimum_chat(client, topics, demo_models, settings_row):
    settings_row.min_turns, settings_row.min_seconds = 4, 300
    settings_row.save()
    enter_lab(client)
    complete_profile(client)
    page = client.get(reverse("collection:topics")).content.decode()
    assert "Each topic you pick is a chat of its own: at least 4 questions and at least 5 minutes" in page
    settings_row.min_turns, settings_row.min_seconds = 2, 60
    settings_row.save()
    page = client.get(reverse("collection:topics")).content.decode()
    assert "at least 2 questions and at least 1 minute of chatting" in page and "5 minutes" not in page


def test_demo_answers_do_not_name_their_model():
    messages = [{"role": "user", "content": "Why is the sky blue?"}]
    for model_id in ("demo-a", "demo-b", "gpt-demo"):
        text = DemoClient(LLMModel(name=model_id, provider="demo", model_id=model_id)).answer(messages)
        assert model_id not in text and "demo" not in text
    a, b = (DemoClient(LLMModel(name=m, provider="demo", model_id=m)).answer(messages) for m in ("demo-a", "demo-b"))
    assert a != b  # still two different models to compare


# --- open tasks whose worker left ---------------------------------------------------------------------


def _age(task: Task, seconds: float) -> None:
    """Pretend every sign of life of the task happened ``seconds`` ago."""
    then = timezone.now() - timedelta(seconds=seconds)
    Task.objects.filter(pk=task.pk).update(started_at=then, chat_started_at=then, last_seen_at=then)
    task.calibration_attempts.update(created_at=then)
    task.turns.update(asked_at=then, answered_at=then, rated_at=then)
    TrajectoryChunk.objects.filter(task=task).update(received_at=then)


@pytest.mark.django_db
def test_idle_open_task_expires_and_leaves_the_quota_balance(client, topics, demo_models, settings_row):
    settings_row.open_task_expire_s = 3600
    settings_row.pairwise_quota = 1  # one pairwise task fills the quota
    settings_row.pointwise_quota = 1
    settings_row.save()
    entry = study.Entry(platform="lab")
    left, active = (study.worker_get_or_create(platform="lab", platform_worker_id=w) for w in ("left", "active"))
    (gone,) = study.tasks_create_for_topics(worker=left, topic_ids=[topics[0].pk], offered=[topics[0].pk], entry=entry)
    (here,) = study.tasks_create_for_topics(worker=active, topic_ids=[topics[1].pk], offered=[topics[1].pk],
                                            entry=entry)
    assert {gone.mode, here.mode} == {Mode.POINTWISE, Mode.PAIRWISE}
    _age(gone, 3700)  # idle past the timeout
    _age(here, 3700)
    Task.objects.filter(pk=here.pk).update(status=Task.Status.CHATTING)  # (as if calibrated long ago)
    turn = study.turn_create(task=Task.objects.get(pk=here.pk), query="Still here?")  # ... but active now
    assert turn.asked_at is not None

    assert study.tasks_expire_idle() == [gone.pk]
    gone.refresh_from_db()
    here.refresh_from_db()
    assert gone.status == Task.Status.ABANDONED and gone.extra["expired"]["after_s"] == 3600
    assert here.status in study.OPEN_STATUSES
    assert study.tasks_expire_idle() == []  # idempotent

    # The freed quota is offered again: a third worker gets the abandoned task's mode.
    newcomer = study.worker_get_or_create(platform="lab", platform_worker_id="new")
    (new,) = study.tasks_create_for_topics(worker=newcomer, topic_ids=[topics[2].pk], offered=[topics[2].pk],
                                           entry=entry)
    assert new.mode == gone.mode


@pytest.mark.django_db
def test_topic_choice_sweeps_before_balancing_and_activity_keeps_tasks(client, topics, demo_models, settings_row):
    settings_row.open_task_expire_s = 3600
    settings_row.save()
    entry = study.Entry(platform="lab")
    w = study.worker_get_or_create(platform="lab", platform_worker_id="w")
    (idle,) = study.tasks_create_for_topics(worker=w, topic_ids=[topics[0].pk], offered=[topics[0].pk], entry=entry)
    _age(idle, 3500)  # not yet past the timeout
    other = study.worker_get_or_create(platform="lab", platform_worker_id="o")
    study.tasks_create_for_topics(worker=other, topic_ids=[topics[1].pk], offered=[topics[1].pk], entry=entry)
    idle.refresh_from_db()
    assert idle.status == Task.Status.CHOSEN
    _age(idle, 3700)
    study.tasks_create_for_topics(worker=other, topic_ids=[topics[2].pk], offered=[topics[2].pk], entry=entry)
    idle.refresh_from_db()
    assert idle.status == Task.Status.ABANDONED  # swept where the quotas are balanced

    # A page view of the task counts as activity; with expiry off nothing expires.
    enter_lab(client, "viewer")
    complete_profile(client)
    (task,) = choose(client)
    _age(task, 3700)
    client.get(reverse("collection:calibrate", args=[task.pk]))
    assert study.tasks_expire_idle() == []
    _age(task, 3700)
    settings_row.open_task_expire_s = 0
    settings_row.save()
    assert study.tasks_expire_idle() == []
    settings_row.open_task_expire_s = 3600
    settings_row.save()
    call_command("expire_open_tasks")
    task.refresh_from_db()
    assert task.status == Task.Status.ABANDONED
    # The worker who left finds the topic offered again, and no open task.
    assert client.get(reverse("collection:resume")).url == reverse("collection:topics")
