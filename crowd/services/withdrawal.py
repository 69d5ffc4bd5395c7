"""A participant's withdrawal: delete their data everywhere, mark what was built from it, audit it.

Here, in ``crowd``, because crowd is the one app that may import every other
(``tests/test_app_boundaries.py``): the data of record is in ``collection``, derived rows in
``crowd`` (QC), ``analysis`` (predictions, runs, leaderboards) and ``alignment`` (pairs, datasets,
training runs), and exports are ``jobs.Job`` rows. The records themselves
(``collection.Withdrawal``, ``collection.AffectedArtifact``) live in ``collection`` so that every
app's pages can show the notice.

Order matters: the artifacts are found and marked *before* anything is deleted, because the
cascades (predictions and pairs go with the turns) would erase the evidence of what used the data.

What is deleted: the worker row itself (pseudonym, platform id, consent, demographics, free text in
``raw_overrides``/``extra``), every task (post-task answers, summaries, feedback, copied text,
completion codes, calibration JSON), turns (queries, answers, ratings), trajectory chunks,
calibration attempts, QC rows, reward predictions and preference pairs of their turns, identity
events, invitations, their stored browser sessions (which may hold the consent and demographics of an
unverified entry), the ``answer`` fields of their platform submissions, and, after the commit,
the feature-cache files holding their rows and the files of exports and preference-dataset
folders built from them. What is kept: platform submissions (``crowd.Assignment``) and payments
(``crowd.Payment``) with their platform ids, as the financial record of what was paid to whom, and
the platform call log (``crowd.AuditLog``); the link of those submissions to the deleted tasks is
cut (``on_delete=SET_NULL``). Frozen data selections keep their task ids (numbers that now point
at nothing) and are marked; the one thing in them that names the person, the pseudonym of a task
left out, is replaced by ``"withdrawn"`` (a queryset update: ``DataSelection.save`` refuses edits,
and this is the only one allowed, because it changes no task the selection means). Any new
selection or rebuild simply finds the tasks gone.

Identifiers copied into results that stay (a transfer run's worker lists, per-worker tables in
reports, import problems, job params, admin log entries) are scrubbed from every stored text and
JSON field outside the payment record (:func:`stored_scrub`); export folders under
``VAR_DIR/exports`` that still name the person are deleted after the commit.

The Worker row is deleted, not kept as a tombstone: a tombstone would keep an identifier and
show up in every count of workers (QC pages, the study monitor, exports' worker tables). A
re-entry with the same platform id is refused through ``Withdrawal.subject_key`` instead
(``collection.services.study.worker_get_or_create``), so the person is not recorded again.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Min, Q, Sum
from django.utils import timezone

from collection.models import (
    AffectedArtifact,
    CalibrationAttempt,
    DataSelection,
    IdentityEvent,
    Invitation,
    Task,
    TrajectoryChunk,
    Turn,
    Withdrawal,
    Worker,
)
from collection.services.study import withdrawal_key

from ..models import Assignment, TaskQC
from .base import _acting, _require

logger = logging.getLogger(__name__)

PERMISSION = "collection.withdraw_participant"
#: The job kind of dataset exports (``crowd.tasks.export_dataset``): its params name the folder.
EXPORT_KIND = "crowd.export_dataset"
#: Channels where a staff user acts (and must hold :data:`PERMISSION`).
STAFF_CHANNELS = (Withdrawal.Channel.STAFF_PAGE, Withdrawal.Channel.ADMIN)


class WithdrawalError(ValueError):
    """The withdrawal or a rebuild cannot be done as asked (the message says why)."""


@dataclass(frozen=True)
class Affected:
    """One artifact built from the participant's data, found before anything is deleted."""

    app_label: str
    model_name: str
    object_id: int
    label: str
    reason: str


# --- finding the participant ----------------------------------------------------------------------


#: What a frozen selection says instead of a withdrawn participant's pseudonym.
WITHDRAWN = "withdrawn"


