"""A real local HTTP server for Prolific's ``GET /api/v1/submissions/{id}/`` (entry checks).

``submissions`` maps a submission (session) id to ``{"participant_id", "study_id"}``; unknown ids
are 404, a wrong ``Authorization: Token`` is 401, ``down=True`` answers 503. Requests are kept
in ``requests`` as ``(path, authorization)``.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/api/v1/submissions/"


class FakeProlificServer:
    def __init__(self, *, token: str = "test-token") -> None:
        self.token = token
        self.submissions: dict[str, dict[str, str]] = {}
        self.requests: list[tuple[str, str]] = []
        self.down = False
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

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
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                status, body = server._answer(self.path, self.headers.get("Authorization", ""))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
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
