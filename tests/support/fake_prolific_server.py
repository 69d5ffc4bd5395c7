"""A real local HTTP server for Prolific's ``GET /api/v1/submissions/{id}/`` (entry checks).

``submissions`` maps a submission (session) id to ``{"participant_id", "study_id"}``; unknown ids
are 404, a wrong ``Authorization: Token`` is 401, ``down=True`` answers 503. Requests are kept
in ``requests`` as ``(path, authorization)``.
"""

from __future__ import annotations

from typing import Any

from tests.support.servers import json_http_server

PREFIX = "/api/v1/submissions/"


class FakeProlificServer:
    def __init__(self, *, token: str = "test-token") -> None:
        self.token = token
        self.submissions: dict[str, dict[str, str]] = {}
        self.requests: list[tuple[str, str]] = []
        self.down = False
        self.url = ""

    def _answer(self, path: str, auth: str) -> tuple[int, dict[str, Any]]:
        self.requests.append((path, auth))
        if self.down:
            return 503, {"error": "unavailable"}
        if auth != f"Token {self.token}":
            return 401, {"error": "bad token"}
        if not path.startswith(PREFIX) or not path.endswith("/"):
            return 404, {"error": "not found"}
        found = self.submissions.get(path[len(PREFIX):-1])
        if found is None:
            return 404, {"error": "not found"}
        return 200, {"id": path[len(PREFIX):-1], "status": "ACTIVE", **found}

    def __enter__(self) -> FakeProlificServer:
        self._server = json_http_server(lambda method, path, headers, body: self._answer(
            path, headers.get("Authorization", "")))
        self.url = self._server.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.__exit__(*exc)