def participant_find(*, identifier: str, platform_id: bool = False) -> Worker:
    """The worker named by a pseudonym, or (``platform_id``) by a platform id.

    Raises :class:`WithdrawalError` when none matches (saying whether that id already withdrew)
    or when a platform id is known on several platforms.
    """
    ident = (identifier or "").strip()
    if not ident:
        raise WithdrawalError("identifier: give a pseudonym or a platform id")
    if not platform_id:
        worker = Worker.objects.filter(pseudonym=ident).first()
        if worker is None:
            raise WithdrawalError(f"no participant has the pseudonym {ident!r} (use --platform for a platform id)")
        return worker
    matches = list(Worker.objects.filter(platform_worker_id=ident))
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise WithdrawalError(
            f"the platform id is known on several platforms ({', '.join(w.platform for w in matches)}): "
            "withdraw by pseudonym instead"
        )
    done = withdrawal_done(platform_worker_id=ident)
    if done is not None:
        raise WithdrawalError(f"this platform id already withdrew on {done.created_at:%Y-%m-%d} ({done})")
    raise WithdrawalError("no participant has this platform id")


def withdrawal_done(*, platform_worker_id: str) -> Withdrawal | None:
    """The earlier withdrawal of this platform id (any platform), if there was one."""
    keys = [withdrawal_key(platform=p, platform_worker_id=platform_worker_id) for p in ("mturk", "prolific", "lab")]
    return Withdrawal.objects.filter(subject_key__in=keys).order_by("created_at").first()


# --- what was built from their data ---------------------------------------------------------------


def _first_seen(worker: Worker, task_ids: set[int]) -> datetime | None:
    """The earliest moment any of their data existed in the database (None: unknown, so every
    artifact made without a data selection counts as affected)."""
    times = [worker.created_at]
    times.append(Task.objects.filter(pk__in=task_ids).aggregate(t=Min("started_at"))["t"])
    times.append(TrajectoryChunk.objects.filter(task_id__in=task_ids).aggregate(t=Min("received_at"))["t"])
    times.append(CalibrationAttempt.objects.filter(task_id__in=task_ids).aggregate(t=Min("created_at"))["t"])
    times.append(Invitation.objects.filter(worker=worker).aggregate(t=Min("created_at"))["t"])
    known = [t for t in times if t is not None]
    return min(known) if known else None


def _label(obj: Any) -> str:
    return str(obj)[:300]


