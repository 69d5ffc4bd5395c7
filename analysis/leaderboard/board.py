"""The leaderboard of every vote source, with style control and agreement with explicit votes.

>>> board = build_leaderboard(turns, predictions, style_control=True)     # doctest: +SKIP
>>> print(board.table_text())                                            # doctest: +SKIP
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from .agreement import Agreement, agreement
from .bradley_terry import ANCHOR_SCORE, BradleyTerryFit, fit_bradley_terry
from .votes import explicit_votes, implicit_votes, mixed_votes

SOURCES = ("explicit", "implicit", "mixed")
SOURCE_TITLES = {
    "explicit": "Explicit votes (workers' preferences)",
    "implicit": "Implicit votes (reward-model out-of-fold predictions)",
    "mixed": "Mixed votes (explicit where voted, implicit elsewhere)",
}


@dataclass
class SourceBoard:
    """One vote source: the raw fit, the style-controlled fit, and agreement with explicit votes."""

    source: str
    votes: int
    raw: BradleyTerryFit
    styled: BradleyTerryFit | None = None
    agreement_raw: Agreement | None = None
    agreement_styled: Agreement | None = None
    #: Votes this source adds to the explicit ones (mixed: implicit votes on turns nobody voted on;
    #: implicit: its own votes; explicit: None). 0 makes a mixed board the explicit one.
    added_votes: int | None = None

    def notes(self) -> list[str]:
        """What a reader must know before reading this source's table (see :func:`source_notes`)."""
        return source_notes(self.source, self.added_votes)

    def table(self) -> pd.DataFrame:
        """Raw ranking, with the style-controlled rank/score/interval beside it when fitted."""
        df = self.raw.table()
        if self.styled is not None:
            st = self.styled.table().set_index("model")[["rank", "score", "lower", "upper"]]
            df = df.join(st.add_prefix("style_"), on="model")
        return df


@dataclass
class Leaderboard:
    boards: dict[str, SourceBoard]
    params: dict = field(default_factory=dict)

    def rows(self) -> pd.DataFrame:
        """Long table for CSV: source, control (raw/style), rank, model, score, lower, upper, votes."""
        parts = []
        for name, b in self.boards.items():
            for control, fit in (("raw", b.raw), ("style", b.styled)):
                if fit is not None:
                    parts.append(fit.table().assign(source=name, control=control))
        cols = ["source", "control", "rank", "model", "score", "lower", "upper", "votes"]
        return pd.concat(parts, ignore_index=True)[cols]

    def to_csv(self) -> str:
        buf = io.StringIO()
        self.rows().to_csv(buf, index=False, float_format="%.1f")
        return buf.getvalue()

    def as_dict(self) -> dict:
        """JSON-ready: per source (a list, so that order survives a jsonb column) the tables, style
        coefficients and agreement."""
        out: dict = {"params": self.params, "sources": []}
        for name, b in self.boards.items():
            entry: dict = {
                "source": name, "votes": b.votes, "workers": b.raw.n_workers, "anchor": b.raw.anchor,
                "raw": _records(b.raw.table()),
            }
            if b.added_votes is not None:
                entry["added_votes"] = b.added_votes
            entry["notes"] = b.notes()
            if b.styled is not None:
                entry["style_controlled"] = _records(b.styled.table())
                entry["style_coefficients"] = _records(b.styled.style)
            for key, ag in (("agreement_raw", b.agreement_raw), ("agreement_style", b.agreement_styled)):
                if ag is not None:
                    entry[key] = ag.as_dict()
            out["sources"].append(entry)
        return out

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)

    def table_text(self) -> str:
        return "\n\n".join(format_board(b, self.params) for b in self.boards.values())


def source_notes(source: str, added_votes: int | None) -> list[str]:
    """Plain warnings for a vote source: a mixed source that adds no votes IS the explicit board
    (its τ = 1 is by construction, not a finding); implicit votes are a model's predictions, so
    their intervals (workers resampled) leave out the reward model's own error, and their style
    coefficients are fitted to soft predicted probabilities, a scale other than the workers' choices.
    """
    notes = []
    if source == "mixed" and added_votes == 0:
        notes.append("Mixed adds no votes: every implicit vote is on a turn that already has an explicit one, "
                     "so this board is the explicit board and its agreement with it (τ = 1) is by construction, "
                     "not a finding.")
    elif source == "mixed" and added_votes is not None:
        notes.append(f"Mixed adds {added_votes} implicit votes (turns without an explicit vote) to the explicit ones.")
    if source in ("implicit", "mixed") and added_votes != 0:
        notes.append("Implicit votes are the reward model's predictions, not workers' choices: their intervals "
                     "resample workers but do not include the reward model's own error.")
        notes.append("Style coefficients of implicit votes are fitted to predicted probabilities (soft votes near "
                     "0.5), so they are on another scale than the explicit ones: compare their signs, not sizes.")
    return notes


def _records(df: pd.DataFrame) -> list[dict]:
    return [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}
            for r in json.loads(df.to_json(orient="records"))]


