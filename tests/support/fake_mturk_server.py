"""A real local HTTP server that speaks enough of the MTurk requester API (AWS JSON 1.1) for tests.

boto3's real MTurk client talks to it (``endpoint_url=server.url``), so requests are serialised,
signed and parsed by botocore exactly as against AWS, and many threads can call it at once
(botocore's Stubber cannot). What it answers, as AWS documents it:

* ``SendBonus``: pays once per ``UniqueRequestToken``; a repeat of a token it remembers is refused
  with ``RequestError`` "The idempotency token ... has already been processed." (AWS's wording).
  ``forget_tokens()`` models the 24 h after which AWS forgets a token (a repeat then pays again).
* ``ListBonusPayments``: the bonuses paid for an assignment.
* ``CreateHIT``: one HIT per token; a repeat is refused naming the HIT it made.
* ``GetAccountBalance``.

Every call is kept in ``server.calls`` as ``(operation, params)``; ``delay_s`` holds each answer
that long, so concurrent calls overlap as they would over the network.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "MTurkRequesterServiceV20170117."


class FakeMTurkServer:
    def __init__(self, *, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.bonuses: list[dict[str, Any]] = []
        self.hits: dict[str, dict[str, Any]] = {}
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    # ---------------------------------------------------------------- operations
    def forget_tokens(self) -> None:
        """What AWS does 24 h after a call: the token may be used again (and would pay again)."""
        with self._lock:
            self._tokens.clear()

    def count(self, operation: str) -> int:
        return sum(1 for op, _ in self.calls if op == operation)

    def _duplicate(self, token: str) -> tuple[int, dict[str, Any]]:
        return 400, {
            "__type": "RequestError",
            "Message": f'The idempotency token "{token}" has already been processed. ({int(time.time() * 1000)})',
        }

    def handle(self, operation: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.calls.append((operation, params))
            token = params.get("UniqueRequestToken")
            if operation == "SendBonus":
                if token in self._tokens:
                    return self._duplicate(token)
                self._tokens[token] = "bonus"
                self.bonuses.append({
                    "WorkerId": params["WorkerId"], "AssignmentId": params["AssignmentId"],
                    "BonusAmount": params["BonusAmount"], "Reason": params["Reason"], "GrantTime": time.time(),
                })
                return 200, {}
            if operation == "ListBonusPayments":
                found = [b for b in self.bonuses if b["AssignmentId"] == params.get("AssignmentId")]
                return 200, {"NumResults": len(found), "BonusPayments": found}
            if operation == "CreateHIT":
                if token in self._tokens:
                    return 400, {"__type": "RequestError",
                                 "Message": f"The HIT with ID {self._tokens[token]} already exists."}
                hit_id = uuid.uuid4().hex.upper()[:30]
                self._tokens[token] = hit_id
                self.hits[hit_id] = params
                return 200, {"HIT": {"HITId": hit_id, "HITTypeId": "T" * 30, "HITStatus": "Assignable"}}
            if operation == "GetAccountBalance":
                return 200, {"AvailableBalance": "100.00"}
        return 400, {"__type": "RequestError", "Message": f"fake server does not know {operation}"}

    # ---------------------------------------------------------------- HTTP
    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def client(self) -> Any:
        import boto3

        return boto3.client("mturk", region_name="us-east-1", aws_access_key_id="testing",
                            aws_secret_access_key="testing", endpoint_url=self.url)

    def __enter__(self) -> FakeMTurkServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                operation = (self.headers.get("X-Amz-Target") or "").removeprefix(PREFIX)
                if server.delay_s:
                    time.sleep(server.delay_s)
                status, answer = server.handle(operation, json.loads(body or b"{}"))
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._httpd is not None
        self._httpd.shutdown()
        self._httpd.server_close()


@contextmanager
def fake_mturk(*, delay_s: float = 0.0) -> Iterator[FakeMTurkServer]:
    with FakeMTurkServer(delay_s=delay_s) as server:
        yield server