def affected_artifacts(*, worker: Worker) -> list[Affected]:
    """Every stored result built from ``worker``'s data: what :func:`participant_withdraw` marks.

    Runs, leaderboards and datasets with a data selection used its frozen ``task_ids``; those
    without one used every task present when they were made (made after the worker's first data).
    Datasets also count when a pair points at one of their turns, reward runs when a prediction
    does, training runs when their dataset or their SFT run is affected (an SFT run without a
    dataset trained on every answer present), evaluations when either training run is.
    """
    from alignment.models import EvaluationRun, PreferenceDataset, TrainingRun
    from analysis.models import AnalysisFigure, Leaderboard, RewardModelRun, StudyPlan
    from jobs.models import Job

    task_ids = set(worker.tasks.values_list("pk", flat=True))
    if not task_ids:
        return []
    turn_ids = set(Turn.objects.filter(task_id__in=task_ids).values_list("pk", flat=True))
    since = _first_seen(worker, task_ids)
    # Unknown first moment: everything made without a selection counts (a Q that matches every row,
    # not an empty Q, which an OR below would drop).
    after = Q(pk__isnull=False) if since is None else Q(created_at__gte=since)
    found: dict[tuple[str, str, int], Affected] = {}

    def add(obj: Any, reason: str) -> None:
        key = (obj._meta.app_label, obj._meta.model_name, obj.pk)
        if key not in found:
            found[key] = Affected(*key, label=_label(obj), reason=reason)

    selections: set[int] = set()
    for sel in DataSelection.objects.all():
        if task_ids & set(sel.task_ids):
            selections.add(sel.pk)
            add(sel, "the selection contains their task(s)")
        elif any(r.get("task") in task_ids for r in sel.left_out or []):
            selections.add(sel.pk)
            add(sel, "the selection lists their task(s) as left out")
    everything = "made without a data selection after their data arrived"
    by_selection = "its data selection contains their task(s)"

    runs = RewardModelRun.objects.filter(
        Q(selection__in=selections) | (Q(selection__isnull=True) & after) | Q(predictions__turn_id__in=turn_ids)
    ).distinct()
    for run in runs:
        add(run, by_selection if run.selection_id in selections else everything)
    for board in Leaderboard.objects.filter(Q(selection__in=selections) | (Q(selection__isnull=True) & after)):
        add(board, by_selection if board.selection_id in selections else everything)
    datasets = PreferenceDataset.objects.filter(
        Q(pairs__turn_id__in=turn_ids) | Q(selection__in=selections) | (Q(selection__isnull=True) & after)
    ).distinct()
    dataset_ids = set()
    for ds in datasets:
        dataset_ids.add(ds.pk)
        add(ds, "pairs from their turns" if ds.pairs.filter(turn_id__in=turn_ids).exists() else
            (by_selection if ds.selection_id in selections else everything))
    training = set(TrainingRun.objects.filter(dataset__in=dataset_ids).values_list("pk", flat=True))
    training |= set(TrainingRun.objects.filter(Q(method=TrainingRun.Method.SFT, dataset__isnull=True) & after)
                    .values_list("pk", flat=True))
    while True:  # DPO runs start from an SFT run: affected through it
        more = set(TrainingRun.objects.filter(sft_run__in=training).exclude(pk__in=training)
                   .values_list("pk", flat=True))
        if not more:
            break
        training |= more
    for run in TrainingRun.objects.filter(pk__in=training).order_by("pk"):
        add(run, "trained on an affected preference dataset" if run.dataset_id in dataset_ids else
            ("starts from an affected SFT run" if run.sft_run_id in training else
             "SFT on every answer present, made after their data arrived"))
    for ev in EvaluationRun.objects.filter(Q(sft_run__in=training) | Q(aligned_run__in=training) | after):
        add(ev, "evaluates an affected training run" if {ev.sft_run_id, ev.aligned_run_id} & training
            else "its test queries were drawn from every query present")
    for plan in StudyPlan.objects.filter(after):
        add(plan, everything)
    for fig in AnalysisFigure.objects.filter(after):
        add(fig, everything)
    for job in Job.objects.filter(kind=EXPORT_KIND):
        pk = (job.params or {}).get("selection_pk")
        if pk in selections:
            add(job, "export of a data selection that contains their task(s)")
        elif pk is None and (since is None or job.created_at >= since):
            add(job, "export of every task, made after their data arrived")
    return sorted(found.values(), key=lambda a: (a.app_label, a.model_name, a.object_id))


def withdrawal_preview(*, worker: Worker, with_affected: bool = True) -> dict[str, Any]:
    """What a withdrawal of ``worker`` would delete and mark (for the confirmation pages; the
    participant's page does not list the lab's runs: ``with_affected=False``)."""
    tasks = Task.objects.filter(worker=worker)
    chunks = TrajectoryChunk.objects.filter(task__in=tasks)
    return {
        "tasks": tasks.count(),
        "turns": Turn.objects.filter(task__in=tasks).count(),
        "samples": chunks.aggregate(n=Sum("n_samples"))["n"] or 0,
        "calibration_attempts": CalibrationAttempt.objects.filter(task__in=tasks).count(),
        "affected": affected_artifacts(worker=worker) if with_affected else [],
    }


# --- the withdrawal ---------------------------------------------------------------------------------


