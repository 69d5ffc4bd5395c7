"""Writes of the crowd app: platform calls, QC, review decisions and exports.

Every service that spends money or changes what a worker sees on a platform takes the acting
``user`` and checks the permission itself (``user=None`` means the system: Celery, commands), so
a view or admin action that forgets a check still cannot pay. Platform calls go through
:mod:`crowd.mturk` and are written to :class:`~crowd.models.AuditLog` whether they succeed or not.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from collection.models import Platform, Task, Worker

from . import anonymise, mturk, prolific, qc
from .models import HIT, Assignment, AuditLog, Payment, Study, TaskQC


class CrowdError(Exception):
    """A crowd operation is not allowed in the current state (shown to staff as is)."""


def _require(user: Any, perm: str) -> None:
    if user is not None and not user.has_perm(perm):
        raise PermissionDenied(f"{getattr(user, 'username', user)} lacks {perm}")


def _acting(user: Any) -> Any:
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


# --------------------------------------------------------------------------- MTurk plumbing
def mturk_client(*, environment: str) -> Any:
    """The boto3 client for ``environment`` (tests replace this function with a stubbed client)."""
    return mturk.make_client(environment)


def mturk_for(*, study: Study, user: Any = None) -> mturk.MTurk:
    """An :class:`crowd.mturk.MTurk` for the study's environment that audits every call."""
    if study.platform != Study.Platform.MTURK:
        raise CrowdError(f"study {study} is not on MTurk")

    def audit(operation: str, params: dict, response: dict | None, error: str) -> None:
        AuditLog.objects.create(
            user=_acting(user),
            platform=Study.Platform.MTURK,
            environment=study.environment,
            operation=operation,
            request=_jsonable(params),
            response=_jsonable(response) if response is not None else None,
            ok=not error,
            error=error,
            study=study,
        )

    return mturk.MTurk(environment=study.environment, client=mturk_client(environment=study.environment), audit=audit)


def _study_qualification(*, study: Study, api: mturk.MTurk) -> str | None:
    """The study's retake-blocking qualification, created on first use."""
    if not study.block_retakes:
        return None
    if not study.retake_qualification_id:
        study.retake_qualification_id = api.create_qualification_type(
            name=f"IFllm Lab: took part in {study.name} ({study.pk})",
            description="Granted when a worker completes this study; the study's HITs are hidden from them.",
        )
        study.save(update_fields=["retake_qualification_id"])
    return study.retake_qualification_id


# --------------------------------------------------------------------------- HITs
def hit_create(*, study: Study, user: Any = None) -> HIT:
    """Create one HIT for the study. The HIT row and its token are stored before the call, so a
    retry (:func:`hit_create_retry`) can never create a second HIT on MTurk."""
    _require(user, "crowd.pay_workers")
    if not study.external_url:
        raise CrowdError("the study has no external URL (the site's HTTPS entry page)")
    hit = HIT.objects.create(
        study=study,
        environment=study.environment,
        unique_request_token=f"ifllm-hit-{uuid.uuid4().hex}",
        max_assignments=study.max_assignments,
        reward=study.reward,
    )
    return hit_create_retry(hit=hit, user=user)


