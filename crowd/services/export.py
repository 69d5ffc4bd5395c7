"""The cleaned, pseudonymised dataset export (release layout, Parquet, HF preferences).

"Cleaned" means a data selection (``collection.DataSelection``): the export holds exactly its
tasks, and the manifest and the card say which rules chose them and how many tasks each rule
left out. Without a selection only the tasks excluded by staff are left out, and both files say
that QC was not applied. Either way ``tasks.parquet`` carries every QC figure and flag per task.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from django.conf import settings
from django.utils import timezone

from collection.models import DataSelection, Task, Worker

from .. import anonymise
from .. import selection as selection_rules
from ..models import TaskQC
from .base import _require

#: TaskQC columns written to ``tasks.parquet`` as ``qc_<name>`` (every figure and flag).
QC_EXPORT_FIELDS = (
    "calibration_score", "validation_passed", "response_score", "max_index_score", "n_gaze_samples",
    "n_mouse_samples", "sampling_rate_hz", "median_interval_ms", "head_in_box_share", "time_on_task_s",
    "max_log_gap_s", "total_gap_s", "n_gaps", "summary_words", "n_turns", "flagged", "decision",
)
#: Figures kept only in ``TaskQC.metrics`` (no column of their own), exported too.
QC_METRIC_EXTRAS = ("tail_gap_s", "time_on_task_source")


def dataset_export(
    *,
    path: str | Path,
    user: Any = None,
    formats: tuple[str, ...] = ("release", "parquet", "hf"),
    include_free_text: bool = False,
    include_demographics: bool = True,
    progress: Callable[[int, int], None] | None = None,
    selection: DataSelection | None = None,
) -> dict[str, Any]:
    """Export the tasks of ``selection`` (default: every task not excluded by staff, QC not
    applied) with keyed worker pseudonyms, every QC figure per task, and a manifest and card that
    state what was left out and why.

    ``release``: the IFllm release layout; ``parquet``: one table per entity; ``hf``: Hugging
    Face preference JSONL (``prompt``/``chosen``/``rejected``) with a dataset card. Platform ids,
    assignment/HIT ids, completion codes and raw duplicate rows are never written; free text typed
    by workers (summary, feedback, copied sentences, location) only with ``include_free_text``.
    """
    from collection.release import writer
    from collection.selectors import task_samples, turns_frame
    from collection.services.release_export import tasks_frame, workers_frame

    _require(user, "access.export_dataset")
    unknown = set(formats) - {"release", "parquet", "hf"}
    if unknown:
        raise ValueError(f"unknown export format(s): {sorted(unknown)}")
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    tasks = selection.tasks() if selection is not None else Task.objects.counted().filter(excluded=False)
    workers = Worker.objects.filter(tasks__in=tasks).distinct()
    left_out = _left_out(selection)
    mapping = anonymise.pseudonym_map(
        settings.IFLLM_PSEUDONYM_KEY, {*workers.values_list("pseudonym", flat=True), *(r["worker"] for r in left_out)}
    )
    blank_tasks = () if include_free_text else anonymise.TASK_FREE_TEXT
    blank_workers: tuple[str, ...] = () if include_free_text else anonymise.WORKER_FREE_TEXT
    if not include_demographics:
        blank_workers = tuple(set(blank_workers) | set(anonymise.DEMOGRAPHICS))
    wf = anonymise.anonymise_frame(workers_frame(workers), mapping, blank=blank_workers)
    tf = anonymise.anonymise_frame(tasks_frame(tasks), mapping, blank=blank_tasks)
    qc_frame = _qc_columns(tasks, selection)
    tf_qc = tf.merge(
        anonymise.anonymise_frame(qc_frame, mapping), on=["worker", "task_id"], how="left"
    ) if len(tf) else tf
    qf = anonymise.anonymise_frame(turns_frame(tasks=tasks), mapping)
    with_samples = list(tasks.filter(chunks__isnull=False).distinct().select_related("worker"))
    counts: dict[str, Any] = {"workers": len(wf), "tasks": len(tf), "turns": len(qf), "samples": 0}

    if "release" in formats:
        out = root / "release"
        writer.write_tables(out, workers=wf, tasks=tf, queries=qf.drop(columns=["turn_id", "task_pk"]))
    if "parquet" in formats:
        out = root / "parquet"
        out.mkdir(parents=True, exist_ok=True)
        wf.drop(columns=["raw_overrides"], errors="ignore").to_parquet(out / "workers.parquet", index=False)
        tf_qc.drop(columns=["raw_overrides"], errors="ignore").to_parquet(out / "tasks.parquet", index=False)
        qf.drop(columns=["raw_overrides"]).to_parquet(out / "turns.parquet", index=False)
    sample_frames = []
    for done, task in enumerate(with_samples, start=1):
        samples = task_samples(task=task)
        counts["samples"] += len(samples)
        pseudonym = mapping[task.worker.pseudonym]
        if "release" in formats:
            files = task.extra.get("release_files", {})
            writer.write_task_trajectories(
                root / "release" / "user_behavior" / pseudonym / str(task.public_id),
                samples,
                mode=task.effective_mode,
                rel_columns=files.get("rel_columns"),
                unquoted=files.get("unquoted"),
            )
        if "parquet" in formats:
            samples.insert(0, "task_id", task.public_id)
            samples.insert(0, "worker", pseudonym)
            for col in ("signal", "frame"):
                samples[col] = samples[col].astype(str)
            sample_frames.append(samples)
        if progress:
            progress(done, len(with_samples))
    if "parquet" in formats and sample_frames:
        pd.concat(sample_frames, ignore_index=True).to_parquet(root / "parquet" / "samples.parquet", index=False)
    data = _data_statement(selection, left_out, mapping, qc_frame)
    if "hf" in formats:
        counts["preference_records"] = _write_hf(root / "hf", qf, counts, data)
    manifest = {
        "created_at": timezone.now().isoformat(),
        "formats": list(formats),
        "include_free_text": include_free_text,
        "include_demographics": include_demographics,
        "excluded_tasks_left_out": data["left_out"]["total"],
        "selection": data["selection"],
        "qc_applied": data["qc_applied"],
        "left_out": data["left_out"],
        "included_flagged_by_qc": data["included_flagged_by_qc"],
        "pseudonyms": "HMAC-SHA256 under IFLLM_PSEUDONYM_KEY (stable across exports with the same key)",
        "counts": counts,
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return counts


def _left_out(selection: DataSelection | None) -> list[dict[str, Any]]:
    """The tasks left out, each with its reasons: the selection's, else the staff exclusions."""
    if selection is not None:  # tasks a withdrawal deleted since are not listed (their rows are gone)
        gone = selection.tasks_gone()
        return [r for r in selection.left_out if int(r["task"]) not in gone]
    label = selection_rules.REASON_LABELS[selection_rules.EXCLUDED_BY_STAFF]
    return [
        {"task": pk, "worker": worker, "task_id": release_id if release_id is not None else pk,
         "reasons": [selection_rules.EXCLUDED_BY_STAFF], "messages": [label]}
        for pk, worker, release_id in Task.objects.counted().filter(excluded=True).order_by("pk").values_list(
            "pk", "worker__pseudonym", "release_task_id")
    ]


