"""The public id and mode rules live on the models; every export and analysis reads them there."""

from collection.models import Task, Turn


def test_task_public_id_is_the_release_id_else_the_primary_key() -> None:
    assert Task(pk=7, release_task_id=42).public_id == 42
    assert Task(pk=7, release_task_id=0).public_id == 0  # 0 is a release id, not "missing"
    assert Task(pk=7).public_id == 7


def test_turn_public_id_is_the_release_query_id_else_the_primary_key() -> None:
    assert Turn(pk=3, release_query_id=99).public_id == 99
    assert Turn(pk=3).public_id == 3


def test_effective_mode_prefers_the_recorded_mode_then_the_models() -> None:
    assert Task(mode="pointwise", model_2="b").effective_mode == "pointwise"
    assert Task(mode="", model_1="a", model_2="b").effective_mode == "pairwise"
    assert Task(mode="", model_1="a").effective_mode == "pointwise"
    assert (Turn(model_2="b").mode, Turn(model_2="").mode) == ("pairwise", "pointwise")
