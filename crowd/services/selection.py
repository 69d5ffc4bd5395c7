"""Data selections: apply QC thresholds, manual exclusions and kept overrides once, and freeze
the tasks kept (``collection.DataSelection``). The rule evaluation is :mod:`crowd.selection`."""

from __future__ import annotations

from typing import Any

import pandas as pd
from django.db import transaction
from django.db.models import Max

from collection.models import DataSelection, Platform, Task

from .. import selection as rules_mod
from ..models import Study, TaskQC
from .base import _acting, _jsonable, _require

#: TaskQC columns the rules read.
_QC_FIELDS = tuple(rules_mod.METRIC_COLUMNS)


def selection_candidates(*, scope: str = "all", study: Study | None = None):
    """Tasks a selection chooses among: those with at least one turn, of the scope (and study)."""
    tasks = Task.objects.counted().filter(turns__isnull=False).distinct()
    if scope == "release":
        tasks = tasks.filter(worker__platform=Platform.RELEASE)
    elif scope == "site":
        tasks = tasks.exclude(worker__platform=Platform.RELEASE)
    if study is not None:
        tasks = tasks.filter(qc__study=study)
    return tasks


def empty_selection_message(*, scope: str, study: Study | None) -> str:
    """Why a selection would hold nothing, naming the field to change."""
    if study is not None:
        return f"study: no task of {study.name} has turns and QC for this study yet"
    return f"scope: no task in scope {scope!r} has turns yet"


def selection_frame(*, tasks) -> pd.DataFrame:
    """One row per task: ``task``, ``worker``, ``task_id`` (public), ``excluded``, ``decision``,
    ``has_qc`` and the QC figures the rules read (:data:`crowd.selection.METRIC_COLUMNS`)."""
    rows = list(
        tasks.order_by("pk").values(
            "pk", "worker__pseudonym", "release_task_id", "excluded", "qc__pk", "qc__decision",
            *[f"qc__{name}" for name in _QC_FIELDS],
        )
    )
    frame = pd.DataFrame(rows, columns=["pk", "worker__pseudonym", "release_task_id", "excluded", "qc__pk",
                                        "qc__decision", *[f"qc__{name}" for name in _QC_FIELDS]])
    out = pd.DataFrame({
        "task": frame["pk"].astype(int),
        "worker": frame["worker__pseudonym"],
        "task_id": frame["release_task_id"].fillna(frame["pk"]).astype(int),
        "excluded": frame["excluded"].astype(bool),
        "decision": frame["qc__decision"].fillna(""),
        "has_qc": frame["qc__pk"].notna(),
    })
    for name in _QC_FIELDS:
        out[name] = frame[f"qc__{name}"].astype(object).where(frame[f"qc__{name}"].notna(), None)
    return out


def data_selection_create(
    *,
    name: str,
    thresholds: dict[str, float | None] | None = None,
    scope: str = "all",
    study: Study | None = None,
    require_qc: bool = True,
    validation: bool = True,
    note: str = "",
    user: Any = None,
) -> DataSelection:
    """Freeze the tasks that pass ``thresholds`` today, with the staff's current exclusions and
    "keep" decisions, as the next version of ``name``.

    Raises ``ValueError`` naming the field for a bad name, threshold or scope.
    """
    _require(user, "collection.add_dataselection")
    name = (name or "").strip()
    if not name:
        raise ValueError("name: give the selection a name")
    candidates = selection_frame(tasks=selection_candidates(scope=scope, study=study))
    if candidates.empty:  # nothing to choose among: say so (the rules' tables need a row)
        raise ValueError(empty_selection_message(scope=scope, study=study))
    rules = rules_mod.make_rules(
        thresholds=thresholds,
        manual_exclusions=candidates.loc[candidates["excluded"], "task"],
        kept_overrides=candidates.loc[candidates["decision"] == TaskQC.Decision.KEEP, "task"],
        scope=scope, study=study.pk if study is not None else None, require_qc=require_qc, validation=validation,
    )
    result = rules_mod.evaluate(candidates, rules).merge(candidates[["task", "worker", "task_id"]], on="task")
    left = result[~result["kept"]]
    left_out = [
        {"task": int(r.task), "worker": r.worker, "task_id": int(r.task_id), "reasons": list(r.reasons),
         "messages": list(r.messages)}
        for r in left.itertuples(index=False)
    ]
    overridden = [
        {"task": int(r.task), "worker": r.worker, "task_id": int(r.task_id), "overrode": list(r.messages)}
        for r in result[result["kept_by_staff"]].itertuples(index=False)
    ]
    summary = {**rules_mod.summarise(result), "kept_despite": overridden,
               "rules_text": rules_mod.describe_rules(rules)}
    with transaction.atomic():
        latest = DataSelection.objects.filter(name=name).aggregate(v=Max("version"))["v"]
        return DataSelection.objects.create(
            name=name,
            version=(latest or 0) + 1,
            rules=_jsonable(rules),
            task_ids=[int(t) for t in result.loc[result["kept"], "task"]],
            left_out=_jsonable(left_out),
            summary=_jsonable(summary),
            n_candidates=len(result),
            n_kept=int(result["kept"].sum()),
            n_left_out=len(left),
            note=note,
            created_by=_acting(user),
        )