def _qc_columns(tasks, selection: DataSelection | None) -> pd.DataFrame:
    """Per exported task: ``qc_computed``, ``qc_<figure>`` for every QC figure, ``qc_flags``
    (codes), ``qc_reasons`` (sentences), ``qc_thresholds`` (JSON) and, for a selection,
    ``selection_kept_by_staff`` with the rules the staff's decision overrode."""
    by_task = {q.task_id: q for q in TaskQC.objects.filter(task__in=tasks)}
    overrode = {r["task"]: r["overrode"] for r in (selection.summary.get("kept_despite", []) if selection else [])}
    rows = []
    for pk, worker, release_id in tasks.order_by("pk").values_list("pk", "worker__pseudonym", "release_task_id"):
        q = by_task.get(pk)
        row: dict[str, Any] = {"worker": worker, "task_id": release_id if release_id is not None else pk,
                               "qc_computed": q is not None}
        for name in QC_EXPORT_FIELDS:
            row[f"qc_{name}"] = getattr(q, name) if q is not None else None
        for name in QC_METRIC_EXTRAS:
            row[f"qc_{name}"] = q.metrics.get(name) if q is not None else None
        row["qc_flags"] = ",".join(q.flag_codes()) if q is not None else None
        row["qc_reasons"] = "; ".join(r["message"] for r in q.reasons) if q is not None else None
        row["qc_thresholds"] = json.dumps(q.thresholds, sort_keys=True) if q is not None else None
        if selection is not None:
            row["selection_kept_by_staff"] = pk in overrode
            row["selection_overrode"] = "; ".join(overrode.get(pk, []))
        rows.append(row)
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["qc_flagged"] = frame["qc_flagged"].astype("boolean")
        frame["qc_validation_passed"] = frame["qc_validation_passed"].astype("boolean")
    return frame