def participant_withdraw(
    *, worker: Worker, channel: str, user: Any = None
) -> Withdrawal | None:
    """Withdraw ``worker``: mark every artifact built from their data, delete their data, and
    leave a :class:`~collection.models.Withdrawal` without personal data. One transaction.

    Staff channels need ``collection.withdraw_participant`` (PermissionDenied otherwise); the
    participant's own session and the command act as the system (``user=None``). Idempotent:
    when the worker is already gone (a second click, a retry) nothing happens and None is returned.
    Files (feature cache, export folders) are deleted after the commit, so a rolled-back
    withdrawal deletes no export; their counts are added to the record then.
    """
    if channel not in Withdrawal.Channel.values:
        raise WithdrawalError(f"channel: unknown channel {channel!r}")
    if channel in STAFF_CHANNELS:
        if user is None:
            raise WithdrawalError("user: a staff withdrawal names the staff user")
        _require(user, PERMISSION)
    with transaction.atomic():
        worker = Worker.objects.select_for_update().filter(pk=worker.pk).first()
        if worker is None:
            return None
        tasks = Task.objects.filter(worker=worker)
        task_ids = set(tasks.values_list("pk", flat=True))
        turns = Turn.objects.filter(task_id__in=task_ids)
        query_ids = [t.public_id for t in turns.only("pk", "release_query_id")]
        pseudonym = worker.pseudonym
        needles = identifiers(worker)
        affected = affected_artifacts(worker=worker)
        record = Withdrawal.objects.create(
            channel=channel,
            acted_by=_acting(user) if channel in STAFF_CHANNELS else None,
            platform=worker.platform,
            subject_key=withdrawal_key(platform=worker.platform, platform_worker_id=worker.platform_worker_id)
            if worker.platform_worker_id else "",
        )
        AffectedArtifact.objects.bulk_create([
            AffectedArtifact(withdrawal=record, app_label=a.app_label, model_name=a.model_name,
                             object_id=a.object_id, label=a.label, reason=a.reason[:300])
            for a in affected
        ])
        counts = _delete(worker, task_ids, turns)
        counts["selections_scrubbed"] = _selections_scrub(pseudonym, task_ids)
        scrubbed = stored_scrub(identifiers=needles)
        counts["rows_scrubbed"] = sum(scrubbed.values())
        if scrubbed:
            counts["scrubbed_in"] = "; ".join(f"{k}: {v}" for k, v in sorted(scrubbed.items()))
        record.counts = counts
        record.save(update_fields=["counts"])
        files = _files_to_delete(affected)
        transaction.on_commit(lambda: _files_delete(record.pk, pseudonym, query_ids, files, needles))
    return record


def _delete(worker: Worker, task_ids: set[int], turns) -> dict[str, int]:
    """Delete everything of the worker, counted per kind (the audit's numbers)."""
    from alignment.models import PreferencePair
    from analysis.models import RewardPrediction

    chunks = TrajectoryChunk.objects.filter(task_id__in=task_ids)
    assignments = Assignment.objects.filter(Q(worker=worker) | Q(task_id__in=task_ids))
    assignment_ids = [a for a in Task.objects.filter(pk__in=task_ids).values_list("assignment_id", flat=True) if a]
    events = IdentityEvent.objects.filter(
        Q(worker=worker) | Q(task_id__in=task_ids) | Q(worker__isnull=True, assignment_id__in=assignment_ids)
    )
    counts = {
        "tasks": len(task_ids),
        "turns": turns.count(),
        "samples": chunks.aggregate(n=Sum("n_samples"))["n"] or 0,
        "trajectory_chunks": chunks.count(),
        "calibration_attempts": CalibrationAttempt.objects.filter(task_id__in=task_ids).count(),
        "task_qc": TaskQC.objects.filter(task_id__in=task_ids).count(),
        "reward_predictions": RewardPrediction.objects.filter(turn__in=turns).count(),
        "preference_pairs": PreferencePair.objects.filter(turn__in=turns).count(),
        "identity_events": events.count(),
        "invitations": Invitation.objects.filter(worker=worker).count(),
        "assignment_answers_cleared": assignments.exclude(answer={}).count(),
        "assignments_kept": assignments.count(),
    }
    # Kept for payment (platform ids, status, amounts), without what the worker typed.
    assignments.update(answer={})
    events.delete()
    RewardPrediction.objects.filter(turn__in=turns).delete()
    PreferencePair.objects.filter(turn__in=turns).delete()
    counts["sessions"] = _sessions_delete(worker.pk)
    worker.delete()  # tasks, turns, chunks, attempts, QC, invitations cascade; assignments are unlinked
    counts["workers"] = 1
    return counts