def hit_create_retry(*, hit: HIT, user: Any = None) -> HIT:
    """(Re)send CreateHIT for a HIT row that is still CREATING or FAILED, with its own token."""
    _require(user, "crowd.pay_workers")
    if hit.hit_id:
        return hit
    study = hit.study
    api = mturk_for(study=study, user=user)
    try:
        qualification = _study_qualification(study=study, api=api)
        answer = api.create_hit(
            title=study.title,
            description=study.description,
            keywords=study.keywords,
            url=study.external_url,
            frame_height=study.frame_height,
            reward=hit.reward,
            max_assignments=hit.max_assignments,
            assignment_duration_s=study.assignment_duration_s,
            lifetime_s=study.lifetime_s,
            auto_approval_delay_s=study.auto_approval_delay_s,
            qualification_requirements=mturk.qualification_requirements(
                environment=study.environment,
                masters=study.require_masters,
                min_percent_approved=study.min_percent_approved,
                min_hits_approved=study.min_hits_approved,
                locales=[c for c in study.locales.split(",") if c.strip()],
                retake_qualification_id=qualification,
            ),
            unique_request_token=hit.unique_request_token,
            annotation=f"study {study.pk}",
        )
    except mturk.MTurkError as exc:
        existing = mturk.existing_hit_id(exc) if mturk.already_done(exc) else None
        if existing is None:
            hit.status, hit.error = HIT.Status.FAILED, str(exc)
            hit.save(update_fields=["status", "error"])
            raise
        # The first call went through but its answer was lost: MTurk names the HIT it made.
        hit.hit_id, hit.status, hit.error = existing, HIT.Status.ASSIGNABLE, ""
        hit.save(update_fields=["hit_id", "status", "error"])
        return hit
    hit.hit_id = answer["HITId"]
    hit.hit_type_id = answer.get("HITTypeId", "")
    hit.status = answer.get("HITStatus", HIT.Status.ASSIGNABLE)
    hit.expires_at = answer.get("Expiration")
    hit.error = ""
    hit.save()
    return hit


# --------------------------------------------------------------------------- assignments
def assignment_match(*, assignment: Assignment) -> Assignment:
    """Find the task this submission is for and record what does not add up.

    Matching: the task that stored this assignment id, else the task with the submitted
    completion code. Flags: no task; task not completed; code differs from the task's; task
    belongs to another platform worker; (Prolific) code not listed by the study.
    """
    task = Task.objects.select_related("worker").filter(assignment_id=assignment.assignment_id).first()
    if task is None and assignment.completion_code:
        task = Task.objects.select_related("worker").filter(completion_code=assignment.completion_code).first()
    flags: list[str] = []
    if task is None:
        flags.append(Assignment.Flag.NO_TASK)
    else:
        if task.status != Task.Status.COMPLETED:
            flags.append(Assignment.Flag.NOT_COMPLETED)
        if assignment.platform == Study.Platform.MTURK and (task.completion_code or "") != assignment.completion_code:
            flags.append(Assignment.Flag.CODE_MISMATCH)
        if task.worker.platform_worker_id and task.worker.platform_worker_id != assignment.platform_worker_id:
            flags.append(Assignment.Flag.WORKER_MISMATCH)
    if assignment.platform == Study.Platform.PROLIFIC:
        if prolific.completion_decision(assignment.completion_code, assignment.study.prolific_completion_codes) != (
            prolific.APPROVE
        ):
            flags.append(Assignment.Flag.UNKNOWN_CODE)
    assignment.task = task
    assignment.worker = (
        task.worker
        if task is not None
        else Worker.objects.filter(
            platform=assignment.platform, platform_worker_id=assignment.platform_worker_id
        ).first()
    )
    assignment.flags = [str(f) for f in flags]
    assignment.flagged = bool(flags)
    if flags and assignment.status == Assignment.Status.SUBMITTED:
        assignment.status = Assignment.Status.REVIEW
    return assignment


