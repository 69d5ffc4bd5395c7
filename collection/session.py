"""The study's identity lives in the server-side Django session, never in what the page sends.

A worker is bound to the session by the entry page (platform parameters, an invitation link or,
if staff allow it, a typed lab id); every view and API then reads the worker from here and only
ever looks up that worker's tasks of the assignment this session entered with. The session also
carries a random *holder* id: an open task is worked on by one browser session at a time
(``Task.holder``), see ``collection.services.identity``.
The session also carries the entry parameters (until tasks exist), the shuffled topic pool
offered, and the time of the last activity for the idle timeout.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from django.http import HttpRequest

from .models import Worker
from .services.study import Entry, study_settings_get

WORKER_KEY = "ifllm.worker"
ENTRY_KEY = "ifllm.entry"
POOL_KEY = "ifllm.pool"
SEEN_KEY = "ifllm.seen"
INSTRUCTIONS_KEY = "ifllm.instructions_seen"
CALIBRATED_KEY = "ifllm.calibrated"
WAY_OUT_KEY = "ifllm.way_out"  # the task whose failed calibration ended this session's study
HOLDER_KEY = "ifllm.holder"
HELD_KEY = "ifllm.held"
#: Consent and demographics given in an unverified entry (never written on the worker).
PROFILE_KEY = "ifllm.entry_profile"
#: Set by :func:`preview_bind` only: the pages show the "Preview — not recorded" banner.
PREVIEW_KEY = "ifllm.preview"


def worker_bind(request: HttpRequest, *, worker: Worker, entry: Entry) -> None:
    """Bind the worker to the session under a new session id, on every entry.

    Always a new id (against session fixation: a session planted in the victim's browser may
    already be bound to the victim's worker id); what belonged to the session's previous worker
    or assignment is dropped.
    """
    previous = request.session.get(ENTRY_KEY) or {}
    same = (request.session.get(WORKER_KEY) == worker.pk
            and previous.get("assignment_id", "") == entry.assignment_id
            and bool(previous.get("unverified")) == entry.unverified)
    request.session.cycle_key()
    request.session.pop(PREVIEW_KEY, None)  # only preview_bind marks a session as a preview
    if not same:
        for key in (POOL_KEY, INSTRUCTIONS_KEY, CALIBRATED_KEY, HOLDER_KEY, HELD_KEY, PROFILE_KEY, WAY_OUT_KEY):
            request.session.pop(key, None)
    request.session[WORKER_KEY] = worker.pk
    request.session[ENTRY_KEY] = entry.as_dict() | {"platform": entry.platform}
    activity_touch(request)


def preview_bind(request: HttpRequest, *, worker: Worker) -> None:
    """Bind a preview worker (``Worker.is_preview``) as a lab entry and mark the session, so the
    worker pages say that nothing done here is recorded in the study."""
    if not worker.is_preview:
        raise ValueError("preview_bind takes a preview worker only")
    worker_bind(request, worker=worker, entry=Entry(platform="lab"))
    request.session[PREVIEW_KEY] = True


def is_preview(request: HttpRequest) -> bool:
    return bool(request.session.get(PREVIEW_KEY))


def entry_get(request: HttpRequest) -> Entry:
    data: dict[str, Any] = request.session.get(ENTRY_KEY) or {"platform": "lab"}
    return Entry(**data)


def holder_get(request: HttpRequest) -> str:
    """This browser session's random holder id (made on first use; never sent to the browser)."""
    token = request.session.get(HOLDER_KEY)
    if not token:
        token = request.session[HOLDER_KEY] = secrets.token_hex(16)
    return token


def held_add(request: HttpRequest, task_id: int) -> None:
    """Remember that this session held the task, to tell "continued elsewhere" from "open elsewhere"."""
    held = request.session.get(HELD_KEY) or []
    if task_id not in held:
        request.session[HELD_KEY] = [*held[-49:], task_id]


def held_before(request: HttpRequest, task_id: int) -> bool:
    return task_id in (request.session.get(HELD_KEY) or [])


def worker_get(request: HttpRequest) -> Worker | None:
    """The bound, unblocked worker, or None."""
    pk = request.session.get(WORKER_KEY)
    if pk is None:
        return None
    return Worker.objects.filter(pk=pk, blocked=False).first()


def activity_touch(request: HttpRequest) -> None:
    request.session[SEEN_KEY] = int(time.time())


def idle_expired(request: HttpRequest) -> bool:
    """True when the bound session saw no activity for the staff-set idle time."""
    seen = request.session.get(SEEN_KEY)
    if seen is None or WORKER_KEY not in request.session:
        return False
    return time.time() - seen > study_settings_get().idle_timeout_s


def session_end(request: HttpRequest) -> None:
    request.session.flush()