def _selections_scrub(pseudonym: str, task_ids: set[int]) -> int:
    """Replace the withdrawn pseudonym in frozen selections' per-task lists (``left_out`` and
    ``summary["kept_despite"]``); returns how many selections changed. Task ids stay: they are what
    the selection meant, and identify no one."""

    def theirs(row: dict) -> bool:
        return row.get("worker") == pseudonym or row.get("task") in task_ids

    def scrub(rows: list[dict]) -> list[dict]:
        return [{**r, "worker": WITHDRAWN} if theirs(r) else r for r in rows]

    changed = 0
    for sel in DataSelection.objects.all().only("pk", "left_out", "summary"):
        left_out, summary = sel.left_out or [], sel.summary or {}
        kept_despite = summary.get("kept_despite") or []
        if not any(theirs(r) for r in [*left_out, *kept_despite]):
            continue
        DataSelection.objects.filter(pk=sel.pk).update(
            left_out=scrub(left_out), summary={**summary, "kept_despite": scrub(kept_despite)}
        )
        changed += 1
    return changed


#: Rows kept on purpose with the platform id (docs/withdrawal.md, "What is kept"): the payment
#: record (submissions, bonuses) and the platform call log.
KEPT_MODELS = frozenset({"crowd.assignment", "crowd.payment", "crowd.auditlog"})
#: Apps whose stored text and JSON are searched for the identifiers: ours, and the admin's change
#: log (its ``object_repr`` of a Worker or Task is the pseudonym).
SEARCHED_APPS = ("access", "jobs", "collection", "crowd", "analysis", "alignment", "admin")


#: Platform ids shorter than this are not searched for: a lab participant id such as ``P07`` is a
#: common token in other people's text (queries, answers) and would be rewritten there. Prolific
#: (24) and MTurk (12+) ids are far longer; pseudonyms always are.
MIN_SCRUBBED_ID = 6


def identifiers(worker: Worker) -> list[str]:
    """What names the person in stored data: the pseudonym, the pseudonym their exports carry
    (``crowd.anonymise.keyed_pseudonym``), and their platform id."""
    from ..anonymise import keyed_pseudonym

    found = [worker.pseudonym, keyed_pseudonym(settings.IFLLM_PSEUDONYM_KEY, worker.pseudonym)]
    if len(worker.platform_worker_id or "") >= MIN_SCRUBBED_ID:
        found.append(worker.platform_worker_id)
    return found


def searched_models() -> list[Any]:
    """Every model whose rows :func:`stored_scrub` searches (all of :data:`SEARCHED_APPS` but
    :data:`KEPT_MODELS`)."""
    from django.apps import apps

    return [m for label in SEARCHED_APPS for m in apps.get_app_config(label).get_models()
            if m._meta.label_lower not in KEPT_MODELS and m._meta.managed and not m._meta.proxy]


def text_fields(model: Any) -> list[Any]:
    """The fields of ``model`` that can hold an identifier as text: char, text and JSON fields."""
    from django.db import models

    return [f for f in model._meta.concrete_fields
            if isinstance(f, models.CharField | models.TextField | models.JSONField) and not f.primary_key]


def stored_scrub(*, identifiers: Iterable[str]) -> dict[str, int]:
    """Take ``identifiers`` out of every stored char, text and JSON field of the searched models
    (results built from the person's data copy them: transfer runs' worker lists, reports'
    per-worker tables, import problems, job params and results, admin log entries). Rows are
    found in the database (``contains``, JSON cast to text), rewritten by :func:`crowd.scrub.scrub`
    and saved with a queryset update (frozen rows refuse ``save``). Returns rows changed per model.
    Binary fields are not searched: the site stores images and sample tables there, never ids."""
    from django.db import models
    from django.db.models.functions import Cast

    from .. import scrub

    needles = [n for n in identifiers if n]
    found = scrub.pattern(needles)
    changed: dict[str, int] = {}
    if found is None:
        return changed
    for model in searched_models():
        fields = text_fields(model)
        if not fields:
            continue
        aliases: dict[str, Any] = {}
        query = Q()
        for field in fields:
            target = field.name
            if isinstance(field, models.JSONField):
                target = f"scrub_{field.name}_text"
                aliases[target] = Cast(field.name, models.TextField())
            for needle in needles:
                query |= Q(**{f"{target}__contains": needle})
        names = [f.attname for f in fields]
        n = 0
        for row in model._base_manager.alias(**aliases).filter(query).values("pk", *names):
            updates: dict[str, Any] = {}
            for field in fields:
                new, did = scrub.scrub(row[field.attname], found)
                if did:
                    max_length = getattr(field, "max_length", None)
                    updates[field.attname] = new[:max_length] if max_length and isinstance(new, str) else new
            if updates:
                model._base_manager.filter(pk=row["pk"]).update(**updates)
                n += 1
        if n:
            changed[model._meta.label_lower] = n
    return changed