def _data_statement(
    selection: DataSelection | None, left_out: list[dict[str, Any]], mapping: dict[str, str], qc_frame: pd.DataFrame
) -> dict[str, Any]:
    """What the manifest and the card say about the data: which selection, which rules, and per
    reason how many tasks were left out (and which ones, pseudonymised)."""
    by_reason: dict[str, dict[str, Any]] = {}
    for r in left_out:
        for code in r["reasons"]:
            entry = by_reason.setdefault(code, {"label": selection_rules.REASON_LABELS.get(code, code), "tasks": 0})
            entry["tasks"] += 1
    flagged = int(qc_frame["qc_flagged"].fillna(False).sum()) if not qc_frame.empty else 0
    no_qc = int((~qc_frame["qc_computed"]).sum()) if not qc_frame.empty else 0
    return {
        "selection": None if selection is None else {**selection.record(),
                                                     "rules_text": selection_rules.describe_rules(selection.rules)},
        "qc_applied": selection is not None,
        "left_out": {
            "total": len(left_out),
            "by_reason": by_reason,
            "tasks": [{"worker": mapping[r["worker"]], "task_id": r["task_id"], "reasons": r["reasons"],
                       "messages": r.get("messages", [])} for r in left_out],
        },
        "included_flagged_by_qc": flagged,
        "included_without_qc": no_qc,
        "kept_by_staff": len(selection.summary.get("kept_despite", [])) if selection is not None else 0,
    }


def _write_hf(out: Path, turns: pd.DataFrame, counts: dict[str, Any], data: dict[str, Any]) -> int:
    from alignment.training.hub import write_preference_dataset
    from alignment.training.preference import records_from_explicit_labels

    pairwise = turns[turns["mode"] == "pairwise"]
    pairs = pd.DataFrame(
        {
            "pair_id": pairwise["query_id"].astype(str).to_numpy(),
            "prompt": pairwise["query"].to_numpy(),
            "response_1": pairwise["response_1"].to_numpy(),
            "response_2": pairwise["response_2"].to_numpy(),
            "preference": pairwise["preferred"].astype(object).to_numpy(),
        }
    )
    records = records_from_explicit_labels(pairs)
    title = "IFllm pairwise preferences" + (" (cleaned)" if data["qc_applied"] else " (QC not applied)")
    write_preference_dataset(out, {"train": records}, title=title,
                             about=_card_about(n_records=len(records), counts=counts, data=data))
    return len(records)


def _card_data_section(data: dict[str, Any], counts: dict[str, Any]) -> str:
    """The card's exact statement of which tasks are in and what was left out, and why."""
    left = data["left_out"]
    reasons = "\n".join(
        f"- {entry['label']}: {entry['tasks']} task(s)" for entry in left["by_reason"].values()
    ) or "- nothing"
    if data["selection"] is None:
        return f"""## Which tasks

No data selection was used: quality control was **not** applied. Every task not excluded by
staff is included ({counts["tasks"]} tasks); {data["included_flagged_by_qc"]} of them are flagged by QC
and {data["included_without_qc"]} have no QC figures (columns `qc_flagged`, `qc_reasons` of
`tasks.parquet` in the Parquet export). Left out ({left["total"]} task(s)):

{reasons}
"""
    sel = data["selection"]
    rules = "\n".join(f"- {line}" for line in sel["rules_text"])
    return f"""## Which tasks

Data selection **{sel["name"]} v{sel["version"]}** (id {sel["id"]}): {sel["n_kept"]} of {sel["n_candidates"]}
candidate tasks kept, {sel["n_left_out"]} left out. Its rules, in the order they decide:

{rules}

Left out, per reason (a task failing several rules counts under each):

{reasons}

{data["kept_by_staff"]} task(s) were kept by a staff decision although they fail a rule
(`selection_kept_by_staff` in `tasks.parquet`). `manifest.json` lists every task left out with its
reasons.
"""


def _card_about(*, n_records: int, counts: dict[str, Any], data: dict[str, Any]) -> str:
    source = "from the tasks of the data selection below" if data["qc_applied"] else (
        "from every task not excluded by staff (quality control not applied, see below)")
    return f"""Pairwise preferences of crowd workers between two LLM answers to the same query, collected with
the IFllm Lab site (gaze and mouse were tracked while they read; see the release layout export
for the trajectories).

{n_records} records, {source}: {counts["tasks"]} tasks of {counts["workers"]} workers (turns with a
provider error, a missing label or identical answers are skipped). All of them are in the train
split.

{_card_data_section(data, counts)}

## Privacy

Worker ids are replaced by keyed pseudonyms (HMAC-SHA256 under a lab secret). No platform ids,
assignment ids, IP addresses or free text describing the worker are included unless the exporting
staff member opted in.
"""
