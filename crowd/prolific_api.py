"""The one HTTP client for Prolific's researcher API: nothing else in the project calls Prolific.

Every HTTP attempt goes through :meth:`ProlificClient._request`, which hands the operation, what
was sent (never the token) and the answer or the error to an ``audit`` callback, so the services
log each call whatever happens (as :mod:`crowd.mturk` does for MTurk).

Retries, and why only these: a 429 means Prolific refused the request before doing anything, so
any request is sent again after ``Retry-After`` (at most ``max_retries`` times, and never after a
wait longer than ``max_wait_s``). A timeout, a dropped connection or a 5xx says nothing about
whether the work was done: a GET is asked again, a POST never is (Prolific's bonus ``pay`` is
documented as not idempotent), and the error says ``outcome_unknown`` so the caller can check
before trying again.

Shapes follow docs.prolific.com (API v1) as far as the reference shows them; what it leaves open
is written where it is assumed (see :func:`study_payload`). ``httpx`` (pinned in requirements)
does the HTTP: timeouts per request and no hand-written socket handling.

Pure module (no Django).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import quote, urlencode

import httpx

API_URL = "https://api.prolific.com"
#: Environment variables: the researcher's API token (never stored in the database) and the
#: API's address (tests point it at a local fake server).
TOKEN_ENV, URL_ENV = "PROLIFIC_API_TOKEN", "PROLIFIC_API_URL"

AuditCallback = Callable[[str, dict[str, Any], Any, str], None]

#: Prolific's rejection categories (the API refuses a REJECT without one of these).
REJECTION_CATEGORIES = {
    "TOO_QUICKLY": "Completed too quickly",
    "TOO_SLOWLY": "Completed too slowly",
    "FAILED_INSTRUCTIONS": "Did not follow the instructions",
    "INCOMP_LONGITUDINAL": "Did not complete a longitudinal study",
    "FAILED_CHECK": "Failed an attention check",
    "LOW_EFFORT": "Low effort",
    "MALINGERING": "Malingering",
    "NO_CODE": "No completion code",
    "BAD_CODE": "Wrong completion code",
    "NO_DATA": "No data",
    "UNSUPP_DEVICE": "Unsupported device",
    "OTHER": "Other",
}
#: Prolific asks for a rejection message the participant can act on; it refuses short ones.
REJECTION_MESSAGE_MIN = 100
#: Submission statuses as Prolific spells them.
ACTIVE, AWAITING_REVIEW, APPROVED, REJECTED = "ACTIVE", "AWAITING REVIEW", "APPROVED", "REJECTED"
RETURNED, TIMED_OUT, SCREENED_OUT = "RETURNED", "TIMED-OUT", "SCREENED OUT"
DEVICES = ("desktop", "tablet", "mobile")


class ProlificError(Exception):
    """A call to Prolific failed. ``status`` is the HTTP status (0: no answer); ``detail`` what
    Prolific said; ``outcome_unknown`` is True when the work may have been done anyway."""

    def __init__(self, message: str, *, operation: str = "", status: int = 0, detail: Any = None,
                 outcome_unknown: bool = False) -> None:
        super().__init__(message)
        self.operation, self.status, self.detail, self.outcome_unknown = operation, status, detail, outcome_unknown


class ProlificTokenMissing(ProlificError):
    """``PROLIFIC_API_TOKEN`` is not set in the environment."""


class ProlificRateLimited(ProlificError):
    """429 after the bounded retries (or a ``Retry-After`` too long to wait); nothing was done."""

    def __init__(self, message: str, *, retry_after: float, **kw: Any) -> None:
        super().__init__(message, status=429, **kw)
        self.retry_after = retry_after


class ProlificTimeout(ProlificError):
    """No answer in time, or the connection dropped: the request may have been carried out."""


def cents(amount: Decimal | float | str) -> int:
    """Prolific's money in studies: the study currency's minor unit (pence / cents), an integer."""
    return int((Decimal(str(amount)) * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def bonus_csv(rows: Iterable[tuple[str, Decimal | float | str]]) -> str:
    """``csv_bonuses``: ``<participant or submission id>,<amount>`` lines, the amount a decimal in
    the study's currency (``4.25`` is £4.25; Prolific warns that ``30`` pays 30.00)."""
    lines = []
    for who, amount in rows:
        value = Decimal(str(amount)).quantize(Decimal("0.01"))
        if value <= 0:
            raise ValueError("a bonus must be positive")
        if not who or "," in who or "\n" in who:
            raise ValueError(f"not a Prolific id: {who!r}")
        lines.append(f"{who},{value}")
    return "\n".join(lines) + "\n"


