"""Services of the worker-facing study: every write of the study flow goes through here.

The task's ``status`` is the state machine (``Task.Status``)::

    CHOSEN --calibration passed--> CHATTING --finish (N turns, T s)--> POST_TASK --answers--> COMPLETED
       \\--calibration started--> CALIBRATING --/

Each service checks the transition it performs and raises :class:`StudyError` otherwise, so a
reload, a double click or a hand-made request can never skip a step. Views only translate
``StudyError`` to a message or an HTTP 4xx.

One module per part of the flow, in the order a worker meets them: ``workers`` (settings,
identity, consent, demographics), ``assignment`` (topics and balanced mode/model assignment),
``calibration``, ``turns`` (the chat), ``completion`` (post-task questions, completion code) and
``expiry`` (open tasks whose worker left);
``base`` holds ``StudyError``. Every name is re-exported here, so callers import
``collection.services.study``.
"""

from __future__ import annotations

from .assignment import (
    Entry,
    tasks_create_for_topics,
    tasks_open,
    topic_pool_draw,
    topics_available,
)
from .base import (
    MAX_QUERY_CHARS,
    OPEN_STATUSES,
    StudyError,
)
from .calibration import (
    assignment_way_out,
    attempt_failure_reason,
    calibration_attempt_record,
    calibration_failure_reason,
    task_calibration_start,
    validation_rule,
)
from .completion import (
    POST_STEPS,
    task_complete,
    task_completeness_problems,
    task_post_answer,
    task_post_step,
)
from .expiry import (
    task_last_activity,
    task_seen,
    tasks_expire_idle,
)
from .turns import (
    task_chat_finish,
    task_chat_progress,
    turn_create,
    turn_is_answered,
    turn_missing_ratings,
    turn_rate,
    turn_response_store,
)
from .workers import (
    demographics_clean,
    platform_id_withdrew,
    preview_worker_create,
    study_settings_get,
    withdrawal_key,
    worker_consent_give,
    worker_demographics_set,
    worker_get_or_create,
    worker_needs_profile,
    worker_pseudonym,
)

__all__ = [
    "Entry",
    "MAX_QUERY_CHARS",
    "OPEN_STATUSES",
    "POST_STEPS",
    "StudyError",
    "preview_worker_create",
    "assignment_way_out",
    "attempt_failure_reason",
    "calibration_attempt_record",
    "demographics_clean",
    "calibration_failure_reason",
    "study_settings_get",
    "task_calibration_start",
    "task_chat_finish",
    "task_chat_progress",
    "task_complete",
    "task_last_activity",
    "task_seen",
    "task_completeness_problems",
    "task_post_answer",
    "task_post_step",
    "tasks_create_for_topics",
    "tasks_expire_idle",
    "tasks_open",
    "topic_pool_draw",
    "topics_available",
    "validation_rule",
    "turn_create",
    "turn_is_answered",
    "turn_missing_ratings",
    "turn_rate",
    "turn_response_store",
    "worker_consent_give",
    "worker_demographics_set",
    "platform_id_withdrew",
    "worker_get_or_create",
    "worker_needs_profile",
    "withdrawal_key",
    "worker_pseudonym",
]
