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