def study_url(base: str) -> str:
    """The study URL with Prolific's placeholders; the site's entry reads these three names."""
    params = "PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}"
    return f"{base}{'&' if '?' in base else '?'}{params}"


def study_payload(
    *,
    name: str,
    internal_name: str,
    description: str,
    external_url: str,
    places: int,
    reward: Decimal,
    estimated_minutes: int,
    max_minutes: int | None = None,
    devices: Iterable[str] = ("desktop",),
    webcam: bool = True,
    codes: dict[str, str],
) -> dict[str, Any]:
    """The body of ``POST /api/v1/studies/`` (a draft: created UNPUBLISHED).

    ``codes`` maps ``completed`` / ``screened_out`` / ``partial`` to the study's codes. Assumed
    where the reference leaves it open: completed and partial codes are reviewed by hand
    (``MANUALLY_REVIEW``: the lab checks QC before paying), the partial code has ``code_type``
    ``OTHER``; ``reward`` is in the currency's minor unit; webcam is the ``camera`` peripheral.
    """
    devices = [d for d in devices if d]
    unknown = set(devices) - set(DEVICES)
    if unknown or not devices:
        raise ValueError(f"devices must be some of {', '.join(DEVICES)}")
    completion_codes = []
    for key, code_type in (("completed", "COMPLETED"), ("screened_out", "SCREENED_OUT"), ("partial", "OTHER")):
        if codes.get(key):
            completion_codes.append({"code": codes[key], "code_type": code_type,
                                     "actions": [{"action": "MANUALLY_REVIEW"}]})
    if not codes.get("completed"):
        raise ValueError("a Prolific study needs a completion code for completed submissions")
    payload: dict[str, Any] = {
        "name": name,
        "internal_name": internal_name,
        "description": description,
        "external_study_url": study_url(external_url),
        "prolific_id_option": "url_parameters",
        "completion_codes": completion_codes,
        "total_available_places": int(places),
        "estimated_completion_time": int(estimated_minutes),
        "reward": cents(reward),
        "device_compatibility": devices,
        "peripheral_requirements": ["camera"] if webcam else [],
    }
    if max_minutes:
        payload["maximum_allowed_time"] = int(max_minutes)
    return payload