def hit_sync_assignments(*, hit: HIT, user: Any = None) -> dict[str, int]:
    """Mirror every assignment of a HIT (all pages) and match each to its task.

    Local decisions are kept: a row this lab marked for review stays so until staff decide,
    unless MTurk says it was approved or rejected meanwhile (e.g. auto-approval).
    """
    _require(user, "crowd.change_assignment")
    if not hit.hit_id:
        raise CrowdError("this HIT was never created on MTurk")
    api = mturk_for(study=hit.study, user=user)
    counts = {"seen": 0, "new": 0, "flagged": 0}
    now = timezone.now()
    for item in api.list_assignments(hit.hit_id):
        counts["seen"] += 1
        answer = mturk.parse_answer(item.get("Answer"))
        with transaction.atomic():
            row, created = Assignment.objects.select_for_update().get_or_create(
                platform=Study.Platform.MTURK,
                assignment_id=item["AssignmentId"],
                defaults={"study": hit.study, "hit": hit, "platform_worker_id": item["WorkerId"]},
            )
            counts["new"] += created
            remote = item.get("AssignmentStatus", Assignment.Status.SUBMITTED)
            if remote != Assignment.Status.SUBMITTED or row.status != Assignment.Status.REVIEW:
                row.status = remote
            row.answer = answer
            row.completion_code = (
                answer.get("completion_code") or answer.get("completionCode") or answer.get("code") or ""
            ).strip()
            row.accepted_at = item.get("AcceptTime")
            row.submitted_at = item.get("SubmitTime")
            row.synced_at = now
            assignment_match(assignment=row)
            row.save()
            counts["flagged"] += row.flagged
            if row.task is not None and row.task.status == Task.Status.COMPLETED and not row.flagged:
                task_pk = row.task.pk
                transaction.on_commit(lambda pk=task_pk: _enqueue_qc(pk))
    hit.synced_at = now
    hit.save(update_fields=["synced_at"])
    return counts


def _decidable(assignment: Assignment) -> None:
    if assignment.status not in (Assignment.Status.SUBMITTED, Assignment.Status.REVIEW):
        raise CrowdError(f"assignment {assignment} is {assignment.status}; only submitted ones can be decided")


def assignment_approve(
    *,
    assignment: Assignment,
    user: Any = None,
    feedback: str = "",
    bonus: Decimal | None = None,
    bonus_reason: str = "",
) -> Assignment:
    """Approve a submitted assignment; a bonus, if any, is paid FIRST (an approved assignment
    cannot be taken back, so a failed bonus must stop the approval, not follow it).
    Leaves the assignment APPROVED, and grants the retake-blocking qualification."""
    _require(user, "crowd.pay_workers")
    _decidable(assignment)
    if bonus:
        bonus_pay(assignment=assignment, user=user, amount=bonus, reason=bonus_reason or "Thank you!")
    if assignment.platform == Study.Platform.MTURK:
        api = mturk_for(study=assignment.study, user=user)
        api.approve(assignment.assignment_id, feedback=feedback)
        _grant_retake_block(assignment=assignment, api=api)
    assignment.status = Assignment.Status.APPROVED
    assignment.requester_feedback = feedback
    assignment.decided_at, assignment.decided_by = timezone.now(), _acting(user)
    assignment.save()
    return assignment


def assignment_reject(*, assignment: Assignment, user: Any = None, feedback: str) -> Assignment:
    """Reject with feedback for the worker (required). Leaves the assignment REJECTED."""
    _require(user, "crowd.pay_workers")
    if not (feedback or "").strip():
        raise ValidationError("A rejection needs feedback that tells the worker why.", code="feedback_required")
    _decidable(assignment)
    if assignment.platform == Study.Platform.MTURK:
        mturk_for(study=assignment.study, user=user).reject(assignment.assignment_id, feedback=feedback)
    assignment.status = Assignment.Status.REJECTED
    assignment.requester_feedback = feedback
    assignment.decided_at, assignment.decided_by = timezone.now(), _acting(user)
    assignment.save()
    return assignment


def _grant_retake_block(*, assignment: Assignment, api: mturk.MTurk) -> None:
    qualification = assignment.study.retake_qualification_id
    if not qualification or assignment.qualification_granted or not assignment.study.block_retakes:
        return
    api.grant_qualification(qualification, assignment.platform_worker_id)
    assignment.qualification_granted = True