def format_board(board: SourceBoard, params: dict) -> str:
    """Plain-text table of one source (what the command prints)."""
    fit = board.raw
    what = "workers" if fit.resample == "worker" else "votes (rows)"
    lines = [
        f"{SOURCE_TITLES.get(board.source, board.source)}: {board.votes} votes from {fit.n_workers} workers",
        f"95% intervals from {fit.boot.shape[0]} bootstrap rounds over {what}; "
        f"{fit.anchor} anchored at {params.get('anchor_score', ANCHOR_SCORE):g}",
    ]
    df = board.table()
    width = max(5, *(len(m) for m in df["model"]))
    head = f"{'rank':>4}  {'model':<{width}}  {'score':>6}  {'95% interval':>13}  {'votes':>5}"
    if board.styled is not None:
        head += f"  | {'style-ctrl rank':>15}  {'score':>6}  {'95% interval':>13}"
    lines.append(head)
    for r in df.itertuples(index=False):
        line = (f"{r.rank:>4}  {r.model:<{width}}  {r.score:6.0f}  "
                f"{f'[{r.lower:.0f}, {r.upper:.0f}]':>13}  {r.votes:>5}")
        if board.styled is not None:
            line += (f"  | {r.style_rank:>15}  {r.style_score:6.0f}  "
                     f"{f'[{r.style_lower:.0f}, {r.style_upper:.0f}]':>13}")
        lines.append(line)
    if board.styled is not None and not board.styled.style.empty:
        lines.append("Style coefficients (logit per typical difference, a minus b; 95% interval):")
        for r in board.styled.style.itertuples(index=False):
            lines.append(f"  {r.covariate:<22} {r.coef:+.3f}  [{r.lower:+.3f}, {r.upper:+.3f}]")
    lines += [f"Note: {note}" for note in board.notes()]
    for label, ag in (("raw", board.agreement_raw), ("style-controlled", board.agreement_styled)):
        if ag is not None and not (board.source == "mixed" and board.added_votes == 0):
            swaps = ", ".join(f"{a} ↔ {b}" for a, b in ag.swaps) or "none"
            lines.append(
                f"Agreement with explicit ({label}): Kendall tau {ag.tau:+.2f} [{ag.lower:+.2f}, {ag.upper:+.2f}]; "
                f"{len(ag.swaps)} of {ag.n_pairs} pairs swap order ({swaps})"
            )
    return "\n".join(lines)


def vote_sources(
    turns: pd.DataFrame, predictions: pd.DataFrame | None = None, *, soft: bool = True,
    sources: Sequence[str] = SOURCES,
) -> dict[str, pd.DataFrame]:
    """Votes of each requested source; implicit and mixed need ``predictions``."""
    unknown = set(sources) - set(SOURCES)
    if unknown:
        raise ValueError(f"sources: unknown {sorted(unknown)}; expected some of {list(SOURCES)}")
    explicit = explicit_votes(turns)
    out: dict[str, pd.DataFrame] = {"explicit": explicit} if "explicit" in sources else {}
    if {"implicit", "mixed"} & set(sources):
        if predictions is None or predictions.empty:
            raise ValueError("predictions: implicit and mixed votes need a reward-model run's predictions")
        implicit = implicit_votes(turns, predictions, soft=soft)
        if "implicit" in sources:
            out["implicit"] = implicit
        if "mixed" in sources:
            out["mixed"] = mixed_votes(explicit, implicit)
    return out


def build_leaderboard(
    turns: pd.DataFrame,
    predictions: pd.DataFrame | None = None,
    *,
    sources: Sequence[str] = ("explicit",),
    style_control: bool = True,
    rounds: int = 1000,
    seed: int = 0,
    soft: bool = True,
    anchor: str | None = None,
    anchor_score: float = ANCHOR_SCORE,
    resample: str = "worker",
) -> Leaderboard:
    """Fit every requested source on the same bootstrap draws and compare it with explicit votes.

    All sources use one worker universe and one seed, so round r redraws the same workers for
    each of them: that is what makes the interval of Kendall's τ meaningful. The anchor is the
    explicit source's most-voted model, so scores of different sources share a zero point.
    """
    votes = vote_sources(turns, predictions, soft=soft, sources=sources)
    if "explicit" not in votes:
        votes = {"explicit": explicit_votes(turns), **votes}
    workers = sorted(set().union(*(set(v["worker"]) for v in votes.values())))
    common = {"rounds": rounds, "seed": seed, "resample": resample, "anchor_score": anchor_score}
    fits: dict[str, SourceBoard] = {}
    for name, v in votes.items():
        kw = dict(common, workers=workers, anchor=anchor)
        raw = fit_bradley_terry(v, **kw)
        anchor = raw.anchor if anchor is None else anchor
        styled = fit_bradley_terry(v, style_control=True, **kw) if style_control else None
        added = None if name == "explicit" else len(v) - (len(votes["explicit"]) if name == "mixed" else 0)
        fits[name] = SourceBoard(name, len(v), raw, styled, added_votes=added)
    ref = fits["explicit"]
    for name, b in fits.items():
        if name != "explicit":
            b.agreement_raw = agreement(ref.raw, b.raw)
            if b.styled is not None and ref.styled is not None:
                b.agreement_styled = agreement(ref.styled, b.styled)
    boards = {name: fits[name] for name in SOURCES if name in sources and name in fits}
    params = {**common, "sources": list(boards), "style_control": style_control, "soft": soft,
              "anchor": anchor}
    return Leaderboard(boards, params)
