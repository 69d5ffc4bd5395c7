"""Leaderboard (pure): Bradley–Terry fit, bootstrap intervals, style control, agreement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from analysis.leaderboard import (
    agreement,
    arena_ranks,
    build_leaderboard,
    clean_model_name,
    explicit_votes,
    fit_bradley_terry,
    fit_logistic,
    implicit_votes,
    style_covariates,
)
from analysis.leaderboard.bradley_terry import ELO_PER_LOGIT
from tests.support.leaderboard_sim import simulate_turns


def planted_scores(strengths: dict[str, float], anchor: str) -> dict[str, float]:
    return {m: 1000 + ELO_PER_LOGIT * (b - strengths[anchor]) for m, b in strengths.items()}


# ----------------------------------------------------------------------------- the fit itself
def test_fit_matches_sklearn_logistic_regression_with_soft_outcomes_and_weights() -> None:
    rng = np.random.default_rng(1)
    n, p = 400, 6
    X = rng.normal(size=(n, p))
    y = rng.random(n)  # soft outcomes (ties are 0.5)
    w = rng.integers(0, 4, n).astype(float)  # bootstrap-like weights
    l2 = 1e-2
    ours = fit_logistic(X, y, w, l2=l2)
    # Standard formulation: each soft row is y of a win and 1 - y of a loss.
    Xd = np.vstack([X, X])
    yd = np.r_[np.ones(n), np.zeros(n)]
    wd = np.r_[w * y, w * (1 - y)]
    ref = LogisticRegression(fit_intercept=False, C=1 / l2, tol=1e-12, max_iter=10_000)
    ref.fit(Xd, yd, sample_weight=wd)
    np.testing.assert_allclose(ours, ref.coef_[0], atol=1e-5)
    # A batch of weightings gives the same as fitting each alone.
    batch = fit_logistic(X, y, np.vstack([w, np.ones(n)]), l2=l2)
    np.testing.assert_allclose(batch[0], ours, atol=1e-9)
    np.testing.assert_allclose(batch[1], fit_logistic(X, y, l2=l2), atol=1e-9)


def test_bradley_terry_scores_match_sklearn_on_votes() -> None:
    turns = simulate_turns({"a": 0.0, "b": 0.5, "c": -0.3}, n_workers=10, per_worker=20, seed=3)
    votes = explicit_votes(turns)
    fit = fit_bradley_terry(votes, rounds=20, anchor="a")
    X = np.zeros((len(votes), 3))
    for k, m in enumerate(["a", "b", "c"]):
        X[:, k] = (votes["model_a"] == m).astype(float) - (votes["model_b"] == m).astype(float)
    ref = LogisticRegression(fit_intercept=False, C=1e3, tol=1e-12, max_iter=10_000).fit(X, votes["outcome"])
    beta = ref.coef_[0]
    expected = 1000 + ELO_PER_LOGIT * (beta - beta[0])
    np.testing.assert_allclose(fit.scores, expected, atol=1e-3)


def test_ties_count_as_half_a_win() -> None:
    votes = explicit_votes(simulate_turns({"a": 0.0, "b": 0.0}, n_workers=5, per_worker=10))
    votes["outcome"] = 0.5
    fit = fit_bradley_terry(votes, rounds=10)
    assert fit.scores == pytest.approx([1000, 1000], abs=1e-6)


# ----------------------------------------------------------------------------- recovery and intervals
def test_planted_strengths_recovered_within_their_intervals() -> None:
    strengths = {"m0": 0.0, "m1": 0.6, "m2": 1.2, "m3": -0.5, "m4": 0.3}
    turns = simulate_turns(strengths, n_workers=60, per_worker=40, seed=7)
    fit = fit_bradley_terry(explicit_votes(turns), anchor="m0", rounds=400)
    truth = planted_scores(strengths, "m0")
    for m, lo, hi in zip(fit.models, fit.lower, fit.upper, strict=True):
        assert lo - 1e-6 <= truth[m] <= hi + 1e-6, (m, truth[m], lo, hi)
    assert list(fit.table()["model"]) == ["m2", "m1", "m4", "m0", "m3"]
    assert fit.lower[fit.models.index("m2")] > fit.upper[fit.models.index("m3")]
    assert fit.ranks[fit.models.index("m2")] == 1


def _mean_width(fit) -> float:
    keep = [i for i, m in enumerate(fit.models) if m != fit.anchor]
    return float(np.mean(fit.upper[keep] - fit.lower[keep]))


def test_worker_bootstrap_is_wider_than_row_bootstrap_when_workers_have_their_own_biases() -> None:
    strengths = {"a": 0.0, "b": 0.4, "c": 0.8, "d": -0.4}
    biased = explicit_votes(simulate_turns(strengths, n_workers=30, per_worker=60, worker_sd=1.2, seed=11))
    by_worker = fit_bradley_terry(biased, resample="worker", rounds=300)
    by_row = fit_bradley_terry(biased, resample="row", rounds=300)
    assert _mean_width(by_worker) > 1.4 * _mean_width(by_row)
    # Control: without worker tastes the two bootstraps agree (so the check above can fail).
    plain = explicit_votes(simulate_turns(strengths, n_workers=30, per_worker=60, worker_sd=0.0, seed=11))
    ratio = _mean_width(fit_bradley_terry(plain, resample="worker", rounds=300)) / _mean_width(
        fit_bradley_terry(plain, resample="row", rounds=300)
    )
    assert 0.75 < ratio < 1.25


def test_style_control_removes_a_planted_length_bias() -> None:
    strengths = {"terse": 0.0, "verbose": 0.0, "plain": 0.0}
    turns = simulate_turns(strengths, n_workers=50, per_worker=40, length_effect=2.0, long_model="verbose", seed=5)
    votes = explicit_votes(turns)
    raw = fit_bradley_terry(votes, anchor="terse", rounds=300)
    styled = fit_bradley_terry(votes, anchor="terse", rounds=300, style_control=True)
    v = raw.models.index("verbose")
    assert raw.lower[v] > 1050  # length passes for quality without control
    assert styled.lower[v] <= 1000 <= styled.upper[v]
    assert abs(styled.scores[v] - 1000) < 40
    length = styled.style.set_index("covariate").loc["length"]
    assert length["lower"] > 0
    others = styled.style.set_index("covariate").drop(index="length")
    assert ((others["lower"] <= 0) & (others["upper"] >= 0)).all()  # nothing planted there


def test_arena_ranks_share_a_rank_while_intervals_overlap() -> None:
    lower = np.array([10.0, 8.0, 1.0, 0.0])
    upper = np.array([12.0, 11.0, 9.0, 2.0])
    # model 2's upper 9 is below model 0's lower 10 (not model 1's 8); model 3 is below 0 and 1.
    assert list(arena_ranks(lower, upper)) == [1, 1, 2, 3]


# ----------------------------------------------------------------------------- sources and agreement
def test_agreement_is_one_when_implicit_votes_equal_explicit_votes() -> None:
    strengths = {"a": 0.0, "b": 0.5, "c": 1.0, "d": -0.5}
    turns = simulate_turns(strengths, n_workers=30, per_worker=30, worker_sd=0.3, seed=2)
    same = pd.DataFrame({"query_id": turns["query_id"], "prob_1": (turns["preferred"] == 1).astype(float)})
    board = build_leaderboard(turns, same, sources=("explicit", "implicit", "mixed"), rounds=200)
    for name in ("implicit", "mixed"):
        ag = board.boards[name].agreement_raw
        assert (ag.tau, ag.lower, ag.upper, ag.swaps) == (1.0, 1.0, 1.0, [])
        np.testing.assert_allclose(board.boards[name].raw.scores, board.boards["explicit"].raw.scores)
    # Reversed votes reverse the ranking: every pair swaps.
    flipped = same.assign(prob_1=1 - same["prob_1"])
    ag = build_leaderboard(turns, flipped, sources=("explicit", "implicit"), rounds=50).boards["implicit"].agreement_raw
    assert ag.tau == -1.0 and len(ag.swaps) == ag.n_pairs == 6


def test_soft_and_hard_implicit_votes_and_mixed_fills_unvoted_turns() -> None:
    turns = simulate_turns({"a": 0.0, "b": 1.0}, n_workers=4, per_worker=10, seed=1)
    turns.loc[:4, "preferred"] = None  # five turns without a worker's vote
    preds = pd.DataFrame({"query_id": turns["query_id"], "prob_1": 0.7})
    assert set(implicit_votes(turns, preds)["outcome"]) == {0.7}
    assert set(implicit_votes(turns, preds, soft=False)["outcome"]) == {1.0}
    board = build_leaderboard(turns, preds, sources=("explicit", "mixed"), rounds=20, style_control=False)
    assert board.boards["explicit"].votes == 35 and board.boards["mixed"].votes == 40


def test_explicit_votes_clean_names_and_drop_what_is_not_a_vote() -> None:
    turns = pd.DataFrame({
        "query_id": [1, 2, 3, 4, 5], "worker": ["w"] * 5,
        "model_1": ["deepseek-ai/\r\nDeepSeek-V3", "x", "x", "x", "x"],
        "model_2": ["gpt-4o-mini ", "deepseek-ai/DeepSeek-V3", "x", "y", "y"],
        "preferred": [2, 1, 1, None, 1], "error_1": ["", "", "", "", "rate limit"], "error_2": [""] * 5,
        "response_1": ["- a\n- b\n**c**", "x", "x", "x", "x"], "response_2": ["plain", "y", "y", "y", "y"],
        "bullet_instruction": [True, False, False, False, False],
    })
    votes = explicit_votes(turns)
    assert list(votes["query_id"]) == [1, 2]  # self-pair, no vote, provider error dropped
    assert list(votes["model_a"]) == ["deepseek-ai/DeepSeek-V3", "x"]
    assert list(votes["model_b"]) == ["gpt-4o-mini", "deepseek-ai/DeepSeek-V3"]
    assert list(votes["outcome"]) == [0.0, 1.0]
    assert (votes.loc[0, "lists_a"], votes.loc[0, "markdown_a"]) == (2, 1)
    assert clean_model_name("Llama 3  70B\n") == "Llama 3 70B"
    with pytest.raises(ValueError, match="preferred"):
        explicit_votes(turns.assign(preferred=[3, 1, 1, 1, 1]))


def test_style_covariates_flip_sign_when_sides_swap() -> None:
    votes = explicit_votes(simulate_turns({"a": 0.0, "b": 0.0}, n_workers=3, per_worker=10))
    swapped = votes.rename(columns={
        "len_a": "len_b", "len_b": "len_a", "lists_a": "lists_b", "lists_b": "lists_a",
        "markdown_a": "markdown_b", "markdown_b": "markdown_a",
    })
    np.testing.assert_allclose(style_covariates(votes).to_numpy(), -style_covariates(swapped).to_numpy())


def test_agreement_needs_paired_rounds() -> None:
    votes = explicit_votes(simulate_turns({"a": 0.0, "b": 0.5, "c": 1.0}, n_workers=5, per_worker=10))
    with pytest.raises(ValueError, match="rounds"):
        agreement(fit_bradley_terry(votes, rounds=10), fit_bradley_terry(votes, rounds=20))


def test_leaderboard_exports_csv_json_and_text() -> None:
    turns = simulate_turns({"a": 0.0, "b": 0.5}, n_workers=5, per_worker=10)
    board = build_leaderboard(turns, rounds=20)
    csv = board.to_csv().splitlines()
    assert csv[0] == "source,control,rank,model,score,lower,upper,votes" and len(csv) == 5
    data = board.as_dict()
    assert {c["covariate"] for c in data["sources"][0]["style_coefficients"]} >= {"length", "lists"}
    assert "Style coefficients" in board.table_text()


def test_a_mixed_source_that_adds_no_votes_says_so_and_implicit_votes_are_marked_predictions() -> None:
    from analysis.leaderboard.board import source_notes

    turns = simulate_turns({"a": 0.0, "b": 1.0}, n_workers=4, per_worker=10, seed=1)
    preds = pd.DataFrame({"query_id": turns["query_id"], "prob_1": 0.7})
    # Every implicit vote on a turn with an explicit vote (the release): mixed IS explicit.
    same = build_leaderboard(turns, preds, sources=("explicit", "implicit", "mixed"), rounds=20, style_control=False)
    assert same.boards["mixed"].added_votes == 0
    entry = {e["source"]: e for e in same.as_dict()["sources"]}
    assert entry["mixed"]["added_votes"] == 0
    assert any("adds no votes" in n and "by construction" in n for n in entry["mixed"]["notes"])
    assert "Agreement with explicit" not in same.table_text().split("Mixed votes")[1]  # τ = 1 is not shown
    assert any("do not include the reward model's own error" in n for n in entry["implicit"]["notes"])
    assert any("another scale" in n for n in entry["implicit"]["notes"])
    assert entry["explicit"]["notes"] == []
    # Must fail the "adds no votes" note: five turns nobody voted on give mixed five votes more.
    turns.loc[:4, "preferred"] = None
    more = build_leaderboard(turns, preds, sources=("explicit", "mixed"), rounds=20, style_control=False)
    assert more.boards["mixed"].added_votes == 5
    notes = more.as_dict()["sources"][1]["notes"]
    assert not any("adds no votes" in n for n in notes) and any("adds 5 implicit votes" in n for n in notes)
    assert source_notes("explicit", None) == []