def _sessions_delete(worker_pk: int) -> int:
    """End every stored browser session bound to the worker: a session carries their entry (the
    platform's assignment id) and, for an unverified entry, their consent and demographics
    (``collection.session.PROFILE_KEY``). Database sessions only (the site's engine); sessions in a
    cache backend expire on their own and point at a worker that no longer exists."""
    from django.contrib.sessions.models import Session

    from collection.session import WORKER_KEY

    if settings.SESSION_ENGINE not in ("django.contrib.sessions.backends.db",
                                       "django.contrib.sessions.backends.cached_db"):
        return 0
    doomed = [s.session_key for s in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
              if s.get_decoded().get(WORKER_KEY) == worker_pk]
    if settings.SESSION_ENGINE.endswith("cached_db"):
        from django.contrib.sessions.backends.cached_db import SessionStore

        for key in doomed:
            SessionStore(session_key=key).delete()
    Session.objects.filter(session_key__in=doomed).delete()
    return len(doomed)


def _files_to_delete(affected: Iterable[Affected]) -> list[Path]:
    """Folders built from their data: export jobs' folders and preference-dataset exports."""
    from alignment.services import runs_dir
    from jobs.models import Job

    var = Path(settings.VAR_DIR).resolve()
    folders: list[Path] = []
    for a in affected:
        if (a.app_label, a.model_name) == ("jobs", "job"):
            job = Job.objects.filter(pk=a.object_id).first()
            raw = (job.params or {}).get("path") if job is not None else None
            folder = Path(raw).resolve() if raw else None
            # only under VAR_DIR, whatever the params say (as jobs.downloads.job_output_folder)
            if folder is not None and folder.is_dir() and folder.is_relative_to(var) and folder != var:
                folders.append(folder)
        elif (a.app_label, a.model_name) == ("alignment", "preferencedataset"):
            folder = runs_dir() / "datasets" / f"dataset-{a.object_id}"
            if folder.is_dir():
                folders.append(folder)
    return folders


def feature_cache_dirs() -> list[Path]:
    """Where derived per-task rows are cached (``analysis.services.features``, text embeddings)."""
    return [Path(settings.VAR_DIR) / "cache" / "features", Path(settings.VAR_DIR) / "cache" / "embeddings"]


def exports_dir() -> Path:
    """Where the admin writes dataset exports (``crowd.admin``: ``VAR_DIR/exports/ifllm-…``)."""
    return Path(settings.VAR_DIR) / "exports"


def export_folders_naming(needles: Iterable[str]) -> list[Path]:
    """Folders directly under :func:`exports_dir` with a file (or a folder name) that holds one of
    ``needles``: exports written by hand (``manage.py export_ifllm`` into it), or whose job row
    was deleted, that no record links to the person. Parquet tables are read (compression hides
    their bytes), other files searched as bytes; the release layout names a folder per worker."""
    import pandas as pd

    words = [n for n in needles if n]
    root = exports_dir()
    if not words or not root.is_dir():
        return []
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in folder.rglob("*"):
            if any(w in path.name for w in words):
                found.append(folder)
                break
            if not path.is_file():
                continue
            if path.suffix == ".parquet":
                frame = pd.read_parquet(path)
                text = frame.select_dtypes(include=["object", "string"]).astype(str).to_csv()
            else:
                text = path.read_bytes().decode("latin-1")
            if any(w in text for w in words):
                found.append(folder)
                break
    return found