class ProlificClient:
    """The Prolific operations the lab uses, one method per endpoint.

    Parameters
    ----------
    token : the researcher's API token (``Authorization: Token <token>``).
    base_url : the API's address (``PROLIFIC_API_URL``; Prolific's own by default).
    timeout : seconds for each request.
    audit : ``audit(operation, request, response_or_None, error)`` after every HTTP attempt.
    max_retries, max_wait_s : the bound on 429 retries and on each wait.
    """

    def __init__(self, token: str, base_url: str = API_URL, timeout: float = 10.0, *,
                 audit: AuditCallback | None = None, max_retries: int = 2, max_wait_s: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not token:
            raise ProlificTokenMissing(
                f"No Prolific API token: set {TOKEN_ENV} in the environment of the web and worker processes.")
        self.base_url = (base_url or API_URL).rstrip("/")
        self.audit = audit
        self.max_retries, self.max_wait_s, self.sleep = max_retries, max_wait_s, sleep
        self._http = httpx.Client(
            timeout=timeout,
            headers={"Authorization": f"Token {token}", "Accept": "application/json"},
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ProlificClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---------------------------------------------------------------- transport
    def _request(self, operation: str, method: str, path: str, *, body: Any = None,
                 params: dict[str, Any] | None = None) -> Any:
        """One call with the retry rule of the module docstring; returns the JSON answer."""
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        if params:
            url = f"{url}?{urlencode(params)}"
        sent: dict[str, Any] = {"method": method, "url": url.removeprefix(self.base_url)}
        if body is not None:
            sent["body"] = body
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.request(method, url, json=body)
            except httpx.TimeoutException as exc:
                error = ProlificTimeout(f"Prolific did not answer {operation} in time ({type(exc).__name__})",
                                        operation=operation, outcome_unknown=method != "GET")
            except httpx.HTTPError as exc:
                error = ProlificTimeout(f"Prolific could not be reached for {operation}: {exc}",
                                        operation=operation, outcome_unknown=method != "GET")
            else:
                answer = _json(response)
                if response.is_success:
                    self._audit(operation, sent, answer, "")
                    return answer
                error = self._error(operation, method, response, answer)
            self._audit(operation, sent, None, str(error))
            wait = self._retry_wait(error, method, attempt)
            if wait is None:
                raise error
            self.sleep(wait)

    def _error(self, operation: str, method: str, response: httpx.Response, answer: Any) -> ProlificError:
        detail = answer.get("error", answer) if isinstance(answer, dict) else answer
        text = _detail_text(detail) or response.reason_phrase
        message = f"Prolific answered {response.status_code} to {operation}: {text}"
        if response.status_code == 429:
            return ProlificRateLimited(message, retry_after=_retry_after(response), operation=operation,
                                       detail=detail)
        return ProlificError(message, operation=operation, status=response.status_code, detail=detail,
                             outcome_unknown=response.status_code >= 500 and method != "GET")

    def _retry_wait(self, error: ProlificError, method: str, attempt: int) -> float | None:
        if attempt > self.max_retries:
            return None
        if isinstance(error, ProlificRateLimited):
            return error.retry_after if error.retry_after <= self.max_wait_s else None
        if method == "GET" and (error.status == 0 or error.status >= 500):
            return min(2.0 ** (attempt - 1), self.max_wait_s)
        return None

    def _audit(self, operation: str, sent: dict, answer: Any, error: str) -> None:
        if self.audit is not None:
            self.audit(operation, sent, answer, error)

    # ---------------------------------------------------------------- studies
    def study_create(self, payload: dict[str, Any]) -> dict[str, Any]:
        """``POST /api/v1/studies/``: a draft (UNPUBLISHED) study; returns it with its ``id``."""
        return self._request("study_create", "POST", "/api/v1/studies/", body=payload)

    def study_get(self, study_id: str) -> dict[str, Any]:
        return self._request("study_get", "GET", f"/api/v1/studies/{_id(study_id)}/")

    def studies(self) -> list[dict[str, Any]]:
        """``GET /api/v1/studies/``: the researcher's studies (to find a draft whose answer was lost)."""
        return list(self._pages("studies_list", "/api/v1/studies/"))

    def study_transition(self, study_id: str, action: str) -> dict[str, Any]:
        """``POST /api/v1/studies/{id}/transition/`` with ``PUBLISH``, ``PAUSE``, ``START`` or ``STOP``."""
        if action not in ("PUBLISH", "PAUSE", "START", "STOP"):
            raise ValueError(f"unknown study transition {action!r}")
        return self._request(f"study_{action.lower()}", "POST", f"/api/v1/studies/{_id(study_id)}/transition/",
                             body={"action": action})

    # ---------------------------------------------------------------- submissions
    def submissions(self, study_id: str) -> Iterator[dict[str, Any]]:
        """Every submission of a study, following ``_links.next`` across pages."""
        return self._pages("submissions_list", f"/api/v1/studies/{_id(study_id)}/submissions/")

    def submission_get(self, submission_id: str) -> dict[str, Any] | None:
        """``GET /api/v1/submissions/{id}/``, or None when Prolific does not know it (404)."""
        try:
            return self._request("submission_get", "GET", f"/api/v1/submissions/{_id(submission_id)}/")
        except ProlificError as exc:
            if exc.status == 404:
                return None
            raise

    def submissions_approve(self, submission_ids: list[str]) -> Any:
        """``POST /api/v1/submissions/bulk-approve/`` with submission ids (the variant Prolific
        recommends). Approving is done asynchronously by Prolific; a sync shows the result."""
        if not submission_ids:
            raise ValueError("no submissions to approve")
        return self._request("submissions_bulk_approve", "POST", "/api/v1/submissions/bulk-approve/",
                             body={"submission_ids": list(submission_ids)})

    def submission_reject(self, submission_id: str, *, message: str, category: str) -> dict[str, Any]:
        """``POST /api/v1/submissions/{id}/transition/`` REJECT, with the message and category
        Prolific requires (checked here first so a bad one costs no call)."""
        if len((message or "").strip()) < REJECTION_MESSAGE_MIN:
            raise ValueError(f"message: a rejection needs at least {REJECTION_MESSAGE_MIN} characters")
        if category not in REJECTION_CATEGORIES:
            raise ValueError(f"rejection_category: must be one of {', '.join(REJECTION_CATEGORIES)}")
        return self._request("submission_reject", "POST", f"/api/v1/submissions/{_id(submission_id)}/transition/",
                             body={"action": "REJECT", "message": message.strip(), "rejection_category": category})

    def submission_request_return(self, submission_id: str, *, reasons: list[str]) -> dict[str, Any]:
        """``POST /api/v1/submissions/{id}/request-return/``: ask the participant to return it."""
        reasons = [r.strip() for r in reasons if r and r.strip()]
        if not reasons:
            raise ValueError("request_return_reasons: give at least one reason")
        return self._request("submission_request_return", "POST",
                             f"/api/v1/submissions/{_id(submission_id)}/request-return/",
                             body={"request_return_reasons": reasons})

    # ---------------------------------------------------------------- bonuses
    def bonus_create(self, study_id: str, rows: Iterable[tuple[str, Decimal | float | str]]) -> dict[str, Any]:
        """``POST /api/v1/submissions/bonus-payments/``: set up a bulk bonus payment (nothing is
        paid yet); returns it with the ``id`` to pay and ``total_amount`` in cents."""
        return self._request("bonus_create", "POST", "/api/v1/submissions/bonus-payments/",
                             body={"study_id": study_id, "csv_bonuses": bonus_csv(rows)})

    def bonus_pay(self, bulk_id: str) -> Any:
        """``POST /api/v1/bulk-bonus-payments/{id}/pay/``. NOT idempotent: each call pays again.
        Never sent twice for one id by this client; the caller records it before sending."""
        return self._request("bonus_pay", "POST", f"/api/v1/bulk-bonus-payments/{_id(bulk_id)}/pay/")

    # ---------------------------------------------------------------- helpers
    def _pages(self, operation: str, path: str) -> Iterator[dict[str, Any]]:
        url: str | None = path
        seen: set[str] = set()
        while url and url not in seen:
            seen.add(url)
            page = self._request(operation, "GET", url)
            yield from page.get("results", [])
            url = ((page.get("_links") or {}).get("next") or {}).get("href")


def _id(value: str) -> str:
    if not value:
        raise ValueError("empty Prolific id")
    return quote(str(value), safe="")


def _json(response: httpx.Response) -> Any:
    try:
        return response.json() if response.content else None
    except ValueError:
        return {"detail": response.text[:500]}


def _detail_text(detail: Any) -> str:
    """Prolific's ``{"error": {"title", "detail"}}`` as one line; ``detail`` may be a field map."""
    if isinstance(detail, dict):
        inner = detail.get("detail", detail)
        if isinstance(inner, dict):
            return "; ".join(f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in inner.items())
        return str(inner if inner is not None else detail.get("title", ""))
    return "" if detail is None else str(detail)


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "1")))
    except ValueError:
        return 60.0  # an HTTP date: longer than any wait this client makes
