"""Few-shot adaptation to a new worker: how many explicit labels must a new worker give?

A model fitted on other workers (worker-grouped outer folds) predicts a new worker's pairs;
the worker's first ``k`` explicit labels (in the order the turns were asked) then shift the
model's logit by one per-worker offset, a MAP estimate under a normal prior
``offset ~ N(0, prior_sd**2)``. The offset is the worker's own lean (mostly a side habit: who
picks the left answer more often), the one thing about a person that a handful of labels can
estimate. Accuracy is scored on the SAME rows for every ``k``: each worker's turns after the
first ``max(ks)``, so the curve compares like with like (workers with no turn left are out).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import StratifiedGroupKFold

_EPS = 1e-4


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def map_offset(z: np.ndarray, y: np.ndarray, prior_sd: float = 1.0, n_iter: int = 25) -> float:
    """Logit offset that maximises sum log-lik(y | sigmoid(z + d)) - d^2 / (2 prior_sd^2) (Newton).

    No labels give 0 (the prior's mode); the penalty keeps one label from moving the offset to
    infinity.
    """
    z, y = np.asarray(z, dtype=float), np.asarray(y, dtype=float)
    d = 0.0
    if not len(z):
        return d
    inv_var = 1.0 / prior_sd**2
    for _ in range(n_iter):
        p = 1.0 / (1.0 + np.exp(-(z + d)))
        grad = np.sum(y - p) - d * inv_var
        hess = -np.sum(p * (1 - p)) - inv_var
        step = grad / hess
        d -= step
        if abs(step) < 1e-8:
            break
    return float(d)


def few_shot_predictions(
    X: pd.DataFrame,
    y: np.ndarray,
    groups: np.ndarray,
    order: np.ndarray,
    models: dict[str, Callable[[int], object]],
    *,
    ks: Sequence[int] = (0, 1, 2, 4),
    n_splits: int = 5,
    seeds: Sequence[int] = (0,),
    prior_sd: float = 1.0,
    query_ids: Sequence | None = None,
) -> pd.DataFrame:
    """Out-of-fold predictions after adapting to each test worker's first ``k`` labels.

    Parameters
    ----------
    X, y, groups : features, labels (1 = left preferred), worker of each row.
    order : array
        Sort key of a worker's turns (time asked): "first k" follows it.
    models : dict name -> callable(seed) -> unfitted classifier
    ks : label budgets; rows scored are each worker's turns after the first ``max(ks)``.

    Returns
    -------
    DataFrame
        ``query_id, worker, y, prob_1, model, protocol ("k=<k>"), seed``, the layout
        :func:`~analysis.reward.summary.predictions_summary` reads (baseline per protocol).
    """
    y = np.asarray(y, dtype=np.int64)
    groups, order = np.asarray(groups), np.asarray(order)
    qids = np.asarray(X.index if query_ids is None else query_ids)
    k_max = max(ks)
    rank = pd.Series(order).groupby(groups).rank(method="first").to_numpy() - 1  # 0-based turn index per worker
    scored = rank >= k_max
    parts = []
    for seed in seeds:
        cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        for train, test in cv.split(np.zeros(len(y)), y, groups):
            for name, make in models.items():
                model = clone(make(seed)).fit(X.iloc[train], y[train])
                classes = list(model.classes_)
                p = model.predict_proba(X.iloc[test])
                z = _logit(p[:, classes.index(1)] if 1 in classes else np.zeros(len(test)))
                for k in ks:
                    adjusted = z.copy()
                    for w in np.unique(groups[test]):
                        mine = groups[test] == w
                        shots = mine & (rank[test] < k)
                        adjusted[mine] = z[mine] + map_offset(z[shots], y[test][shots], prior_sd)
                    keep = scored[test]
                    parts.append(pd.DataFrame({
                        "query_id": qids[test][keep], "worker": groups[test][keep], "y": y[test][keep],
                        "prob_1": 1.0 / (1.0 + np.exp(-adjusted[keep])), "model": name, "protocol": f"k={k}",
                        "seed": seed,
                    }))
    return pd.concat(parts, ignore_index=True)
