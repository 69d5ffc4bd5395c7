"""The site's ASGI application under uvicorn in a thread of the test process, on a free port.

Shared by the browser tests and the schemathesis run: both need the deployed stack (uvicorn,
not Django's test client) with the test database of this process.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def uvicorn_in_thread(*, log_level: str = "warning", name: str = "uvicorn-test") -> Iterator[str]:
    """Serve ``ifllm_site.asgi.application``; yields ``http://localhost:PORT`` (localhost: the CSRF
    origin the pages use, and WebGazer warns on plain IP addresses)."""
    import uvicorn

    from ifllm_site.asgi import application

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(application, host="127.0.0.1", port=port, log_level=log_level,
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://localhost:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def json_http_server(answer) -> Iterator[str]:
    """A threaded HTTP server on 127.0.0.1 whose every request is answered by
    ``answer(method, path, headers, body) -> (status, json_body)``; yields its base URL.
    (The fake MTurk server of the tests; the fake Prolific API has its own, for scripted failures.)"""
    import json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, payload = answer(self.command, self.path, self.headers, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1" if "X-Amz-Target" in self.headers
                             else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _reply

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
