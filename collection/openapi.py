"""OpenAPI additions for the one study endpoint that is not a DRF view.

The answer stream is an async Django view (DRF views are synchronous, and a long answer must not
hold a thread), so drf-spectacular cannot see it; this post-processing hook describes it, so the
schema covers every endpoint and the schemathesis run exercises it too.
"""

from __future__ import annotations

from typing import Any

ANSWER_STREAM_PATH = "/task/{task_id}/turns/{turn_id}/answer/"


def add_answer_stream(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    int_param = {"type": "integer"}
    result.setdefault("paths", {})[ANSWER_STREAM_PATH] = {
        "post": {
            "operationId": "study_turn_answer_stream",
            "summary": "Stream the answer(s) of one of the worker's own turns as server-sent events",
            "description": (
                "Starts (or resumes) the model call(s) of the turn and streams `delta`, `done` and "
                "`error` events. Needs the worker's session and the CSRF token (X-CSRFToken)."
            ),
            "tags": ["study"],
            "parameters": [
                {"name": "task_id", "in": "path", "required": True, "schema": int_param},
                {"name": "turn_id", "in": "path", "required": True, "schema": int_param},
            ],
            "responses": {
                "200": {
                    "description": "Event stream",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                },
                "403": {"description": "No study session, or CSRF failure"},
                "404": {"description": "Not a turn of the worker's open tasks"},
                "405": {"description": "Only POST"},
            },
        }
    }
    return result
