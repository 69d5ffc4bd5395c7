"""Bradley–Terry strengths as a logistic regression, with bootstrap intervals and Arena ranks.

P(a beats b) = σ(β_a − β_b + γ·s), with s the style differences of the two answers (optional).
That is a logistic regression without intercept on a design row holding +1 in a's column, −1 in
b's and the style covariates; a tie or a soft vote is a fractional outcome y ∈ [0, 1], whose
log-likelihood y·log p + (1 − y)·log(1 − p) equals counting it as y of a win and 1 − y of a loss
(Arena duplicates tied rows for the same effect). Strengths are shown on the Elo-like scale
of Chatbot Arena: score = anchor_score + 400/ln 10 · (β − β_anchor).

Why our own solver and not ``sklearn.linear_model.LogisticRegression``: a bootstrap needs
hundreds of fits, and one sklearn fit of the dev release takes ≈ 10 ms here, so 1 000 rounds take
≈ 10 s per source. Every bootstrap round is the same design with other row weights, so one Newton
iteration can solve all rounds at once with a batched linear solve (about 0.3 s for 1 000
rounds). The tests check the fit against sklearn's LogisticRegression on the same problem.

A light ridge (``l2``, i.e. sklearn's ``C = 1/l2``) keeps the fit finite when a model never loses
in a resample, and picks the mean-zero solution of the strengths (they are only defined up to a
constant, which the anchor then fixes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import expit

from .votes import style_covariates

SCALE = 400.0
BASE = 10.0
ANCHOR_SCORE = 1000.0
ELO_PER_LOGIT = SCALE / np.log(BASE)


def model_design(votes: pd.DataFrame, models: Sequence[str]) -> np.ndarray:
    """(n_votes, n_models) matrix: +1 in model_a's column, −1 in model_b's."""
    index = {m: i for i, m in enumerate(models)}
    n = len(votes)
    X = np.zeros((n, len(models)))
    rows = np.arange(n)
    X[rows, votes["model_a"].map(index).to_numpy(dtype=int)] += 1.0
    X[rows, votes["model_b"].map(index).to_numpy(dtype=int)] -= 1.0
    return X


def fit_logistic(
    X: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None, *, l2: float = 1e-3,
    tol: float = 1e-10, max_iter: int = 100,
) -> np.ndarray:
    """Ridge logistic regression without intercept for a batch of row weightings.

    Minimises Σ_i w_bi·[−y_i log σ(x_i·β_b) − (1 − y_i) log(1 − σ(x_i·β_b))] + l2/2·|β_b|² for
    every row ``b`` of ``weights`` (shape (B, n); a 1-D array is one weighting; None = all 1) by
    Newton's method on all B problems together. Returns β of shape (B, p) (or (p,) for 1-D).
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n, p = X.shape
    single = weights is None or np.ndim(weights) == 1
    W = np.ones((1, n)) if weights is None else np.atleast_2d(np.asarray(weights, dtype=float))
    XX = (X[:, :, None] * X[:, None, :]).reshape(n, p * p)
    ridge = l2 * np.eye(p)
    beta = np.zeros((W.shape[0], p))
    for _ in range(max_iter):
        mu = expit(beta @ X.T)
        grad = (W * (y - mu)) @ X - l2 * beta
        hess = ((W * mu * (1.0 - mu)) @ XX).reshape(-1, p, p) + ridge
        step = np.linalg.solve(hess, grad[:, :, None])[:, :, 0]
        # Near-separation (a model that never loses in a resample) makes the first steps huge;
        # clipping keeps Newton monotone there and is inactive near the optimum.
        step = np.clip(step, -4.0, 4.0)
        beta += step
        if np.max(np.abs(step)) < tol:
            break
    return beta[0] if single else beta


def bootstrap_weights(
    groups: np.ndarray, universe: Sequence, rounds: int, seed: int = 0
) -> np.ndarray:
    """(rounds, n) row weights of a cluster bootstrap: draw ``len(universe)`` groups with
    replacement, and give each row the number of times its group was drawn.

    Sources fitted with the same ``universe`` and ``seed`` get the same draws, so their rankings
    can be compared round by round. With ``universe`` = the row indices this is the ordinary
    row bootstrap.
    """
    universe = list(universe)
    codes = pd.Index(universe).get_indexer(groups)
    if (codes < 0).any():
        raise ValueError("groups: some rows belong to no group of the universe")
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(len(universe), np.full(len(universe), 1.0 / len(universe)), size=rounds)
    return counts[:, codes].astype(float)