def bonus_pay(*, assignment: Assignment, user: Any = None, amount: Decimal, reason: str, key: str = "bonus") -> Payment:
    """Pay a bonus once per (assignment, key): a repeated call returns the paid row, and a retry
    after a failure reuses the first token, so MTurk can never pay it twice."""
    _require(user, "crowd.pay_workers")
    amount = Decimal(str(amount))
    if amount <= 0:
        raise ValidationError("A bonus must be positive.", code="bonus_amount")
    if not (reason or "").strip():
        raise ValidationError("Workers see the bonus reason; it cannot be empty.", code="bonus_reason")
    with transaction.atomic():
        payment, _ = Payment.objects.select_for_update().get_or_create(
            assignment=assignment,
            key=key,
            defaults={
                "amount": amount,
                "reason": reason,
                "unique_request_token": f"ifllm-bonus-{uuid.uuid4().hex}",
                "created_by": _acting(user),
            },
        )
    if payment.status == Payment.Status.PAID:
        return payment
    if payment.amount != amount:
        raise CrowdError(f"bonus '{key}' of this assignment was started with ${payment.amount}, not ${amount}")
    if assignment.platform != Study.Platform.MTURK:
        raise CrowdError("bonuses on this platform are paid by hand (see crowd/prolific.py)")
    api = mturk_for(study=assignment.study, user=user)
    try:
        api.send_bonus(
            worker_id=assignment.platform_worker_id,
            assignment_id=assignment.assignment_id,
            amount=payment.amount,
            reason=payment.reason,
            unique_request_token=payment.unique_request_token,
        )
    except mturk.MTurkError as exc:
        if not mturk.already_done(exc):
            payment.status, payment.error = Payment.Status.FAILED, str(exc)
            payment.save(update_fields=["status", "error"])
            raise
    payment.status, payment.error, payment.paid_at = Payment.Status.PAID, "", timezone.now()
    payment.save(update_fields=["status", "error", "paid_at"])
    return payment


def worker_block(*, worker: Worker, user: Any = None, reason: str, study: Study | None = None) -> Worker:
    """Block a worker: on MTurk (CreateWorkerBlock, through ``study``'s environment or the
    environment of their latest assignment), and locally (``Worker.blocked``)."""
    _require(user, "crowd.pay_workers")
    if not (reason or "").strip():
        raise ValidationError("MTurk requires a reason to block a worker.", code="block_reason")
    if worker.platform == Platform.MTURK and worker.platform_worker_id:
        if study is None:
            last = Assignment.objects.filter(worker=worker, platform=Study.Platform.MTURK).first()
            study = last.study if last else Study.objects.filter(platform=Study.Platform.MTURK).first()
        if study is None:
            raise CrowdError("no MTurk study to block this worker through")
        mturk_for(study=study, user=user).block(worker.platform_worker_id, reason=reason)
    worker.blocked = True
    worker.save(update_fields=["blocked"])
    return worker


def workers_notify(*, study: Study, worker_ids: list[str], subject: str, message: str, user: Any = None) -> list:
    """Send a message to MTurk workers (by platform id); returns MTurk's per-worker failures."""
    _require(user, "crowd.pay_workers")
    if not subject.strip() or not message.strip():
        raise ValidationError("Subject and message are required.", code="notify_empty")
    return mturk_for(study=study, user=user).notify(sorted(set(worker_ids)), subject=subject, message=message)


def prolific_submissions_import(*, study: Study, csv_text: str, user: Any = None) -> dict[str, int]:
    """Record the submissions of a Prolific export, matched to tasks like MTurk assignments.

    A submission is the task whose ``assignment_id`` is its session/submission id (the site
    stores ``SESSION_ID`` there), else the task with its completion code. Codes the study maps
    to ``approve`` on a completed task are left SUBMITTED (ready to approve); others need review.
    """
    _require(user, "crowd.change_assignment")
    counts = {"seen": 0, "new": 0, "flagged": 0}
    for row in prolific.parse_submissions_csv(csv_text):
        counts["seen"] += 1
        with transaction.atomic():
            item, created = Assignment.objects.get_or_create(
                platform=Study.Platform.PROLIFIC,
                assignment_id=row["submission_id"],
                defaults={"study": study, "platform_worker_id": row["participant_id"]},
            )
            counts["new"] += created
            item.completion_code = row.get("completion_code", "")
            item.synced_at = timezone.now()
            assignment_match(assignment=item)
            item.save()
            counts["flagged"] += item.flagged
    return counts


