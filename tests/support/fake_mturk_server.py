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
from typing import Any

from tests.support.servers import json_http_server

PREFIX = "MTurkRequesterServiceV20170117."


class FakeMTurkServer:
    def __init__(self, *, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.bonuses: list[dict[str, Any]] = []
        self.hits: dict[str, dict[str, Any]] = {}
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()
        self.url = ""

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
    def _answer(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        if self.delay_s:
            time.sleep(self.delay_s)
        return self.handle((headers.get("X-Amz-Target") or "").removeprefix(PREFIX), json.loads(body or b"{}"))

    def client(self) -> Any:
        import boto3

        return boto3.client("mturk", region_name="us-east-1", aws_access_key_id="testing",
                            aws_secret_access_key="testing", endpoint_url=self.url)


@contextmanager
def fake_mturk(*, delay_s: float = 0.0) -> Iterator[FakeMTurkServer]:
    server = FakeMTurkServer(delay_s=delay_s)
    with json_http_server(server._answer) as url:
        server.url = url
        yield server
