"""Does behaviour beat answer length? One rule, from the interval of the paired difference.

A run's ``report["intervals"]`` holds, per setting and protocol, each model's accuracy with a
95 % worker-bootstrap interval and its paired difference to the length-only model with its own
interval (:func:`analysis.reward.summary.predictions_summary`). The pages read those rows through
this module so that every page words the same interval the same way:

* the interval lies above 0: the model **helps** (beats length on these workers' rows);
* it lies below 0: the model **hurts**;
* it contains 0: the model is **not shown to help** (whatever its point estimate).

Means over seeds with the best one in bold say nothing of this: the seed spread is small
(folds and forests reshuffled on the same workers) while the worker spread is what a new cohort
brings. Pure: no Django.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from .models import HEADLINE_MODEL, LENGTH_BASELINE

HELPS = "helps"
HURTS = "hurts"
NOT_SHOWN = "not shown to help"
VERDICTS = (HELPS, HURTS, NOT_SHOWN)

#: Protocols in reading order: those that predict new workers first, the leaky paper's last.
PROTOCOL_ORDER = ("grouped", "transfer", "ungrouped", "paper")
#: What a protocol's held-out rows are, as the verdict sentence says it.
PROTOCOL_COHORT = {
    "grouped": "on new workers",
    "transfer": "on the test workers",
    "ungrouped": "on held-out rows of the training workers",
    "paper": "under the paper's leaky protocol",
}
#: Short labels of the protocols on the pages; the paper's is marked leaky.
PROTOCOL_TITLES = {
    "grouped": "worker-grouped CV (new workers)",
    "transfer": "transfer (fitted on the training workers, scored on the test workers)",
    "ungrouped": "ungrouped CV (known workers)",
    "paper": "paper's protocol: LEAKY (features ranked on all rows, test folds included)",
}
#: Protocols whose interval says nothing about new workers.
LEAKY = frozenset({"paper"})


def verdict(diff_lo: float | None, diff_hi: float | None) -> str:
    """``helps`` / ``hurts`` / ``not shown to help`` from the 95 % interval of (model - length).

    An interval that touches 0 or is missing (no baseline on these rows) is "not shown to help":
    a claim needs its whole interval on one side.
    """
    if not _finite(diff_lo) or not _finite(diff_hi):
        return NOT_SHOWN
    if diff_lo > 0:
        return HELPS
    if diff_hi < 0:
        return HURTS
    return NOT_SHOWN


def signed(value: float | None, digits: int = 3) -> str:
    """``+0.011`` / ``−0.035`` (a real minus sign, as in print); ``–`` when missing."""
    if not _finite(value):
        return "–"
    text = f"{value:+.{digits}f}"
    return text.replace("-", "−")


def interval_text(value: float | None, lo: float | None, hi: float | None, *, sign: bool = False,
                  digits: int = 3) -> str:
    """``0.622 [0.580, 0.661]`` or, with ``sign``, ``+0.011 [−0.029, +0.068]``."""
    if not _finite(value):
        return "–"
    fmt = (lambda v: signed(v, digits)) if sign else (lambda v: f"{v:.{digits}f}")
    if not _finite(lo) or not _finite(hi):
        return fmt(value)
    return f"{fmt(value)} [{fmt(lo)}, {fmt(hi)}]"


def verdict_sentence(model: str, diff: float | None, diff_lo: float | None, diff_hi: float | None,
                     protocol: str = "grouped") -> str:
    """``RF + IF: +0.011 [−0.029, +0.068] over length on new workers: not shown to help``."""
    cohort = PROTOCOL_COHORT.get(protocol, f"under {protocol}")
    return (f"{model}: {interval_text(diff, diff_lo, diff_hi, sign=True)} over length {cohort}: "
            f"{verdict(diff_lo, diff_hi)}")


def ordered_protocols(protocols: Iterable[str]) -> list[str]:
    """The protocols present, new-worker protocols first and the leaky paper protocol last."""
    present = list(dict.fromkeys(protocols))
    rank = {p: i for i, p in enumerate(PROTOCOL_ORDER)}
    return sorted(present, key=lambda p: (rank.get(p, len(PROTOCOL_ORDER) - 1), present.index(p)))


def verdict_protocol(protocols: Iterable[str]) -> str | None:
    """The protocol a setting's verdict is read from: the first non-leaky one in reading order."""
    for protocol in ordered_protocols(protocols):
        if protocol not in LEAKY:
            return protocol
    return None


def setting_verdicts(intervals: Mapping[str, Sequence[Mapping]]) -> list[dict]:
    """One verdict per setting: ``{"setting", "protocol", "model", "diff", "diff_lo", "diff_hi",
    "verdict", "sentence"}``, read from the headline model (``RF + IF``, else the first model
    that is not the baseline) under the first protocol that predicts new workers.

    ``intervals`` is a run's ``report["intervals"]``: setting -> rows with ``protocol``, ``model``,
    ``diff``, ``diff_lo``, ``diff_hi``. Settings with no such row give none.
    """
    out = []
    for setting, rows in intervals.items():
        protocol = verdict_protocol(str(r.get("protocol")) for r in rows)
        if protocol is None:
            continue
        candidates = [r for r in rows if r.get("protocol") == protocol and r.get("model") != LENGTH_BASELINE]
        row = next((r for r in candidates if r.get("model") == HEADLINE_MODEL), candidates[0] if candidates else None)
        if row is None:
            continue
        diff, lo, hi = row.get("diff"), row.get("diff_lo"), row.get("diff_hi")
        out.append({"setting": setting, "protocol": protocol, "model": row["model"], "diff": diff,
                    "diff_lo": lo, "diff_hi": hi, "verdict": verdict(lo, hi),
                    "sentence": verdict_sentence(str(row["model"]), diff, lo, hi, protocol)})
    return out


def other_claims(intervals: Mapping[str, Sequence[Mapping]]) -> list[dict]:
    """Per setting, the models other than the headline one whose interval is wholly on one side of 0
    under the verdict protocol: ``{"setting", "protocol", "model", "verdict", "text", "compared"}``.

    Pages show them beside the verdict with a caveat: ``compared`` models were tried, and with that
    many 95 % intervals one can exclude 0 by chance (no correction for multiple comparisons).
    """
    out = []
    for setting, rows in intervals.items():
        protocol = verdict_protocol(str(r.get("protocol")) for r in rows)
        models = [r for r in rows if r.get("protocol") == protocol and r.get("model") != LENGTH_BASELINE]
        headline = HEADLINE_MODEL if any(r.get("model") == HEADLINE_MODEL for r in models) else \
            (models[0]["model"] if models else None)
        for r in models:
            said = verdict(r.get("diff_lo"), r.get("diff_hi"))
            if r.get("model") != headline and said != NOT_SHOWN:
                out.append({"setting": setting, "protocol": protocol, "model": r["model"], "verdict": said,
                            "text": interval_text(r.get("diff"), r.get("diff_lo"), r.get("diff_hi"), sign=True),
                            "compared": len(models)})
    return out


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
