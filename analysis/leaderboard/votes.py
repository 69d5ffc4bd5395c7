"""Pairwise votes between models, from explicit preferences or reward-model predictions.

A *votes* frame has one row per pairwise turn: ``query_id``, ``worker``, ``model_a`` (response 1,
left), ``model_b`` (response 2, right), ``outcome`` = P(model_a wins) in [0, 1] (1 = a won, 0 = b
won, 0.5 = tie, anything between = a soft vote), and the style columns that
:func:`style_covariates` turns into differences. The input is the turns frame of
``collection.release.reader.read_queries`` / ``collection.selectors.turns_frame``.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

VOTE_COLUMNS = [
    "query_id", "worker", "model_a", "model_b", "outcome", "bullet_instruction",
    "len_a", "len_b", "lists_a", "lists_b", "markdown_a", "markdown_b",
]

_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+\S", re.MULTILINE)
_HEADER = re.compile(r"^\s*#{1,6}\s+\S", re.MULTILINE)
_BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")


def clean_model_name(name: object) -> str:
    """A model name as one clean token: line breaks (and the spaces around them) removed, other
    whitespace runs collapsed.

    Why: the release stores one name as ``"deepseek-ai/\\r\\nDeepSeek-V3"``; read raw it would be
    a sixth model with one vote. Inner single spaces are kept ("Llama 3 70B" stays itself).
    """
    if name is None or (isinstance(name, float) and np.isnan(name)):
        return ""
    text = re.sub(r"\s*[\r\n]+\s*", "", str(name))
    return " ".join(text.split())


def count_lists(text: str) -> int:
    """Bullet or numbered list items (one per line)."""
    return len(_LIST_ITEM.findall(text or ""))


def count_markdown(text: str) -> int:
    """Markdown headers plus bold spans: formatting other than lists."""
    text = text or ""
    return len(_HEADER.findall(text)) + len(_BOLD.findall(text))


def _pairwise_turns(turns: pd.DataFrame) -> pd.DataFrame:
    """Pairwise turns with two clean, different model names and two real answers.

    Turns with a provider error on either side are dropped: the worker did not compare two
    answers. Self-pairs (the same model on both sides) carry no information on strengths.
    """
    t = turns.copy()
    t["model_a"] = t["model_1"].map(clean_model_name)
    t["model_b"] = t["model_2"].map(clean_model_name)
    keep = (t["model_a"] != "") & (t["model_b"] != "") & (t["model_a"] != t["model_b"])
    for col in ("error_1", "error_2"):
        if col in t:
            keep &= t[col].fillna("").astype(str).str.strip() == ""
    return t.loc[keep]


def _with_style(t: pd.DataFrame, outcome: pd.Series) -> pd.DataFrame:
    r1 = t["response_1"].fillna("").astype(str)
    r2 = t["response_2"].fillna("").astype(str)
    out = pd.DataFrame(
        {
            "query_id": t["query_id"].to_numpy(),
            "worker": t["worker"].astype(str).to_numpy(),
            "model_a": t["model_a"].to_numpy(),
            "model_b": t["model_b"].to_numpy(),
            "outcome": outcome.to_numpy(dtype=float),
            "bullet_instruction": t["bullet_instruction"].fillna(False).astype(bool).to_numpy(),
            "len_a": r1.str.len().to_numpy(),
            "len_b": r2.str.len().to_numpy(),
            "lists_a": r1.map(count_lists).to_numpy(),
            "lists_b": r2.map(count_lists).to_numpy(),
            "markdown_a": r1.map(count_markdown).to_numpy(),
            "markdown_b": r2.map(count_markdown).to_numpy(),
        }
    )
    return out[VOTE_COLUMNS].reset_index(drop=True)


def explicit_votes(turns: pd.DataFrame) -> pd.DataFrame:
    """Votes from the workers' own preferences (``preferred``: 1 = response 1, 2 = response 2).

    Turns without a preference are left out (no vote); any other value is rejected rather than
    guessed.
    """
    t = _pairwise_turns(turns)
    pref = pd.to_numeric(t["preferred"], errors="coerce")
    bad = pref.notna() & ~pref.isin([1, 2])
    if bad.any():
        raise ValueError(f"preferred: values {sorted(pref[bad].unique())} are not 1 or 2")
    t = t.loc[pref.notna()]
    return _with_style(t, (pref.loc[t.index] == 1).astype(float))


def implicit_votes(turns: pd.DataFrame, predictions: pd.DataFrame, *, soft: bool = True) -> pd.DataFrame:
    """Votes from a reward model's out-of-fold predictions: ``predictions`` has ``query_id`` and
    ``prob_1`` (P(response 1 preferred)).

    ``soft`` uses the probability itself as a fractional vote (a 0.55 prediction is nearly a
    tie); otherwise the predicted winner gets the whole vote. Several predictions of one turn
    (seeds) are averaged.
    """
    probs = predictions.groupby("query_id")["prob_1"].mean()
    if ((probs < 0) | (probs > 1)).any():
        raise ValueError("prob_1: probabilities must lie in [0, 1]")
    t = _pairwise_turns(turns)
    t = t.loc[t["query_id"].isin(probs.index)]
    p = probs.reindex(t["query_id"]).set_axis(t.index)
    return _with_style(t, p if soft else (p >= 0.5).astype(float))


def mixed_votes(explicit: pd.DataFrame, implicit: pd.DataFrame) -> pd.DataFrame:
    """The worker's vote where there is one, the reward model's vote on every other turn."""
    extra = implicit.loc[~implicit["query_id"].isin(explicit["query_id"])]
    return pd.concat([explicit, extra], ignore_index=True)


def _normalised_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    total = a + b
    return np.divide(a - b, total, out=np.zeros_like(total), where=total > 0)


#: Style covariates of :func:`style_covariates`, in order.
STYLE_NAMES = ["length", "lists", "markdown", "bullet suffix × lists"]


def style_covariates(votes: pd.DataFrame) -> pd.DataFrame:
    """Per vote, the style differences between answer a and answer b, scaled to unit SD.

    Each is (a - b) / (a + b) as in Chatbot Arena's style control, so it is antisymmetric (swap
    the sides and it flips sign) and bounded. The bullet-point suffix is one flag for both
    answers of a turn, so on its own it cancels out of P(a beats b); what the randomised flag can
    move is how much list formatting wins votes, hence the interaction "suffix × lists". Columns
    are divided by their root mean square (not centred: centring would break the antisymmetry),
    so a coefficient is the effect of one typical difference; a column of zeros stays 0.
    """
    lists = _normalised_difference(votes["lists_a"], votes["lists_b"])
    cols = {
        "length": _normalised_difference(votes["len_a"], votes["len_b"]),
        "lists": lists,
        "markdown": _normalised_difference(votes["markdown_a"], votes["markdown_b"]),
        "bullet suffix × lists": lists * votes["bullet_instruction"].astype(float).to_numpy(),
    }
    out = pd.DataFrame(cols, index=votes.index)
    sd = np.sqrt((out**2).mean())
    return out.div(sd.where(sd > 0, 1.0), axis=1)
