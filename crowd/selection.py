"""Which tasks a data selection keeps, and why each other task is left out (pure: no Django).

A *data selection* is the lab's one definition of clean data: the QC thresholds of
:mod:`crowd.qc`, the staff's manual exclusions and the staff's "keep anyway" overrides, applied
to every task's QC figures once and frozen as a list of task ids (``collection.DataSelection``).
Reward runs, leaderboards, preference datasets and exports read that list, so they all mean the
same tasks by "clean", and each can say exactly what was left out and why.

The rules, in the order they decide (first match wins):

1. ``manual_exclusions`` (task ids excluded by staff) are left out, whatever their figures;
2. ``kept_overrides`` (task ids staff decided to keep) are kept, whatever their figures;
3. a task without QC figures is left out when ``require_qc`` (nothing vouches for it);
4. a task that fails a threshold (:func:`crowd.qc.flag_reasons`; a failed validation too when
   ``validation``) is left out;
5. every other task is kept.

The paper's filter (response score >= 0.75 and max-index score >= 0.3, section 3.4, defined once
in :mod:`analysis.features.quality`) is one such set of thresholds: :data:`PAPER_FILTER_RULES`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from .qc import DEFAULT_THRESHOLDS, PAPER_THRESHOLDS, RULES, THRESHOLD_NAMES, flag_reasons

#: Version of the rules' JSON layout (stored in every selection's rules).
RULES_FORMAT = 1

#: Which tasks are candidates at all (the rest are out of scope, not "left out").
SCOPES = {"all": "every task", "site": "tasks collected by the site", "release": "imported release tasks"}

EXCLUDED_BY_STAFF = "excluded_by_staff"
NO_QC = "no_qc"
VALIDATION = "validation"

#: Reason code -> what a reader is told (the QC rules' metric codes plus the selection's own).
REASON_LABELS: dict[str, str] = {
    EXCLUDED_BY_STAFF: "excluded by staff",
    NO_QC: "no QC figures computed",
    VALIDATION: "gaze validation failed",
    **{r.metric: r.label for r in RULES},
}

#: Figures of a task the rules read (``has_qc`` says whether they were computed at all).
METRIC_COLUMNS: tuple[str, ...] = ("validation_passed", *(r.metric for r in RULES if r.metric != "validation"))


def make_rules(
    *,
    thresholds: Mapping[str, float | None] | None = None,
    manual_exclusions: Iterable[int] = (),
    kept_overrides: Iterable[int] = (),
    scope: str = "all",
    study: int | None = None,
    require_qc: bool = True,
    validation: bool = True,
) -> dict[str, Any]:
    """The rules of a selection as plain JSON (every threshold named, None = not applied).

    Raises ``ValueError`` naming the bad key: an unknown threshold, a negative or non-finite
    value, or an unknown scope.
    """
    thresholds = dict(DEFAULT_THRESHOLDS if thresholds is None else thresholds)
    unknown = sorted(set(thresholds) - set(THRESHOLD_NAMES))
    if unknown:
        raise ValueError(f"thresholds: unknown rule(s) {', '.join(unknown)}")
    clean: dict[str, float | None] = {}
    for name in THRESHOLD_NAMES:
        value = thresholds.get(name)
        if value is not None:
            value = float(value)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name}: must be a finite number >= 0 (or empty to switch the rule off)")
        clean[name] = value
    if scope not in SCOPES:
        raise ValueError(f"scope: one of {', '.join(SCOPES)}")
    excluded = sorted({int(t) for t in manual_exclusions})
    kept = sorted({int(t) for t in kept_overrides} - set(excluded))
    return {
        "format": RULES_FORMAT,
        "scope": scope,
        "study": study,
        "thresholds": clean,
        "validation": bool(validation),
        "require_qc": bool(require_qc),
        "manual_exclusions": excluded,
        "kept_overrides": kept,
    }


#: The paper's filter as a selection's rules: its two thresholds, nothing else.
PAPER_FILTER_RULES: dict[str, Any] = make_rules(thresholds=PAPER_THRESHOLDS, validation=False)


def is_paper_filter(rules: Mapping[str, Any]) -> bool:
    """True when the thresholds are exactly the paper's two (the rest switched off)."""
    return dict(rules.get("thresholds") or {}) == dict(PAPER_FILTER_RULES["thresholds"])


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def evaluate(tasks: pd.DataFrame, rules: Mapping[str, Any]) -> pd.DataFrame:
    """Apply ``rules`` to every candidate task.

    Parameters
    ----------
    tasks : DataFrame
        One row per candidate task: ``task`` (primary key), ``has_qc`` (bool) and the figures of
        :data:`METRIC_COLUMNS` (missing columns count as not measured).
    rules : mapping
        From :func:`make_rules`.

    Returns
    -------
    DataFrame
        ``task``, ``kept`` (bool), ``kept_by_staff`` (kept only because of an override),
        ``reasons`` (codes that leave it out, or that the override overrode) and ``messages``
        (the same as sentences, e.g. ``"response score (gaze on answer text) 0.61 < 0.75"``).
    """
    thresholds = dict(rules.get("thresholds") or {})
    excluded = set(rules.get("manual_exclusions") or ())
    kept_ids = set(rules.get("kept_overrides") or ())
    rows = []
    for rec in tasks.to_dict("records"):
        task = int(rec["task"])
        if task in excluded:
            rows.append((task, False, False, [EXCLUDED_BY_STAFF], [REASON_LABELS[EXCLUDED_BY_STAFF]]))
            continue
        if not rec.get("has_qc"):
            codes, messages = [NO_QC], [REASON_LABELS[NO_QC]]
        else:
            metrics = {k: (None if _missing(rec.get(k)) else rec.get(k)) for k in METRIC_COLUMNS}
            failed = flag_reasons(metrics, thresholds)
            if not rules.get("validation", True):
                failed = [r for r in failed if r["code"] != VALIDATION]
            codes, messages = [r["code"] for r in failed], [r["message"] for r in failed]
        if codes and NO_QC in codes and not rules.get("require_qc", True):
            codes, messages = [], []
        if task in kept_ids:
            rows.append((task, True, bool(codes), codes, messages))
        else:
            rows.append((task, not codes, False, codes, messages))
    return pd.DataFrame(rows, columns=["task", "kept", "kept_by_staff", "reasons", "messages"])


