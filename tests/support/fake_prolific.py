"""A real local HTTP server that speaks the part of Prolific's researcher API the lab uses.

The client (:mod:`crowd.prolific_api`, over httpx) talks to it through a socket on 127.0.0.1, so
requests are serialised, sent and parsed as against Prolific. It keeps state and answers the
shapes of docs.prolific.com (API v1):

* studies: ``POST /api/v1/studies/`` (a draft, ``UNPUBLISHED``; 400 naming missing fields),
  ``GET /api/v1/studies/`` and ``/{id}/``, ``POST /{id}/transition/`` PUBLISH / PAUSE (400 from a
  wrong state).
* submissions: ``GET /api/v1/studies/{id}/submissions/`` in pages of ``page_size`` with
  ``_links.next.href``; ``GET /api/v1/submissions/{id}/``; ``POST /api/v1/submissions/bulk-approve/``;
  ``POST /{id}/transition/`` REJECT (400 without a 100-character message or a known category);
  ``POST /{id}/request-return/``.
* bonuses: ``POST /api/v1/submissions/bonus-payments/`` (a bulk bonus payment, not paid; 400 for
  participants not in the study) and ``POST /api/v1/bulk-bonus-payments/{id}/pay/`` which, as
  documented, is NOT idempotent: each call pays again. ``payouts`` is the ledger of money paid.
  Like Prolific's reference, it has no endpoint that lists bulk bonus payments.

Errors use Prolific's body ``{"error": {"error_code", "title", "detail"}}``; a wrong token is 401.

Scripted failures (:meth:`fail`), each used by the next matching request: an HTTP status with a
body, 429 with ``Retry-After``, a slow answer (``delay``, past the client's timeout), and a
*lost* answer (``lost=True``: the work is done, then the connection is closed without a reply).

``requests`` keeps ``(path, authorization)`` of every request (the entry-check tests read it);
``calls`` keeps ``(method, path, body)``.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

REJECTION_CATEGORIES = {
    "TOO_QUICKLY", "TOO_SLOWLY", "FAILED_INSTRUCTIONS", "INCOMP_LONGITUDINAL", "FAILED_CHECK", "LOW_EFFORT",
    "MALINGERING", "NO_CODE", "BAD_CODE", "NO_DATA", "UNSUPP_DEVICE", "OTHER",
}
REQUIRED_STUDY_FIELDS = ("name", "description", "external_study_url", "prolific_id_option", "completion_codes",
                         "total_available_places", "estimated_completion_time", "reward")


@dataclass
class Failure:
    method: str
    path: re.Pattern
    status: int = 0
    body: Any = None
    retry_after: float | None = None
    delay: float = 0.0
    lost: bool = False


def _error(status: int, title: str, detail: Any) -> tuple[int, dict]:
    return status, {"error": {"error_code": status * 1000 + 1, "title": title, "detail": detail}}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())


class FakeProlific:
    def __init__(self, *, token: str = "test-token", page_size: int = 2) -> None:
        self.token = token
        self.page_size = page_size
        self.studies: dict[str, dict[str, Any]] = {}
        self.submissions: dict[str, dict[str, Any]] = {}
        self.bulk_bonuses: dict[str, dict[str, Any]] = {}
        self.payouts: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str]] = []
        self.calls: list[tuple[str, str, Any]] = []
        self.failures: list[Failure] = []
        self.down = False
        self.url = ""
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- scripting
    def fail(self, method: str, path: str, *, status: int = 0, body: Any = None, retry_after: float | None = None,
             delay: float = 0.0, lost: bool = False, times: int = 1) -> None:
        """The next ``times`` requests ``method`` whose path matches the regex ``path`` fail so."""
        for _ in range(times):
            self.failures.append(Failure(method, re.compile(path), status, body, retry_after, delay, lost))

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p, _ in self.calls if m == method and re.search(path, p))

    def add_submission(self, study_id: str, participant_id: str, *, status: str = "AWAITING REVIEW",
                       study_code: str = "", submission_id: str | None = None) -> dict[str, Any]:
        sid = submission_id or uuid.uuid4().hex[:24]
        self.submissions[sid] = {
            "id": sid, "participant_id": participant_id, "study_id": study_id, "status": status,
            "started_at": "2026-12-05T10:00:00.000000Z",
            "completed_at": None if status == "ACTIVE" else "2026-12-05T10:30:00.000000Z",
            "study_code": study_code, "return_requested": None,
        }
        return self.submissions[sid]

    def paid_to(self, participant_id: str) -> Decimal:
        return sum((p["amount"] for p in self.payouts if p["participant_id"] == participant_id), Decimal("0"))

    # ---------------------------------------------------------------- the API
    def _failure(self, method: str, path: str) -> Failure | None:
        for i, f in enumerate(self.failures):
            if f.method == method and f.path.search(path):
                return self.failures.pop(i)
        return None

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        with self._lock:
            return self._route(method, path, query, body)

    def _route(self, method: str, path: str, query: dict, body: Any) -> tuple[int, Any]:
        body = body if isinstance(body, dict) else {}
        if m := re.fullmatch(r"/api/v1/studies/", path):
            if method == "POST":
                return self._study_create(body)
            return 200, {"results": list(self.studies.values()), "_links": {"next": {"href": None}}}
        if m := re.fullmatch(r"/api/v1/studies/([^/]+)/", path):
            study = self.studies.get(m.group(1))
            return (200, study) if study else _error(404, "Not found", "Study not found.")
        if m := re.fullmatch(r"/api/v1/studies/([^/]+)/transition/", path):
            return self._study_transition(m.group(1), body.get("action"))
        if m := re.fullmatch(r"/api/v1/studies/([^/]+)/submissions/", path):
            return self._submissions_page(m.group(1), int((query.get("page") or ["1"])[0]))
        if path == "/api/v1/submissions/bulk-approve/":
            return self._bulk_approve(body)
        if path == "/api/v1/submissions/bonus-payments/":
            return self._bonus_create(body)
        if m := re.fullmatch(r"/api/v1/bulk-bonus-payments/([^/]+)/pay/", path):
            return self._bonus_pay(m.group(1))
        if m := re.fullmatch(r"/api/v1/submissions/([^/]+)/transition/", path):
            return self._submission_transition(m.group(1), body)
        if m := re.fullmatch(r"/api/v1/submissions/([^/]+)/request-return/", path):
            return self._request_return(m.group(1), body)
        if m := re.fullmatch(r"/api/v1/submissions/([^/]+)/", path):
            found = self.submissions.get(m.group(1))
            return (200, found) if found else _error(404, "Not found", "Submission not found.")
        return _error(404, "Not found", f"No endpoint {method} {path}")

    def _study_create(self, body: dict) -> tuple[int, Any]:
        missing = {f: ["This field is required."] for f in REQUIRED_STUDY_FIELDS if body.get(f) in (None, "", [])}
        if missing:
            return _error(400, "Bad request", missing)
        if "{{%PROLIFIC_PID%}}" not in body["external_study_url"]:
            return _error(400, "Bad request", {"external_study_url": ["Must carry {{%PROLIFIC_PID%}}."]})
        sid = uuid.uuid4().hex[:24]
        self.studies[sid] = {**body, "id": sid, "status": "UNPUBLISHED", "date_created": _now(),
                             "published_at": None, "total_cost": body["reward"] * body["total_available_places"]}
        return 201, self.studies[sid]

    def _study_transition(self, sid: str, action: Any) -> tuple[int, Any]:
        study = self.studies.get(sid)
        if study is None:
            return _error(404, "Not found", "Study not found.")
        allowed = {"PUBLISH": ("UNPUBLISHED", "PAUSED"), "PAUSE": ("ACTIVE",), "START": ("PAUSED",),
                   "STOP": ("ACTIVE", "PAUSED")}
        if action not in allowed:
            return _error(400, "Bad request", {"action": [f"{action!r} is not a valid choice."]})
        if study["status"] not in allowed[action]:
            return _error(400, "Bad request", f"Cannot {action} a study that is {study['status']}.")
        study["status"] = {"PUBLISH": "ACTIVE", "PAUSE": "PAUSED", "START": "ACTIVE", "STOP": "AWAITING REVIEW"}[action]
        if action == "PUBLISH" and not study["published_at"]:
            study["published_at"] = _now()
        return 200, study

    def _submissions_page(self, sid: str, page: int) -> tuple[int, Any]:
        if sid not in self.studies:
            return _error(404, "Not found", "Study not found.")
        rows = [s for s in self.submissions.values() if s["study_id"] == sid]
        chunk = rows[(page - 1) * self.page_size: page * self.page_size]
        more = page * self.page_size < len(rows)
        nxt = f"{self.url}/api/v1/studies/{sid}/submissions/?page={page + 1}" if more else None
        return 200, {"results": chunk, "_links": {"next": {"href": nxt}, "self": {"href": None}},
                     "meta": {"count": len(rows)}}

    def _bulk_approve(self, body: dict) -> tuple[int, Any]:
        ids = body.get("submission_ids") or []
        if not ids:
            return _error(400, "Bad request", {"submission_ids": ["This field is required."]})
        unknown = [i for i in ids if i not in self.submissions]
        if unknown:
            return _error(400, "Bad request", {"submission_ids": [f"Unknown submission {i}." for i in unknown]})
        for i in ids:
            if self.submissions[i]["status"] == "AWAITING REVIEW":
                self.submissions[i]["status"] = "APPROVED"
        return 200, {"message": "The request to bulk approve has been made successfully."}

    def _submission_transition(self, sub_id: str, body: dict) -> tuple[int, Any]:
        sub = self.submissions.get(sub_id)
        if sub is None:
            return _error(404, "Not found", "Submission not found.")
        action = body.get("action")
        if action == "REJECT":
            problems = {}
            if len((body.get("message") or "").strip()) < 100:
                problems["message"] = ["A rejection message needs at least 100 characters."]
            if body.get("rejection_category") not in REJECTION_CATEGORIES:
                problems["rejection_category"] = ["This field is required."]
            if problems:
                return _error(400, "Bad request", problems)
        elif action != "APPROVE":
            return _error(400, "Bad request", {"action": [f"{action!r} is not a valid choice."]})
        if sub["status"] != "AWAITING REVIEW":
            return _error(400, "Bad request", f"Submission is {sub['status']}; it cannot be transitioned.")
        sub["status"] = "REJECTED" if action == "REJECT" else "APPROVED"
        return 200, sub

    def _request_return(self, sub_id: str, body: dict) -> tuple[int, Any]:
        sub = self.submissions.get(sub_id)
        if sub is None:
            return _error(404, "Not found", "Submission not found.")
        if not body.get("request_return_reasons"):
            return _error(400, "Bad request", {"request_return_reasons": ["This field is required."]})
        sub["return_requested"] = _now()
        return 200, sub

    def _bonus_create(self, body: dict) -> tuple[int, Any]:
        study = self.studies.get(body.get("study_id") or "")
        if study is None:
            return _error(400, "Bad request", {"study_id": ["Unknown study."]})
        rows, bad = [], []
        takers = {s["participant_id"] for s in self.submissions.values() if s["study_id"] == study["id"]}
        for line in (body.get("csv_bonuses") or "").strip().splitlines():
            who, _, amount = line.partition(",")
            if who not in takers and who not in self.submissions:
                bad.append(who)
            else:
                who = self.submissions[who]["participant_id"] if who in self.submissions else who
                rows.append((who, Decimal(amount)))
        if bad or not rows:
            return _error(400, "Bad request", {"csv_bonuses": [f"Not in this study: {', '.join(bad) or 'no rows'}"]})
        bid = uuid.uuid4().hex[:24]
        total = sum(a for _, a in rows)
        self.bulk_bonuses[bid] = {"id": bid, "study": study["id"], "rows": rows, "paid": 0}
        return 201, {"id": bid, "study": study["id"], "amount": float(total * 100), "fees": float(total * 33),
                     "vat": 0.0, "total_amount": float(total * 133)}

    def _bonus_pay(self, bid: str) -> tuple[int, Any]:
        bulk = self.bulk_bonuses.get(bid)
        if bulk is None:
            return _error(404, "Not found", "Bulk bonus payment not found.")
        bulk["paid"] += 1  # not idempotent, as documented: each call pays again
        for who, amount in bulk["rows"]:
            self.payouts.append({"participant_id": who, "amount": amount, "bulk": bid})
        return 202, {}

    # ---------------------------------------------------------------- the server
    def __enter__(self) -> FakeProlific:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _reply(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                split = urlsplit(self.path)
                auth = self.headers.get("Authorization", "")
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                with fake._lock:
                    fake.requests.append((split.path, auth))
                    fake.calls.append((self.command, split.path, body))
                    failure = fake._failure(self.command, split.path)
                if fake.down:
                    status, payload = _error(503, "Service unavailable", "Down for maintenance.")
                elif auth != f"Token {fake.token}":
                    status, payload = _error(401, "Unauthorized", "Invalid token.")
                elif failure is not None and not failure.lost and failure.status:
                    status, payload = failure.status, failure.body
                    if payload is None:
                        payload = _error(status, "Scripted", f"scripted {status}")[1]
                else:
                    status, payload = fake.handle(self.command, split.path, parse_qs(split.query), body)
                if failure is not None and failure.delay:
                    time.sleep(failure.delay)
                if failure is not None and failure.lost:
                    self.close_connection = True  # the work is done; the answer never arrives
                    self.connection.shutdown(2)
                    return
                data = json.dumps(payload).encode() if payload is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if failure is not None and failure.retry_after is not None:
                    self.send_header("Retry-After", f"{failure.retry_after:g}")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _reply

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        return self

    def __exit__(self, *exc: Any) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