# --------------------------------------------------------------------------- quality control
def task_study(*, task: Task) -> Study | None:
    """The study a task was collected for: through its assignment, else its HIT id."""
    assignment = Assignment.objects.filter(task=task).select_related("study").first()
    if assignment is not None:
        return assignment.study
    if task.hit_id:
        hit = HIT.objects.filter(hit_id=task.hit_id).select_related("study").first()
        if hit is not None:
            return hit.study
    return None


def _ms(value: Any) -> float | None:
    return None if value is None else value.timestamp() * 1000.0


def _validation_passed(task: Task) -> bool | None:
    attempts = getattr(task, "calibration_attempts", None)
    if attempts is not None:
        last = attempts.order_by("-created_at", "-pk").first()
        if last is not None:
            return bool(last.passed)
    passed = (task.validation or {}).get("passed")
    return None if passed is None else bool(passed)


def task_qc_compute(*, task: Task, thresholds: dict[str, float | None] | None = None) -> TaskQC:
    """Compute (or recompute) a task's QC figures and flags; a staff decision is kept."""
    from collection.selectors import task_samples, turns_frame

    study = task_study(task=task)
    if thresholds is None:
        thresholds = study.thresholds() if study is not None else dict(qc.DEFAULT_THRESHOLDS)
    samples = task_samples(task=task)
    turns = turns_frame(tasks=Task.objects.filter(pk=task.pk))
    mode = task.mode or ("pairwise" if task.model_2 else "pointwise")
    imported = task.worker.platform == Platform.RELEASE
    metrics = qc.task_metrics(
        samples,
        turns,
        mode=mode,
        calibration_score=task.calibration_score,
        validation_passed=_validation_passed(task),
        summary=task.summary,
        # Release times are in the server's clock, sometimes hours off the samples' epoch.
        started_ms=None if imported else _ms(task.chat_started_at or task.started_at),
        finished_ms=None if imported else _ms(task.finished_at),
    )
    reasons = qc.flag_reasons(metrics, thresholds)
    codes = [r["code"] for r in reasons]
    fields = {
        name: metrics.get(name)
        for name in (
            "calibration_score", "validation_passed", "response_score", "max_index_score", "sampling_rate_hz",
            "median_interval_ms", "head_in_box_share", "time_on_task_s", "max_log_gap_s", "total_gap_s",
        )
    }  # fmt: skip
    fields.update(
        n_gaze_samples=metrics["n_gaze_samples"],
        n_mouse_samples=metrics["n_mouse_samples"],
        n_gaps=metrics["n_gaps"],
        summary_words=metrics["summary_words"],
        n_turns=metrics["n_turns"],
    )
    row, _ = TaskQC.objects.update_or_create(
        task=task,
        defaults={
            **fields,
            "study": study,
            "metrics": _jsonable(metrics),
            "thresholds": _jsonable(thresholds),
            "flagged": bool(reasons),
            "flags": "," + ",".join(codes) + "," if codes else "",
            "reasons": _jsonable(reasons),
        },
    )
    return row


def _enqueue_qc(task_pk: int) -> None:
    from jobs.services import job_start

    job_start(kind="crowd.compute_qc", params={"task_ids": [task_pk]})


def task_completed(*, task: Task) -> None:
    """Hook for the site's completion service: compute QC once the completion has committed."""
    transaction.on_commit(lambda pk=task.pk: _enqueue_qc(pk))


