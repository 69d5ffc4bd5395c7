"""Writes of the crowd app, one module per concern: ``platform`` (MTurk and Prolific calls),
``prolific`` (Prolific's API), ``qc`` (quality control and review decisions), ``review``
(the review queue's calls), ``export`` (the cleaned dataset).

Every service that spends money or changes what a worker sees on a platform takes the acting
``user`` and checks the permission itself (``user=None`` means the system: Celery, commands), so
a view or admin action that forgets a check still cannot pay. Platform calls go through
:mod:`crowd.mturk` or :mod:`crowd.prolific_api` and are written to :class:`~crowd.models.AuditLog`
whether they succeed or not.
"""

from .. import mturk
from . import eyetracking
from .base import CrowdError
from .export import dataset_export
from .platform import (
    assignment_approve,
    assignment_block,
    assignment_match,
    assignment_reject,
    assignment_worker,
    bonus_pay,
    hit_create,
    hit_create_retry,
    hit_sync_assignments,
    mturk_client,
    mturk_for,
    prolific_submissions_import,
    worker_block,
    workers_notify,
)
from .prolific import (
    prolific_approve,
    prolific_bonus_confirm,
    prolific_bonus_pay,
    prolific_configured,
    prolific_for,
    prolific_reject,
    prolific_request_return,
    prolific_study_draft_create,
    prolific_study_pause,
    prolific_study_publish,
    prolific_submissions_sync,
)
from .qc import release_worker_table, task_completed, task_exclude, task_keep, task_qc_compute, task_study
from .review import (
    QC_FLAGS,
    QUEUE_OVER,
    qc_queue_task_ids,
    review_call_save,
    review_calls,
    review_queue_gone,
    review_queue_task_ids,
    task_review_status,
)
from .selection import data_selection_create, empty_selection_message, selection_candidates, selection_frame

__all__ = [
    "eyetracking",
    "CrowdError",
    "assignment_approve",
    "assignment_block",
    "assignment_match",
    "assignment_reject",
    "assignment_worker",
    "bonus_pay",
    "data_selection_create",
    "dataset_export",
    "hit_create",
    "hit_create_retry",
    "hit_sync_assignments",
    "mturk",
    "mturk_client",
    "mturk_for",
    "prolific_approve",
    "prolific_bonus_confirm",
    "prolific_bonus_pay",
    "prolific_configured",
    "prolific_for",
    "prolific_reject",
    "prolific_request_return",
    "prolific_study_draft_create",
    "prolific_study_pause",
    "prolific_study_publish",
    "prolific_submissions_import",
    "prolific_submissions_sync",
    "release_worker_table",
    "QC_FLAGS",
    "QUEUE_OVER",
    "qc_queue_task_ids",
    "review_call_save",
    "review_calls",
    "review_queue_gone",
    "review_queue_task_ids",
    "task_review_status",
    "selection_candidates",
    "empty_selection_message",
    "selection_frame",
    "task_completed",
    "task_exclude",
    "task_keep",
    "task_qc_compute",
    "task_study",
    "worker_block",
    "workers_notify",
]
