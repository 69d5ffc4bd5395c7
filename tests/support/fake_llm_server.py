"""A real local HTTP server that speaks enough OpenAI and Anthropic API for tests.

Endpoints (JSON over HTTP on 127.0.0.1, random free port):

* ``POST /v1/chat/completions`` -- OpenAI chat completions; ``"stream": true`` answers with
  server-sent events ``data: {chunk}`` and a final ``data: [DONE]``.
* ``POST /v1/messages`` -- Anthropic Messages; ``"stream": true`` answers with the events
  message_start, content_block_start, content_block_delta..., content_block_stop,
  message_delta, message_stop.
* ``GET /v1/models`` -- a one-model list.

The reply text comes from ``reply_fn(messages, request_json) -> str`` (default: echoes the
last user message).  ``fail_first=N`` makes the first N requests fail with ``fail_status``
(default 500) so client retry logic can be tested.  Every request body is kept in
``server.requests``.

Usage::

    with FakeLLMServer(reply_fn=lambda msgs, req: "hi") as server:
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="x")

or the pytest fixture ``fake_llm_server`` (import it into a conftest.py).  Uses only the
standard library, so the real SDKs, httpx and browsers can all talk to it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

__all__ = ["FakeLLMServer", "fake_llm_server", "echo_reply"]

ReplyFn = Callable[[list[dict[str, Any]], dict[str, Any]], str]


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks: [{"type": "text", "text": ...}]
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def echo_reply(messages: list[dict[str, Any]], request: dict[str, Any]) -> str:
    """Default reply: ``"echo: <last user message>"``."""
    users = [m for m in messages if m.get("role") == "user"]
    return "echo: " + (_content_text(users[-1].get("content")) if users else "")


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


class FakeLLMServer:
    """Threaded stdlib HTTP server; start with ``start()`` or use as a context manager."""

    def __init__(
        self,
        reply_fn: ReplyFn = echo_reply,
        *,
        fail_first: int = 0,
        fail_status: int = 500,
        chunk_size: int = 4,
        delay_s: float = 0.0,
    ) -> None:
        self.reply_fn = reply_fn
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.chunk_size = chunk_size
        self.delay_s = delay_s
        self.requests: list[dict[str, Any]] = []
        self.failures = 0
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """What ``openai.OpenAI(base_url=...)`` expects (includes ``/v1``)."""
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """What ``anthropic.Anthropic(base_url=...)`` expects (the SDK adds ``/v1``)."""
        return self.url

    def start(self) -> FakeLLMServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-llm-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- request handling --------------------------------------------------------------
    def _should_fail(self) -> bool:
        with self._lock:
            if self.failures < self.fail_first:
                self.failures += 1
                return True
            return False

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                return

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _start_stream(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")  # end of body = end of stream
                self.end_headers()
                self.close_connection = True

            def _event(self, data: str, event: str | None = None) -> None:
                prefix = f"event: {event}\n" if event else ""
                self.wfile.write(f"{prefix}data: {data}\n\n".encode())
                self.wfile.flush()
                if server.delay_s:
                    time.sleep(server.delay_s)

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/models":
                    model = {"id": "fake-model", "object": "model", "owned_by": "tests"}
                    self._json(200, {"object": "list", "data": [model]})
                else:
                    self._json(404, {"error": {"message": "not found", "type": "not_found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    self._json(400, {"error": {"message": "invalid JSON", "type": "invalid_request_error"}})
                    return
                path = self.path.split("?")[0].rstrip("/")
                with server._lock:
                    server.requests.append({"path": path, "body": body, "headers": dict(self.headers)})
                if server._should_fail():
                    self._json(server.fail_status, {
                        "type": "error",
                        "error": {"message": "injected failure", "type": "api_error"},
                    })
                    return
                if path == "/v1/chat/completions":
                    self._openai(body)
                elif path == "/v1/messages":
                    self._anthropic(body)
                else:
                    self._json(404, {"error": {"message": f"unknown path {path}", "type": "not_found"}})

            def _openai(self, body: dict[str, Any]) -> None:
                text = server.reply_fn(body.get("messages", []), body)
                model = body.get("model", "fake-model")
                created = int(time.time())
                usage = {"prompt_tokens": 1, "completion_tokens": max(1, len(text.split())), "total_tokens": 0}
                usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
                if not body.get("stream"):
                    self._json(200, {
                        "id": "chatcmpl-fake", "object": "chat.completion", "created": created, "model": model,
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                     "finish_reason": "stop"}],
                        "usage": usage,
                    })
                    return
                self._start_stream()
                base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created, "model": model}
                first = True
                for piece in _chunks(text, server.chunk_size):
                    delta = {"role": "assistant", "content": piece} if first else {"content": piece}
                    first = False
                    self._event(json.dumps({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}))
                self._event(json.dumps({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
                self._event("[DONE]")

            def _anthropic(self, body: dict[str, Any]) -> None:
                text = server.reply_fn(body.get("messages", []), body)
                model = body.get("model", "fake-model")
                out_tokens = max(1, len(text.split()))
                message = {
                    "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                    "content": [{"type": "text", "text": text}],
                    "stop_reason": "end_turn", "stop_sequence": None,
                    "usage": {"input_tokens": 1, "output_tokens": out_tokens},
                }
                if not body.get("stream"):
                    self._json(200, message)
                    return
                self._start_stream()
                start = {**message, "content": [], "stop_reason": None,
                         "usage": {"input_tokens": 1, "output_tokens": 0}}
                self._event(json.dumps({"type": "message_start", "message": start}), "message_start")
                self._event(json.dumps({"type": "content_block_start", "index": 0,
                                        "content_block": {"type": "text", "text": ""}}), "content_block_start")
                for piece in _chunks(text, server.chunk_size):
                    self._event(json.dumps({"type": "content_block_delta", "index": 0,
                                            "delta": {"type": "text_delta", "text": piece}}), "content_block_delta")
                self._event(json.dumps({"type": "content_block_stop", "index": 0}), "content_block_stop")
                self._event(json.dumps({"type": "message_delta",
                                        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                        "usage": {"output_tokens": out_tokens}}), "message_delta")
                self._event(json.dumps({"type": "message_stop"}), "message_stop")

        return Handler


@pytest.fixture
def fake_llm_server() -> Iterator[FakeLLMServer]:
    """A running :class:`FakeLLMServer` with the echo reply; set ``.reply_fn``/``.fail_first``
    on it inside a test to change behaviour."""
    with FakeLLMServer() as server:
        yield server