def summarise(result: pd.DataFrame) -> dict[str, Any]:
    """Counts a card, a manifest and a page print: per reason, how many tasks it leaves out
    (``tasks``; a task failing two rules counts under both) and how many it alone leaves out
    (``only``), plus the totals and the overrides."""
    left = result[~result["kept"]]
    by_reason: dict[str, dict[str, Any]] = {}
    for codes in left["reasons"]:
        for code in codes:
            entry = by_reason.setdefault(code, {"label": REASON_LABELS.get(code, code), "tasks": 0, "only": 0})
            entry["tasks"] += 1
            entry["only"] += len(codes) == 1
    order = list(REASON_LABELS)
    by_reason = dict(sorted(by_reason.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))
    return {
        "candidates": len(result),
        "kept": int(result["kept"].sum()),
        "left_out": len(left),
        "kept_by_staff": int(result["kept_by_staff"].sum()),
        "by_reason": by_reason,
    }


def describe_rules(rules: Mapping[str, Any]) -> list[str]:
    """The rules as sentences, in the order they decide (for pages, cards and manifests)."""
    lines = [f"Candidates: {SCOPES.get(rules.get('scope', 'all'), rules.get('scope'))}"
             + (f" of study {rules['study']}" if rules.get("study") else "") + "."]
    excluded, kept = rules.get("manual_exclusions") or [], rules.get("kept_overrides") or []
    lines.append(f"Left out by staff decision: {len(excluded)} task(s).")
    lines.append(f"Kept by staff decision whatever their figures: {len(kept)} task(s).")
    if rules.get("require_qc", True):
        lines.append("Left out: tasks whose QC figures were never computed.")
    thresholds = rules.get("thresholds") or {}
    for rule in RULES:
        value = thresholds.get(rule.name)
        if value is None:
            continue
        sign = ">=" if rule.op == "min" else "<="
        missing = " (not measured fails)" if rule.missing_fails else ""
        lines.append(f"Kept only with {rule.label} {sign} {value:g}{missing}.")
    if rules.get("validation", True):
        lines.append("Left out: tasks whose gaze validation failed.")
    if is_paper_filter(rules):
        lines.append("These thresholds are the paper's filter (section 3.4).")
    return lines
