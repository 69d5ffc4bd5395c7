"""Prolific: completion codes, the completion redirect, and submissions exported from Prolific.

What the site does (collection, site issue): Prolific opens the study URL with ``PROLIFIC_PID``,
``STUDY_ID`` and ``SESSION_ID``; at the end the worker is redirected to
:func:`completion_url` with the study's completion code.

What this module does: a study lists its completion codes with what each means (``approve``: the
worker finished; ``review``: e.g. the code shown after failing calibration, to be paid or not by
hand). Submissions are read from the CSV that Prolific's "Download demographic data" / submissions
export gives, and matched to tasks (:func:`crowd.services.prolific_submissions_import`).

Through the API (:mod:`crowd.prolific_api`, services in :mod:`crowd.services.prolific`, actions
in the admin): drafts, publish/pause, submission sync, approve/reject/return, two-step bonuses.
Still by hand: blocking future participation (a "block list" participant group used as a custom
screener of later studies).

Pure module (no Django).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping
from urllib.parse import urlencode

from .prolific_api import API_URL, TOKEN_ENV, URL_ENV, ProlificClient, ProlificError

__all__ = ["API_URL", "TOKEN_ENV", "URL_ENV", "ProlificError"]

COMPLETION_URL = "https://app.prolific.com/submissions/complete"
APPROVE, REVIEW = "approve", "review"


def completion_url(code: str) -> str:
    """Where Prolific expects the worker to be sent with completion code ``code``."""
    return f"{COMPLETION_URL}?{urlencode({'cc': code})}"


def completion_decision(code: str, codes: Mapping[str, str]) -> str:
    """``approve`` only for a code the study maps to approve; anything else needs review."""
    return APPROVE if codes.get((code or "").strip()) == APPROVE else REVIEW


_ALIASES = {
    "submission_id": ("submission id", "submission_id", "session id", "session_id"),
    "participant_id": ("participant id", "participant_id", "prolific_pid"),
    "status": ("status",),
    "completion_code": ("completion code", "completion_code", "entered code", "entered_code"),
    "started_at": ("started at", "started_at", "started_datetime"),
    "completed_at": ("completed at", "completed_at", "completed_date_time"),
}


def parse_submissions_csv(text: str) -> list[dict[str, str]]:
    """Rows of a Prolific submissions export, with normalised keys (see ``_ALIASES``).

    Raises ValueError when the submission or participant id column is missing.
    """
    reader = csv.DictReader(io.StringIO(text))
    header = {name.strip().lower(): name for name in (reader.fieldnames or [])}
    columns = {}
    for key, names in _ALIASES.items():
        for name in names:
            if name in header:
                columns[key] = header[name]
                break
    missing = {"submission_id", "participant_id"} - set(columns)
    if missing:
        raise ValueError(f"Prolific export lacks the column(s): {', '.join(sorted(missing))}")
    return [{key: (row.get(col) or "").strip() for key, col in columns.items()} for row in reader]


# --------------------------------------------------------------------------- entry check
def submission_get(submission_id: str, *, token: str, base_url: str = API_URL, timeout: float = 5.0) -> dict | None:
    """``GET /api/v1/submissions/{id}/``: the submission (its ``participant_id``, ``study_id``),
    or None when Prolific does not know it (404). Raises :class:`ProlificError` otherwise."""
    with ProlificClient(token, base_url, timeout, max_retries=0) as client:
        return client.submission_get(submission_id)


def entry_verify(*, platform: str, worker_id: str, study_id: str, session_id: str) -> bool | None:
    """Whether the platform vouches for this entry: True (the session is this participant's in
    this study), False (it is not, or does not exist), None (cannot tell: not Prolific, no token
    configured, or the API did not answer). The site calls this through ``IFLLM_ENTRY_VERIFIER``.
    """
    token = os.environ.get(TOKEN_ENV, "")
    if platform != "prolific" or not token:
        return None
    try:
        submission = submission_get(session_id, token=token, base_url=os.environ.get(URL_ENV) or API_URL)
    except (ProlificError, ValueError):
        return None
    if submission is None:
        return False
    return submission.get("participant_id") == worker_id and submission.get("study_id", study_id) == study_id