def arena_ranks(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Chatbot Arena's rank: 1 + the number of models whose lower bound is above this upper bound.

    Models whose intervals overlap share a rank, so a rank is never claimed the data cannot back.
    """
    lower, upper = np.asarray(lower), np.asarray(upper)
    return 1 + (lower[None, :] > upper[:, None]).sum(axis=1)


@dataclass
class BradleyTerryFit:
    """Strengths (Elo-like scores) with percentile intervals, and the style coefficients (logits
    per root-mean-square style difference) when style control was on."""

    models: list[str]
    scores: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    n_votes: np.ndarray
    anchor: str
    boot: np.ndarray
    resample: str
    n_workers: int
    style: pd.DataFrame = field(default_factory=pd.DataFrame)
    style_boot: np.ndarray | None = None

    @property
    def ranks(self) -> np.ndarray:
        return arena_ranks(self.lower, self.upper)

    def table(self) -> pd.DataFrame:
        """One row per model, best first: rank, model, score, lower, upper, votes."""
        df = pd.DataFrame(
            {"rank": self.ranks, "model": self.models, "score": self.scores, "lower": self.lower,
             "upper": self.upper, "votes": self.n_votes.astype(int)}
        )
        return df.sort_values(["score", "model"], ascending=[False, True], ignore_index=True)


def _scores(beta: np.ndarray, anchor_idx: int, anchor_score: float) -> np.ndarray:
    return anchor_score + ELO_PER_LOGIT * (beta - beta[..., anchor_idx : anchor_idx + 1])


def fit_bradley_terry(
    votes: pd.DataFrame,
    *,
    style_control: bool = False,
    anchor: str | None = None,
    anchor_score: float = ANCHOR_SCORE,
    rounds: int = 1000,
    resample: str = "worker",
    workers: Sequence[str] | None = None,
    seed: int = 0,
    l2: float = 1e-3,
    alpha: float = 0.05,
) -> BradleyTerryFit:
    """Fit strengths (and style coefficients) on ``votes``, with bootstrap intervals.

    Parameters
    ----------
    votes : DataFrame in the format of :mod:`analysis.leaderboard.votes`.
    style_control : bool
        Fit the style covariates of :func:`~analysis.leaderboard.votes.style_covariates` jointly.
    anchor : str
        Model held at ``anchor_score`` (in every bootstrap round, so its interval is a point);
        default the model with the most votes.
    resample : "worker" or "row"
        What the bootstrap draws. "worker" (default) keeps each worker's votes together: they
        share the worker's taste and are not independent, and a row bootstrap understates the
        uncertainty then.
    workers : the worker universe to draw from (default: the workers of ``votes``); pass the
        same universe and seed to several sources to pair their bootstrap rounds.
    """
    if votes.empty:
        raise ValueError("votes: no pairwise votes to rank")
    if resample not in {"worker", "row"}:
        raise ValueError(f"resample: {resample!r} is not 'worker' or 'row'")
    counts = pd.concat([votes["model_a"], votes["model_b"]]).value_counts()
    models = sorted(counts.index)
    if len(models) < 2:
        raise ValueError("votes: at least two models are needed")
    if anchor is None:
        anchor = min(models, key=lambda m: (-counts[m], m))
    elif anchor not in models:
        raise ValueError(f"anchor: {anchor!r} has no votes; models are {models}")
    X = model_design(votes, models)
    style = pd.DataFrame()
    if style_control:
        style = style_covariates(votes)
        X = np.hstack([X, style.to_numpy()])
    y = votes["outcome"].to_numpy(dtype=float)
    if np.any((y < 0) | (y > 1)) or np.isnan(y).any():
        raise ValueError("outcome: votes must lie in [0, 1]")
    m = len(models)
    a = models.index(anchor)
    beta = fit_logistic(X, y, l2=l2)
    if resample == "worker":
        universe = sorted(set(votes["worker"])) if workers is None else list(workers)
        W = bootstrap_weights(votes["worker"].to_numpy(), universe, rounds, seed)
    else:
        W = bootstrap_weights(np.arange(len(votes)), range(len(votes)), rounds, seed)
    boot_beta = fit_logistic(X, y, W, l2=l2)
    boot = _scores(boot_beta[:, :m], a, anchor_score)
    q = [100 * alpha / 2, 100 * (1 - alpha / 2)]
    lower, upper = np.percentile(boot, q, axis=0)
    fit = BradleyTerryFit(
        models=models, scores=_scores(beta[:m], a, anchor_score), lower=lower, upper=upper,
        n_votes=counts.reindex(models).to_numpy(), anchor=anchor, boot=boot, resample=resample,
        n_workers=votes["worker"].nunique(),
    )
    if style_control:
        gamma_boot = boot_beta[:, m:]
        lo, hi = np.percentile(gamma_boot, q, axis=0)
        fit.style = pd.DataFrame({"covariate": list(style.columns), "coef": beta[m:], "lower": lo, "upper": hi})
        fit.style_boot = gamma_boot
    return fit
