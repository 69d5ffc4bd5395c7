"""The study monitor after a withdrawal (issue 24), on PostgreSQL.

A withdrawn participant is deleted, so they leave every figure of the people in the study
(stages, funnel, calibration, QC). Money committed is the payment record, which a withdrawal keeps:
their submission's reward and their bonus still count (the lab owes or paid them), also after a
Prolific sync has flagged the submission "withdrawn". The page and the JSON endpoint answer 200.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from crowd import selectors
from crowd.models import Assignment, Payment
from crowd.services.platform import assignment_match
from crowd.services.withdrawal import participant_withdraw

from .conftest import client_for
from .test_study_monitor import prolific_study, running  # noqa: F401  (fixtures, used by name)

pytestmark = pytest.mark.django_db


def _stages(figures: dict) -> dict[str, int]:
    return {s["stage"]: s["n"] for s in figures["stages"]}


def _withdraw(worker, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        participant_withdraw(worker=worker, channel="command")


def test_a_withdrawn_participant_leaves_the_figures_but_their_money_stays(
    prolific_study, running, researcher, django_capture_on_commit_callbacks  # noqa: F811
) -> None:
    before = selectors.study_monitor(prolific_study, private=True)
    assert _stages(before)["completed"] == 1 and before["n_sessions"] == 4 and before["n_tasks"] == 3
    assert before["calibration"]["n_attempts"] == 4 and before["qc"]["flag_rate"] == 1.0
    assert before["money"]["total"] == "2.50"

    _withdraw(running["done"].worker, django_capture_on_commit_callbacks)

    after = selectors.study_monitor(prolific_study, private=True)
    assert _stages(after) == {**_stages(before), "completed": 0}
    assert after["n_sessions"] == 3 and after["n_tasks"] == 2
    assert {f["stage"]: f["reached"] for f in after["funnel"]}["completed"] == 0
    assert after["calibration"]["n_attempts"] == 3 and after["calibration"]["n_passed"] == 1
    assert after["qc"]["flags"] == []  # their flagged QC row went with their task
    # the payment record is kept: the reward of their submission and their bonus still count
    money = after["money"]
    assert (money["rewards"], money["bonuses_pending"], money["total"], money["basis"]) == (
        "2.00", "0.50", "2.50", "assignments")
    assert after["pay"]["per_hour"] is None  # no completed session left to time: not a 500

    # a sync after the withdrawal flags the submission; the money committed does not change
    row = Assignment.objects.get(assignment_id="sess-done")
    assignment_match(assignment=row)
    row.save()
    assert row.flags == ["withdrawn"] and row.status == Assignment.Status.REVIEW
    assert selectors.study_monitor(prolific_study, private=True)["money"]["total"] == "2.50"
    assert Payment.objects.filter(assignment=row).count() == 1

    client = client_for(researcher)
    data = client.get(reverse("crowd:study_monitor_data", kwargs={"study_id": prolific_study.pk}))
    assert data.status_code == 200 and data.json()["n_sessions"] == 3
    page = client.get(reverse("crowd:study_monitor", kwargs={"study_id": prolific_study.pk}))
    assert page.status_code == 200


def test_a_withdrawal_mid_study_drops_the_chatter(prolific_study, running, django_capture_on_commit_callbacks):  # noqa: F811
    """The counter case of a stage other than completed: someone chatting withdraws; the chatting
    count drops and the other stages stay."""
    before = _stages(selectors.study_monitor(prolific_study, private=True))
    _withdraw(running["chatting"].worker, django_capture_on_commit_callbacks)
    after = _stages(selectors.study_monitor(prolific_study, private=True))
    assert before["chatting"] == 1 and after == {**before, "chatting": 0}
