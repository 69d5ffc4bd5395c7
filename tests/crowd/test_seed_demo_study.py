"""``manage.py seed_demo_study`` (run by ``seed_demo``, so by ``make run``): a demo Prolific
study whose live monitor, review queue and admin lists show something, made once."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from collection.models import DataSelection, Task, Worker
from crowd import selectors
from crowd.models import Assignment, Study, TaskQC
from crowd.services.qc import task_study

pytestmark = pytest.mark.django_db


def test_the_demo_study_has_people_at_every_stage_qc_and_a_selection() -> None:
    out = StringIO()
    call_command("seed_demo_study", stdout=out)
    study = Study.objects.get(name="Demo Prolific study")
    figures = selectors.study_monitor(study, private=True)
    stages = {row["stage"]: row["n"] for row in figures["stages"]}
    assert all(stages[s] >= 1 for s in ("entered", "consented", "calibrated", "chatting", "post_task",
                                         "completed", "way_out", "abandoned")), stages
    assert stages["completed"] == 3
    selection = DataSelection.objects.get(name="Demo selection")
    done = Task.objects.filter(status="completed", hit_id=study.prolific_study_id)
    assert sorted(selection.task_ids) == sorted(done.values_list("pk", flat=True))
    assert TaskQC.objects.filter(task__in=done, study=study).count() == 3
    flagged = TaskQC.objects.filter(task__in=done, flagged=True)
    assert [q.flags for q in flagged] == [",max_log_gap_s,"]  # one task with a hole in its log; two pass
    assert Assignment.objects.filter(study=study).count() == 3
    assert f"/crowd/review/{selection.pk}/" in out.getvalue()
    # A second run makes nothing new.
    n_workers = Worker.objects.count()
    call_command("seed_demo_study", stdout=StringIO())
    assert Worker.objects.count() == n_workers and Study.objects.filter(name="Demo Prolific study").count() == 1


def test_seed_demo_runs_it() -> None:
    from collection.management.commands import seed_demo

    source = open(seed_demo.__file__, encoding="utf-8").read()
    assert 'call_command("seed_demo_study"' in source


def test_a_prolific_task_belongs_to_its_study_before_its_submission_is_synced() -> None:
    call_command("seed_demo_study", stdout=StringIO())
    study = Study.objects.get(name="Demo Prolific study")
    chatting = Task.objects.get(hit_id=study.prolific_study_id, status="chatting")
    assert not Assignment.objects.filter(task=chatting).exists()
    assert task_study(task=chatting) == study
    chatting.hit_id = "another-study-id"
    assert task_study(task=chatting) is None