def _files_delete(record_pk: int, pseudonym: str, query_ids: list[int], folders: list[Path],
                  needles: Iterable[str] = ()) -> None:
    """After the commit: delete the cache files with their rows and the folders built from them
    (those the records name, then any export folder that still names the person)."""
    from analysis.features.cache import files_with_rows

    n_cache = n_folders = 0
    errors: list[str] = []
    for cache_dir in feature_cache_dirs():
        try:
            for path in files_with_rows(cache_dir, workers=[pseudonym], query_ids=query_ids):
                path.unlink(missing_ok=True)
                n_cache += 1
        except (OSError, ValueError) as exc:  # an unreadable cache file: say so on the record
            errors.append(f"{cache_dir.name}: {type(exc).__name__}")
            logger.exception("withdrawal %s: feature cache %s", record_pk, cache_dir)
    for folder in folders:
        try:
            if folder.is_dir():
                shutil.rmtree(folder)
                n_folders += 1
        except OSError as exc:
            errors.append(f"{folder.name}: {type(exc).__name__}")
            logger.exception("withdrawal %s: folder %s", record_pk, folder)
    try:
        for folder in export_folders_naming(needles):
            shutil.rmtree(folder)
            n_folders += 1
    except (OSError, ValueError) as exc:
        errors.append(f"exports: {type(exc).__name__}")
        logger.exception("withdrawal %s: export folders", record_pk)
    record = Withdrawal.objects.get(pk=record_pk)
    record.counts = {**record.counts, "feature_cache_files": n_cache, "export_folders": n_folders,
                     **({"file_errors": errors} if errors else {})}
    record.save(update_fields=["counts"])


# --- rebuilding ------------------------------------------------------------------------------------------


def _rebuilt_target(app_label: str, model_name: str, pk: int) -> str | None:
    """What an affected object was rebuilt as (``app.model:pk``), if it was."""
    row = (AffectedArtifact.objects.filter(app_label=app_label, model_name=model_name, object_id=pk)
           .exclude(rebuilt_as="").order_by("-rebuilt_at").first())
    return row.rebuilt_as if row is not None else None


def _is_affected(app_label: str, model_name: str, pk: int) -> bool:
    return AffectedArtifact.objects.filter(app_label=app_label, model_name=model_name, object_id=pk).exists()


def artifact_rebuild(*, artifact: AffectedArtifact, user: Any = None) -> str:
    """Run an affected artifact again with the same settings through the existing services, on
    the data as it is now (the withdrawn tasks are gone, and a frozen selection's ``tasks()``
    finds only the tasks that still exist). Returns what it made (``app.model:pk``).

    In place where the services recompute in place (reward runs, leaderboards, study plans: their
    pages then show the new results); a new object where the old one is referenced and may not
    change (preference datasets and training runs, which training and evaluation runs protect;
    data selections, which are frozen). Every unrebuilt mark of the same object, from any
    withdrawal, is closed by the rebuild. Permissions are those of the service or job used.
    """
    from alignment.models import PreferenceDataset, TrainingRun
    from alignment.services import preference_dataset_build, training_run_start
    from analysis.leaderboard_services import leaderboard_start
    from analysis.models import AnalysisFigure, Leaderboard, RewardModelRun, StudyPlan
    from analysis.services import reward_model_run_start
    from jobs.models import Job
    from jobs.services import job_rerun

    artifact.refresh_from_db()  # a rebuild of the same object from another mark closes this one too
    if artifact.rebuilt_at is not None:
        raise WithdrawalError(f"{artifact.label} was already rebuilt ({artifact.rebuilt_as})")
    key = artifact.key
    models = {"analysis.rewardmodelrun": RewardModelRun, "analysis.leaderboard": Leaderboard,
              "analysis.studyplan": StudyPlan, "analysis.analysisfigure": AnalysisFigure,
              "alignment.preferencedataset": PreferenceDataset, "alignment.trainingrun": TrainingRun,
              "jobs.job": Job, "collection.dataselection": DataSelection}
    if key not in models:
        raise WithdrawalError(f"{artifact.label}: an evaluation is rebuilt by starting a new one on the rebuilt "
                              "training runs" if key == "alignment.evaluationrun" else f"{key} cannot be rebuilt")
    obj = models[key].objects.filter(pk=artifact.object_id).first()
    if obj is None:
        raise WithdrawalError(f"{artifact.label} no longer exists")
    with transaction.atomic():
        if key == "analysis.rewardmodelrun":
            obj = reward_model_run_start(run=obj, user=user)
            made = f"jobs.job:{obj.job_id}"
        elif key == "analysis.leaderboard":
            made = f"jobs.job:{leaderboard_start(leaderboard=obj, user=user).pk}"
        elif key in ("analysis.studyplan", "analysis.analysisfigure", "jobs.job"):
            job = obj if key == "jobs.job" else obj.job
            if job is None:
                raise WithdrawalError(f"{artifact.label} has no job to run again")
            made = f"jobs.job:{job_rerun(job=job, user=user).pk}"
        elif key == "alignment.preferencedataset":
            made = f"alignment.preferencedataset:{_dataset_rebuild(obj, user, preference_dataset_build).pk}"
        elif key == "alignment.trainingrun":
            made = f"alignment.trainingrun:{_training_rebuild(obj, user, training_run_start).pk}"
        else:
            made = f"collection.dataselection:{_selection_rebuild(obj, user).pk}"
        AffectedArtifact.objects.filter(
            app_label=artifact.app_label, model_name=artifact.model_name, object_id=artifact.object_id,
            rebuilt_at__isnull=True,
        ).update(rebuilt_at=timezone.now(), rebuilt_by=_acting(user), rebuilt_as=made)
    artifact.refresh_from_db()
    return made