def task_exclude(*, task: Task, user: Any = None, note: str = "") -> Task:
    """Leave the task out of every exported dataset (reversible with :func:`task_keep`)."""
    _require(user, "crowd.review_task")
    return _decide(task=task, user=user, note=note, decision=TaskQC.Decision.EXCLUDE)


def task_keep(*, task: Task, user: Any = None, note: str = "") -> Task:
    """Keep a task in the dataset even if flagged (a staff judgement, recorded with its author)."""
    _require(user, "crowd.review_task")
    return _decide(task=task, user=user, note=note, decision=TaskQC.Decision.KEEP)


@transaction.atomic
def _decide(*, task: Task, user: Any, note: str, decision: str) -> Task:
    task.excluded = decision == TaskQC.Decision.EXCLUDE
    task.save(update_fields=["excluded"])
    row, _ = TaskQC.objects.get_or_create(task=task)
    row.decision, row.decided_by, row.decided_at = decision, _acting(user), timezone.now()
    if note:
        row.note = note
    row.save(update_fields=["decision", "decided_by", "decided_at", "note"])
    return task


# --------------------------------------------------------------------------- export
def dataset_export(
    *,
    path: str | Path,
    user: Any = None,
    formats: tuple[str, ...] = ("release", "parquet", "hf"),
    include_free_text: bool = False,
    include_demographics: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Export the cleaned dataset (excluded tasks left out) with keyed worker pseudonyms.

    ``release``: the IFllm release layout; ``parquet``: one table per entity; ``hf``: Hugging
    Face preference JSONL (``prompt``/``chosen``/``rejected``) with a dataset card. Platform ids,
    assignment/HIT ids, completion codes and raw duplicate rows are never written; free text typed
    by workers (summary, feedback, copied sentences, location) only with ``include_free_text``.
    """
    from collection.release import writer
    from collection.selectors import task_samples, turns_frame
    from collection.services.release_export import tasks_frame, workers_frame

    _require(user, "crowd.export_dataset")
    unknown = set(formats) - {"release", "parquet", "hf"}
    if unknown:
        raise ValueError(f"unknown export format(s): {sorted(unknown)}")
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    tasks = Task.objects.filter(excluded=False)
    workers = Worker.objects.filter(tasks__in=tasks).distinct()
    mapping = anonymise.pseudonym_map(settings.IFLLM_PSEUDONYM_KEY, workers.values_list("pseudonym", flat=True))
    blank_tasks = () if include_free_text else anonymise.TASK_FREE_TEXT
    blank_workers: tuple[str, ...] = () if include_free_text else anonymise.WORKER_FREE_TEXT
    if not include_demographics:
        blank_workers = tuple(set(blank_workers) | set(anonymise.DEMOGRAPHICS))
    wf = anonymise.anonymise_frame(workers_frame(workers), mapping, blank=blank_workers)
    tf = anonymise.anonymise_frame(tasks_frame(tasks), mapping, blank=blank_tasks)
    qf = anonymise.anonymise_frame(turns_frame(tasks=tasks), mapping)
    with_samples = list(tasks.filter(chunks__isnull=False).distinct().select_related("worker"))
    counts: dict[str, Any] = {"workers": len(wf), "tasks": len(tf), "turns": len(qf), "samples": 0}

    def task_key(task: Task) -> int:
        return task.release_task_id if task.release_task_id is not None else task.pk

    if "release" in formats:
        out = root / "release"
        writer.write_tables(out, workers=wf, tasks=tf, queries=qf.drop(columns=["turn_id", "task_pk"]))
    if "parquet" in formats:
        out = root / "parquet"
        out.mkdir(parents=True, exist_ok=True)
        wf.drop(columns=["raw_overrides"], errors="ignore").to_parquet(out / "workers.parquet", index=False)
        tf.drop(columns=["raw_overrides"], errors="ignore").to_parquet(out / "tasks.parquet", index=False)
        qf.drop(columns=["raw_overrides"]).to_parquet(out / "turns.parquet", index=False)
    sample_frames = []
    for done, task in enumerate(with_samples, start=1):
        samples = task_samples(task=task)
        counts["samples"] += len(samples)
        pseudonym = mapping[task.worker.pseudonym]
        if "release" in formats:
            files = task.extra.get("release_files", {})
            writer.write_task_trajectories(
                root / "release" / "user_behavior" / pseudonym / str(task_key(task)),
                samples,
                mode=task.mode or "pointwise",
                rel_columns=files.get("rel_columns"),
                unquoted=files.get("unquoted"),
            )
        if "parquet" in formats:
            samples.insert(0, "task_id", task_key(task))
            samples.insert(0, "worker", pseudonym)
            for col in ("signal", "frame"):
                samples[col] = samples[col].astype(str)
            sample_frames.append(samples)
        if progress:
            progress(done, len(with_samples))
    if "parquet" in formats and sample_frames:
        pd.concat(sample_frames, ignore_index=True).to_parquet(root / "parquet" / "samples.parquet", index=False)
    if "hf" in formats:
        counts["preference_records"] = _write_hf(root / "hf", qf, counts)
    manifest = {
        "created_at": timezone.now().isoformat(),
        "formats": list(formats),
        "include_free_text": include_free_text,
        "include_demographics": include_demographics,
        "excluded_tasks_left_out": Task.objects.filter(excluded=True).count(),
        "pseudonyms": "HMAC-SHA256 under IFLLM_PSEUDONYM_KEY (stable across exports with the same key)",
        "counts": counts,
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return counts


def _write_hf(out: Path, turns: pd.DataFrame, counts: dict[str, Any]) -> int:
    from alignment.training.preference import records_from_explicit_labels, write_jsonl

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
    records = records_from_explicit_labels(pairs, source="ifllm-workers")
    write_jsonl(records, out / "preferences.jsonl")
    (out / "README.md").write_text(_dataset_card(n_records=len(records), counts=counts))
    return len(records)


def _dataset_card(*, n_records: int, counts: dict[str, Any]) -> str:
    return f"""---
license: apache-2.0
language:
- en
task_categories:
- text-generation
pretty_name: IFllm pairwise preferences (cleaned)
size_categories:
- n<1K
configs:
- config_name: default
  data_files:
  - split: train
    path: preferences.jsonl
---

# IFllm pairwise preferences (cleaned)

Pairwise preferences of crowd workers between two LLM answers to the same query, collected with
the IFllm Lab site (gaze and mouse were tracked while they read; see the release layout export
for the trajectories).

- `prompt`: the worker's query as typed (without any formatting instruction sent to the models).
- `chosen` / `rejected`: the answer the worker preferred / did not prefer.
- `pair_id`: the query id of the turn; `confidence` is empty (explicit labels); `source`
  says where the label comes from.

{n_records} records, from {counts["tasks"]} tasks of {counts["workers"]} workers that passed quality
control (tasks excluded by staff are left out; turns with a provider error, a missing label or
identical answers are skipped).

## Privacy

Worker ids are replaced by keyed pseudonyms (HMAC-SHA256 under a lab secret). No platform ids,
assignment ids, IP addresses or free text describing the worker are included unless the exporting
staff member opted in.
"""


def release_worker_table(*, thresholds: dict[str, float | None]) -> pd.DataFrame:
    """Per release worker: mean QC figures over their tasks with trajectories, and whether the
    thresholds would exclude them (see :func:`crowd.qc.worker_table`)."""
    rows = TaskQC.objects.filter(task__worker__platform=Platform.RELEASE, n_gaze_samples__gt=0).values(
        "task__worker__pseudonym", *[r.metric for r in qc.RULES if r.metric != "validation_passed"]
    )
    df = pd.DataFrame(list(rows)).rename(columns={"task__worker__pseudonym": "worker"})
    if df.empty:
        return df
    return qc.worker_table(df, thresholds)
