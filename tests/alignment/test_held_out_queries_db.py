"""The held-out evaluation queries and SFT records from the database: distinct queries only (two
workers asking the same question is one query), and staff preview sessions are not data."""

from __future__ import annotations

import pytest

from alignment import services  # not its names: pytest would collect ``test_queries`` as a test
from collection.models import Turn, Worker
from tests.support.site_tasks import site_task

pytestmark = pytest.mark.django_db


def test_asking_for_more_queries_than_are_distinct_gives_every_distinct_one() -> None:
    first, second = site_task(name="a", n_turns=3), site_task(name="b", n_turns=2)
    Turn.objects.filter(task=second).update(query="Question 0 about a?")  # the same question twice
    picked = services.test_queries(n=15)
    assert sorted(picked) == ["Question 0 about a?", "Question 1 about a?", "Question 2 about a?"]
    assert len(services.test_queries(n=2)) == 2
    assert first.pk != second.pk


def test_previews_are_neither_held_out_nor_trained_on() -> None:
    site_task(name="real", n_turns=2)
    preview = site_task(name="preview", n_turns=2)
    Worker.objects.filter(pk=preview.worker_id).update(is_preview=True)
    assert not any("preview" in q for q in services.test_queries(n=15))
    assert not any("preview" in r["prompt"] for r in services.sft_records())
    assert any("real" in r["prompt"] for r in services.sft_records())
