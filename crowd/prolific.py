"""Prolific: completion codes, the completion redirect, and submissions exported from Prolific.

What the site does (collection, site issue): Prolific opens the study URL with ``PROLIFIC_PID``,
``STUDY_ID`` and ``SESSION_ID``; at the end the worker is redirected to
:func:`completion_url` with the study's completion code.

What this module does: a study lists its completion codes with what each means (``approve``: the
worker finished; ``review``: e.g. the code shown after failing calibration, to be paid or not by
hand). Submissions are read from the CSV that Prolific's "Download demographic data" / submissions
export gives, and matched to tasks (:func:`crowd.services.prolific_submissions_import`).

Not automated (done by hand in the Prolific web app or with its API token, documented here so
the steps are written down; check the current API reference before scripting them):

1. Approve: ``POST https://api.prolific.com/api/v1/submissions/{submission_id}/transition/`` with
   ``{"action": "APPROVE"}`` (header ``Authorization: Token <API token>``).
2. Reject: same endpoint, ``{"action": "REJECT", "message": ..., "rejection_category": ...}``;
   Prolific requires a message and a category.
3. Bonus: ``POST /api/v1/submissions/bulk-bonus-payments/`` with the study id and
   ``"csv_bonuses": "<participant_id>,<amount>\\n..."``, then
   ``POST /api/v1/bulk-bonus-payments/{id}/pay/``: two steps, so a retried first call only creates
   an unpaid draft.
4. Block future participation: add the participant to a "block list" participant group used as a
   custom screener of later studies.

Pure module (no Django).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from urllib.parse import urlencode

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
