"""The pure agreement module of the review queue: raw agreement, Cohen's kappa, task status."""

from __future__ import annotations

import pytest

from crowd.review_agreement import agreed_decision, agreement, pairwise, task_status


def test_full_agreement_over_two_labels_is_one() -> None:
    a = {1: "keep", 2: "exclude", 3: "keep"}
    result = agreement(a, dict(a))
    assert (result.n, result.n_agree, result.percent) == (3, 3, 1.0)
    assert result.kappa == pytest.approx(1.0)
    assert result.per_task == {1: True, 2: True, 3: True}


def test_full_agreement_on_one_label_has_no_kappa() -> None:
    # Chance alone predicts the agreement: kappa is undefined, not 0 and not 1.
    result = agreement({1: "keep", 2: "keep"}, {1: "keep", 2: "keep"})
    assert result.percent == 1.0 and result.kappa is None


def test_opposite_calls_disagree_everywhere() -> None:
    result = agreement({1: "keep", 2: "exclude"}, {1: "exclude", 2: "keep"})
    assert (result.n, result.n_agree, result.n_disagree, result.percent) == (2, 0, 2, 0.0)
    assert result.kappa == pytest.approx(-1.0)  # p_o = 0, p_e = 1/2
    assert result.per_task == {1: False, 2: False}


def test_kappa_against_a_hand_computed_value() -> None:
    a = {1: "keep", 2: "keep", 3: "exclude", 4: "exclude", 5: "keep", 6: "flag"}
    b = {1: "keep", 2: "exclude", 3: "exclude", 4: "exclude", 5: "keep", 6: "keep"}
    result = agreement(a, b)
    # p_o = 4/6; marginals a (keep 3, exclude 2, flag 1), b (keep 3, exclude 3, flag 0):
    # p_e = (3*3 + 2*3 + 1*0) / 36 = 15/36; kappa = (4/6 - 15/36) / (1 - 15/36) = 9/21 = 3/7.
    assert result.percent == pytest.approx(4 / 6)
    assert result.kappa == pytest.approx(3 / 7)
    assert result.kappa != pytest.approx(result.percent)  # not the raw agreement
    assert [t for t, same in result.per_task.items() if not same] == [2, 6]


def test_only_tasks_both_called_count() -> None:
    result = agreement({1: "keep", 2: "flag", 3: "keep"}, {1: "keep", 4: "exclude"})
    assert (result.n, result.percent) == (1, 1.0)
    empty = agreement({1: "keep"}, {2: "keep"})
    assert (empty.n, empty.percent, empty.kappa, empty.per_task) == (0, None, None, {})


def test_unknown_calls_are_refused() -> None:
    with pytest.raises(ValueError, match="b: unknown call"):
        agreement({1: "keep"}, {1: "maybe"})


def test_pairwise_names_each_pair_with_shared_tasks() -> None:
    calls = [(1, "rita", "keep"), (1, "uma", "exclude"), (2, "rita", "keep"), (2, "uma", "keep"),
             (3, "vic", "flag")]  # vic shares no task with anyone
    pairs = pairwise(calls)
    assert [(a, b, r.n, r.n_agree) for a, b, r in pairs] == [("rita", "uma", 2, 1)]


@pytest.mark.parametrize(("calls", "status", "decision"), [
    ([], "unreviewed", None),
    (["keep"], "keep", "keep"),
    (["exclude", "exclude"], "exclude", "exclude"),
    (["keep", "exclude"], "disputed", None),
    (["flag"], "flagged", None),
    (["keep", "flag"], "flagged", "keep"),
    (["keep", "exclude", "flag"], "disputed", None),
])
def test_task_status_and_agreed_decision(calls: list[str], status: str, decision: str | None) -> None:
    assert task_status(calls) == status
    assert agreed_decision(calls) == decision
