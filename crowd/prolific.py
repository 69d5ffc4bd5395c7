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
import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from urllib.parse import quote, urlencode

COMPLETION_URL = "https://app.prolific.com/submissions/complete"
API_URL = "https://api.prolific.com"
#: Environment variables: the researcher's API token (entry checks are off without it) and the
#: API's address (tests point it at a local fake server).
TOKEN_ENV, URL_ENV = "PROLIFIC_API_TOKEN", "PROLIFIC_API_URL"
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
class ProlificError(Exception):
    """The API could not be asked (network, 5xx, bad answer): the entry stays unverified."""


def submission_get(submission_id: str, *, token: str, base_url: str = API_URL, timeout: float = 5.0) -> dict | None:
    """``GET /api/v1/submissions/{id}/``: the submission (its ``participant_id``, ``study_id``),
    or None when Prolific does not know it (404)."""
    url = f"{base_url.rstrip('/')}/api/v1/submissions/{quote(submission_id, safe='')}/"
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read(1_000_000))
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise ProlificError(f"Prolific answered {exc.code} for submission {submission_id}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ProlificError(f"Prolific could not be asked: {exc}") from None


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
    except ProlificError:
        return None
    if submission is None:
        return False
    return submission.get("participant_id") == worker_id and submission.get("study_id", study_id) == study_id