def _dataset_rebuild(ds, user: Any, build) -> Any:
    _require(user, "alignment.add_preferencedataset")
    params = ds.params or {}
    reward_run = ds.reward_run
    return build(
        name=f"{ds.name} (rebuilt after a withdrawal)"[:200], source=ds.source, reward_run=reward_run,
        reward_model=ds.reward_model, reward_protocol=ds.reward_protocol, valid=params.get("valid", 0.1),
        test=params.get("test", 0.1), seed=params.get("seed", 0), user=_acting(user), selection=ds.selection,
    )


def _replacement(obj: Any) -> Any:
    """The rebuilt version of an affected object, or the object itself when it was not affected."""
    from django.apps import apps

    meta = obj._meta
    if not _is_affected(meta.app_label, meta.model_name, obj.pk):
        return obj
    made = _rebuilt_target(meta.app_label, meta.model_name, obj.pk)
    if made is None or not made.startswith(f"{meta.app_label}.{meta.model_name}:"):
        return None
    return apps.get_model(meta.app_label, meta.model_name).objects.filter(pk=int(made.rsplit(":", 1)[1])).first()


def _training_rebuild(run, user: Any, start) -> Any:
    """A new training run with the same method, base model and config, on the rebuilt dataset
    (rebuilt here when it was not yet) and from the rebuilt SFT run (which must exist first)."""
    from alignment.models import PreferenceDataset

    dataset = run.dataset
    if dataset is not None:
        replacement = _replacement(dataset)
        if replacement is None:
            mark = AffectedArtifact.objects.filter(app_label="alignment", model_name="preferencedataset",
                                                   object_id=dataset.pk, rebuilt_at__isnull=True).first()
            artifact_rebuild(artifact=mark, user=user)
            replacement = _replacement(PreferenceDataset.objects.get(pk=dataset.pk))
        dataset = replacement
    sft_run = run.sft_run
    if sft_run is not None:
        replacement = _replacement(sft_run)
        if replacement is None:
            raise WithdrawalError(f"rebuild its SFT run {sft_run} first (and let it finish)")
        sft_run = replacement
    return start(method=run.method, base_model=run.base_model if sft_run is None else "", dataset=dataset,
                 sft_run=sft_run, config=run.config, name=f"{run} (rebuilt after a withdrawal)"[:200],
                 user=user)


def _selection_rebuild(selection: DataSelection, user: Any) -> DataSelection:
    """The next version of the selection with the same rules (what the admin's "new version" does)."""
    from ..models import Study
    from .selection import data_selection_create

    rules = selection.rules or {}
    return data_selection_create(
        name=selection.name, thresholds=rules.get("thresholds"), scope=rules.get("scope", "all"),
        study=Study.objects.filter(pk=rules.get("study")).first() if rules.get("study") else None,
        require_qc=rules.get("require_qc", True), validation=rules.get("validation", True), user=user,
        note=f"new version of {selection} after a participant's withdrawal",
    )
