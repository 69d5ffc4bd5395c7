"""Background jobs of the crowd app (``crowd.*``, default queue): QC, assignment sync, export.

Each is a ``jobs.runner.job_task``: progress and failures are recorded on the Job row. QC and
sync are idempotent (recomputing overwrites the same TaskQC row; syncing upserts by assignment
id), which is what makes the runner's ``acks_late`` redelivery safe.
"""

from __future__ import annotations

from jobs.runner import JobContext, job_task


@job_task("crowd.compute_qc", permission="crowd.review_task")
def compute_qc(ctx: JobContext, *, task_ids: list[int] | None = None, release: bool = False) -> dict:
    """Compute QC for the given tasks, or for every task with trajectories (``release``: only
    imported release tasks)."""
    from collection.models import Platform, Task

    from .services import task_qc_compute

    qs = Task.objects.counted().select_related("worker")
    if task_ids is not None:
        qs = qs.filter(pk__in=task_ids)
    else:
        qs = qs.filter(chunks__isnull=False).distinct()
        if release:
            qs = qs.filter(worker__platform=Platform.RELEASE)
    tasks = list(qs.order_by("pk"))
    flagged = 0
    for done, task in enumerate(tasks, start=1):
        flagged += task_qc_compute(task=task).flagged
        ctx.progress(100 * done / max(len(tasks), 1), f"{done} of {len(tasks)} tasks")
    return {"tasks": len(tasks), "flagged": flagged}


@job_task("crowd.sync_assignments", permission="crowd.change_assignment")
def sync_assignments(ctx: JobContext, *, hit_ids: list[int]) -> dict:
    """Mirror the assignments of the given HIT rows (primary keys) from MTurk."""
    from .models import HIT
    from .services import hit_sync_assignments

    totals = {"seen": 0, "new": 0, "flagged": 0}
    hits = list(HIT.objects.filter(pk__in=hit_ids).select_related("study"))
    for done, hit in enumerate(hits, start=1):
        for key, value in hit_sync_assignments(hit=hit).items():
            totals[key] += value
        ctx.progress(100 * done / max(len(hits), 1), f"{done} of {len(hits)} HITs")
    return totals


@job_task("crowd.prolific_sync", permission="crowd.change_assignment")
def prolific_sync(ctx: JobContext, *, study_ids: list[int]) -> dict:
    """Mirror the submissions of the given Prolific studies (every page) and match them to tasks."""
    from .models import Study
    from .services import prolific_submissions_sync

    totals = {"seen": 0, "new": 0, "flagged": 0, "returned": 0}
    studies = list(Study.objects.filter(pk__in=study_ids).exclude(prolific_study_id=""))
    for done, study in enumerate(studies, start=1):
        # As the user who started the job: their name is on each call in the audit log.
        for key, value in prolific_submissions_sync(study=study, user=ctx.job.created_by).items():
            totals[key] += value
        ctx.progress(100 * done / max(len(studies), 1), f"{done} of {len(studies)} studies")
    return totals


@job_task("crowd.export_dataset", permission="access.export_dataset", download_permission="access.export_dataset")
def export_dataset(
    ctx: JobContext,
    *,
    path: str,
    formats: list[str] | None = None,
    include_free_text: bool = False,
    include_demographics: bool = True,
    selection_pk: int | None = None,
) -> dict:
    """Export the pseudonymised dataset of data selection ``selection_pk`` (default: every task
    not excluded by staff) to ``path`` (see ``services.dataset_export``)."""
    from collection.models import DataSelection

    from .services import dataset_export

    selection = DataSelection.objects.get(pk=selection_pk) if selection_pk is not None else None
    return dataset_export(
        selection=selection,
        path=path,
        formats=tuple(formats or ("release", "parquet", "hf")),
        include_free_text=include_free_text,
        include_demographics=include_demographics,
        progress=lambda done, total: ctx.progress(100 * done / max(total, 1), f"{done} of {total} tasks"),
    )
