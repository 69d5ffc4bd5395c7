"""Preference labels, with their direction stated once and tested.

Pairwise: ``y = 1`` when response 1 (the LEFT box) was preferred (``preferred == 1``) and
``y = 0`` when response 2 (right) was (``preferred == 2``); unrated rows are dropped.
Pointwise: ``y = 1`` when the current answer was rated better than the previous one.
The release writes preferences as ``"1.0"``/``"2.0"``; values are compared as numbers, never
parsed with ``int()`` (which fails on "1.0" and once labelled every pairwise row 0).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Side suffixes swapped by :func:`swap_sides`.
SIDE_1, SIDE_2 = ".1", ".2"


def pairwise_labels(queries: pd.DataFrame) -> pd.Series:
    """``query_id -> 1`` (response 1 / left preferred) or ``0`` (response 2 / right).

    Parameters
    ----------
    queries : DataFrame
        With ``query_id`` and ``preferred`` (1/2, as numbers or strings such as "1.0").
    """
    preferred = pd.to_numeric(queries["preferred"], errors="coerce")
    rated = preferred.isin([1.0, 2.0]).to_numpy()
    y = (preferred[rated] == 1.0).astype(np.int64).to_numpy()
    return pd.Series(y, index=queries["query_id"].to_numpy()[rated], name="y")


def pointwise_labels(queries: pd.DataFrame) -> pd.Series:
    """``query_id -> 1`` (current answer better than the previous) or ``0``; first turns dropped."""
    better = queries["better_than_previous"]
    known = better.notna().to_numpy()
    y = better[known].map(lambda v: int(bool(v))).to_numpy(dtype=np.int64)
    return pd.Series(y, index=queries["query_id"].to_numpy()[known], name="y")


def winner_from_prob(prob_1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predicted winner (1 or 2, coded like ``preferred``) and the probability OF THAT WINNER.

    ``p_winner = max(prob_1, 1 - prob_1) >= 0.5``: the confidence of the prediction, not
    P(class 1) (using P(class 1) gave every pair predicted "right" the lowest confidence).
    """
    prob_1 = np.asarray(prob_1, dtype=float)
    winner = np.where(prob_1 >= 0.5, 1, 2)
    return winner, np.where(winner == 1, prob_1, 1.0 - prob_1)


def swap_sides(features: pd.DataFrame) -> pd.DataFrame:
    """The same turns with the two sides exchanged (left <-> right).

    ``.1``/``.2`` columns are exchanged, ``.diff`` negated, ``.ratio`` inverted (exact for
    ``(a + eps) / (b + eps)``) and ``.cmp`` recomputed from the swapped ``max_char``.
    Used to test that predictions follow the sides, i.e. the label direction is consistent.
    """
    out = features.copy()
    for col in features.columns:
        if col.endswith(SIDE_1):
            other = col[: -len(SIDE_1)] + SIDE_2
            if other in features.columns:
                out[col], out[other] = features[other].to_numpy(), features[col].to_numpy()
        elif col.endswith(".diff"):
            out[col] = -features[col]
        elif col.endswith(".ratio"):
            out[col] = 1.0 / features[col]
    for col in features.columns:
        if col.endswith(".cmp"):
            base = col[: -len(".cmp")]
            m1 = out[base + SIDE_1].fillna(-1.0)
            m2 = out[base + SIDE_2].fillna(-1.0)
            out[col] = (m1 > m2).astype(float)
    return out
