"""A bounded schemathesis run over the study site as deployed (the ASGI app under uvicorn, real
HTTP, PostgreSQL): every study API and the HTML form pages (entry, invitation, consent,
demographics, topics, post-task, continue-here). Malformed, oversized, deeply nested and hostile
inputs get a 4xx, never a 5xx, and a refused request never changes stored data.

The form pages have no OpenAPI of their own; :data:`FORM_PAGES` describes them for this run.
Each operation runs against a session in the state where its page does real work (a worker who
still owes consent for ``/consent/``, a task in the post-task step for ``/after/``, ...).
The run prints how many cases were sent, how many got a 5xx, and the cases per operation.
Schemathesis 4 adds its coverage phase (boundary and type-violating values of every field) to the
``IFLLM_SCHEMA_EXAMPLES`` random cases per operation (default 2): about 1,150 cases in all, a
third of them on the batch endpoint (see :func:`_trim_batch_operation`). On top: hand-made hostile
bodies, and every POST with each body charset and content type (``CHARSETS`` x ``CONTENT_TYPES``).
The full run of 10,000+ cases is ``benchmarks/fuzz.sh`` (it prints the counts).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import requests
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, settings

from collection.models import CalibrationAttempt, LLMModel, Task, Topic, TrajectoryChunk, Turn, Worker
from collection.services import study
from tests.support.servers import uvicorn_in_thread

from .conftest import choose, complete_profile, pass_calibration

# Marked so pytest-django creates the test database; the data lives in the module fixture.
pytestmark = pytest.mark.django_db
EXAMPLES = int(os.environ.get("IFLLM_SCHEMA_EXAMPLES", "2"))
SNAPSHOT_EVERY = int(os.environ.get("IFLLM_SCHEMA_SNAPSHOT_EVERY", "1"))
FORM = "application/x-www-form-urlencoded"
TEXT = {"type": "string"}


def _form_post(props: dict, required: tuple[str, ...] = (), params: list | None = None) -> dict:
    op: dict = {
        "requestBody": {"required": True, "content": {FORM: {"schema": {
            "type": "object", "properties": props, "required": list(required)}}}},
        "responses": {"200": {"description": "the page (with form errors)"}, "302": {"description": "next step"},
                      "400": {"description": "bad request"}, "403": {"description": "refused"}},
    }
    if params:
        op["parameters"] = params
    return op


def _path_param(name: str, schema: dict) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema}


TASK_ID = _path_param("task_id", {"type": "integer"})
FORM_PAGES: dict[str, dict] = {
    "/": {
        "get": {
            "parameters": [{"name": n, "in": "query", "required": False, "schema": TEXT} for n in (
                "assignmentId", "hitId", "workerId", "turkSubmitTo", "PROLIFIC_PID", "STUDY_ID", "SESSION_ID")],
            "responses": {"200": {"description": "page"}, "302": {"description": "entered"}},
        },
        "post": _form_post({"worker_id": TEXT}),
    },
    "/join/{token}/": {"post": _form_post({}, params=[_path_param("token", TEXT)])},
    "/consent/": {"post": _form_post({"consent": TEXT})},
    "/about-you/": {"post": _form_post({
        "age": {"anyOf": [{"type": "integer"}, TEXT]}, "location": TEXT, "education": TEXT, "race": TEXT,
        "race_other": TEXT, "gender": TEXT, "gender_other": TEXT})},
    "/topics/": {"post": _form_post({"topics": {"type": "array", "items": {"anyOf": [{"type": "integer"}, TEXT]}}})},
    "/task/{task_id}/after/": {"post": _form_post({
        "summary": TEXT, "understand_before": {"anyOf": [{"type": "integer"}, TEXT]},
        "understand_after": {"anyOf": [{"type": "integer"}, TEXT]}, "copy_sentence": TEXT, "feedback": TEXT,
    }, params=[TASK_ID])},
    "/task/{task_id}/continue-here/": {"post": _form_post({}, params=[TASK_ID])},
    "/instructions/": {"post": _form_post({})},
}

_api = schemathesis.openapi.from_wsgi("/api/schema/", WSGIHandler()).raw_schema
# Every API operation (the jobs API answers a worker's session 403/404: it must never 5xx either).
_raw = {**_api, "paths": {p: v for p, v in _api["paths"].items() if p.startswith(("/api/", "/task/"))}}


def _trim_batch_operation(raw: dict) -> None:
    """The batch endpoint has its own tests (tests/site/test_batches.py, test_limits.py); here
    it keeps every column's boundary and type-violating values but not what made it most of
    the run: the ``text/plain`` twin of the JSON body (the same parser, for sendBeacon) and
    ``maxItems`` (10,000), which had the coverage phase post columns of 10,000 and 10,001 items.
    """
    body = raw["paths"]["/api/study/tasks/{task_id}/batches/"]["post"]["requestBody"]
    body["content"] = {"application/json": body["content"]["application/json"]}
    columns = raw["components"]["schemas"]["SampleColumns"]["properties"]
    raw["components"]["schemas"]["SampleColumns"] = {
        **raw["components"]["schemas"]["SampleColumns"],
        "properties": {name: {k: v for k, v in col.items() if k != "maxItems"} for name, col in columns.items()},
    }


_raw = json.loads(json.dumps(_raw))  # a copy: the trimmed schema is this test's only
_trim_batch_operation(_raw)
_raw["paths"].update(FORM_PAGES)
schema = schemathesis.openapi.from_dict(_raw)

STATS: Counter = Counter()
TIMES: Counter = Counter()


def _stats_write() -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(os.path.join(os.environ["IFLLM_FUZZ_STATS_DIR"], f"{worker}.json"), "w") as fh:
        json.dump(STATS, fh)


@pytest.fixture(scope="module", autouse=True)
def report(request) -> Iterator[None]:
    """Print the count of cases and of 5xx answers (the figure the issue asks for)."""
    yield
    line = (f"schemathesis: {STATS['cases']} cases over {STATS['operations']} operations "
            f"({EXAMPLES} per operation), {STATS['5xx']} answered 5xx; by status: "
            + ", ".join(f"{k[7:]}: {v}" for k, v in sorted(STATS.items()) if k.startswith("status "))
            )
    if os.environ.get("IFLLM_SCHEMA_TIMES"):
        with open(os.environ["IFLLM_SCHEMA_TIMES"], "w") as fh:
            json.dump({"times": TIMES, "stats": STATS}, fh, indent=1)
    if os.environ.get("IFLLM_FUZZ_STATS_DIR"):  # benchmarks/fuzz.sh sums the xdist workers' counts
        _stats_write()
    slowest = ", ".join(f"{k} {v:.0f}s" for k, v in TIMES.most_common(3))
    line += f"; slowest operations: {slowest}"
    per_op = ", ".join(f"{k[6:]} {v}" for k, v in sorted(STATS.items(), key=lambda kv: -kv[1])
                       if k.startswith("cases "))
    # With capture suspended (as ``capsys.disabled()`` does), so the figures are in every run's
    # output: during a fixture's teardown even sys.__stdout__ writes to pytest's captured fd.
    capman = request.config.pluginmanager.get_plugin("capturemanager")
    with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
        sys.stdout.write(f"\n{line}\nschemathesis cases per operation: {per_op}\n")
        sys.stdout.flush()


@pytest.fixture(scope="module")
def live(django_db_setup, django_db_blocker) -> Iterator[dict]:
    """Once per module: the deployed stack (``ifllm_site.asgi.application`` under uvicorn, on a
    free port) and one committed browser session per page state (see the module docstring).
    Module-scoped (set up once, flushed at the end) so the time goes into cases, not set-up."""
    from django.core.management import call_command

    with django_db_blocker.unblock(), uvicorn_in_thread(log_level="critical", name="uvicorn-schemathesis") as url:
        try:
            yield {"url": url, "states": _states()}
        finally:
            call_command("flush", interactive=False, verbosity=0)


def _cookies(client: Client) -> dict[str, str]:
    client.get(reverse("collection:start"))  # sets the CSRF cookie
    return {k: v.value for k, v in client.cookies.items()}


def _mturk(client: Client, worker: str) -> None:
    r = client.get(reverse("collection:start"), {"assignmentId": f"A-{worker}", "hitId": "H",
                                                  "workerId": worker, "turkSubmitTo": "https://www.mturk.com"})
    assert r.status_code == 302


def _states() -> dict:
    for i in range(6):
        Topic.objects.create(title=f"Topic {i}")
    for c in "abc":
        LLMModel.objects.create(name=f"demo-{c}", provider="demo", model_id=f"demo-{c}", quota=100, enabled=True)
    cfg = study.study_settings_get()
    cfg.min_seconds, cfg.lab_typed_ids = 0, True  # the typed-id form is checked too
    cfg.save()
    out: dict = {}
    anon = Client()
    out["anonymous"] = {"cookies": _cookies(anon)}
    fresh = Client()
    _mturk(fresh, "fresh")
    out["consent"] = {"cookies": _cookies(fresh)}
    consented = Client()
    _mturk(consented, "consented")
    consented.post(reverse("collection:consent"), {"consent": "on"})
    out["demographics"] = {"cookies": _cookies(consented)}
    profiled = Client()
    _mturk(profiled, "profiled")
    complete_profile(profiled)
    out["topics"] = {"cookies": _cookies(profiled)}
    post = Client()
    _mturk(post, "post")
    complete_profile(post)
    (task,) = choose(post)
    pass_calibration(post, task)
    turn = study.turn_create(task=task, query="What is it?")
    study.turn_response_store(turn=turn, side=1, text="It is a thing. It has parts.")
    study.turn_response_store(turn=turn, side=2, text="It is another thing.")
    Task.objects.filter(pk=task.pk).update(status=Task.Status.POST_TASK)
    out["post_task"] = {"cookies": _cookies(post), "task": task, "turn": turn}
    chat = Client()
    _mturk(chat, "chat")
    complete_profile(chat)
    (task,) = choose(chat)
    pass_calibration(chat, task)
    turn = study.turn_create(task=task, query="A first question?")
    study.turn_response_store(turn=turn, side=1, text="An answer.")
    study.turn_response_store(turn=turn, side=2, text="Another answer.")
    chat.get(reverse("collection:chat", args=[task.pk]))
    out["chat"] = {"cookies": _cookies(chat), "task": task, "turn": turn}
    return out


def state_for(path: str) -> str:
    if path in ("/", "/join/{token}/", "/api/jobs/{id}/"):
        return "anonymous"
    return {"/consent/": "consent", "/about-you/": "demographics", "/topics/": "topics",
            "/task/{task_id}/after/": "post_task", "/task/{task_id}/continue-here/": "post_task"}.get(path, "chat")


def snapshot() -> tuple:
    """What a request may not change unless it is accepted (a page view's ``last_seen_at`` aside:
    opening a task's page is activity, not data)."""
    return (
        list(Task.objects.order_by("pk").values(*[f.attname for f in Task._meta.concrete_fields
                                                    if f.name != "last_seen_at"])),
        list(Turn.objects.order_by("pk").values()),
        list(TrajectoryChunk.objects.order_by("pk").values_list("pk", "seq", "digest")),
        CalibrationAttempt.objects.count(),
        list(Worker.objects.order_by("pk").values()),
    )


def send(case, state: dict, base_url: str):
    token = state["cookies"]["csrftoken"]
    case.cookies = {**(case.cookies or {}), **state["cookies"]}
    return case.call(base_url=base_url, headers={"X-CSRFToken": token}, allow_redirects=False, timeout=60)


def count(status: int, operation: str | None = None) -> None:
    if STATS["cases"] % 200 == 0 and os.environ.get("IFLLM_FUZZ_STATS_DIR"):
        _stats_write()
    STATS["cases"] += 1
    if operation is not None:
        STATS[f"cases {operation}"] += 1
    STATS[f"status {status}"] += 1
    if status >= 500:
        STATS["5xx"] += 1


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_study_site_never_fails_or_changes_data_on_bad_input(case, live, django_db_blocker):
    state = live["states"][state_for(case.operation.path)]
    # Mostly aim at the session's real task and turn, so that validation (not only the 404 of an
    # unknown id) is what gets exercised; sometimes keep the generated ids.
    if case.path_parameters and hash(repr(case.body)) % 4 and "task" in state:
        if "task_id" in case.path_parameters:
            case.path_parameters["task_id"] = state["task"].pk
        if "turn_id" in case.path_parameters:
            case.path_parameters["turn_id"] = state["turn"].pk
    if STATS.get(f"op {case.operation.label}") is None:
        STATS[f"op {case.operation.label}"] = 1
        STATS["operations"] += 1
    # The long run (benchmarks/fuzz.sh) compares stored data around every SNAPSHOT_EVERY-th case
    # only: the two snapshots cost more database work than the case itself.
    check = STATS["cases"] % SNAPSHOT_EVERY == 0
    with django_db_blocker.unblock():
        before = snapshot() if check else None
        t0 = time.monotonic()
        response = send(case, state, live["url"])
        TIMES[case.operation.label] += time.monotonic() - t0
        count(response.status_code, case.operation.label)
        assert response.status_code < 500, response.text[:500]
        if response.status_code >= 400 and check:
            assert snapshot() == before, f"{response.status_code} response changed stored data"


# --- hand-made hostile bodies: deeper than generators go -----------------------------------------

DEEP_ARRAY = "[" * 1000 + "]" * 1000
DEEP_OBJECT = '{"a":' * 1000 + "1" + "}" * 1000
HOSTILE_JSON = [
    DEEP_ARRAY, DEEP_OBJECT, "[" * 100_000, '{"query": "\\u0000"}', '{"query": "\\ud800"}', '{"seq": 1e999}',
    '{"seq": 0, "columns": {"x": ' + DEEP_ARRAY + "}}", '{"likert_1": NaN}', '{"kind": ["calibration"]}',
    "\xff\xfe", "null", '"just a string"', "1" * 5000, '{"points": [' + ",".join(["{}"] * 5000) + "]}",
]
HOSTILE_FORM = [
    "a=%00", "consent=%00", "age=1e999", "topics=" + "&topics=".join(["1"] * 2000), "summary=%ED%A0%80",
    "x=" + "y" * 300_000, "%FF%FE=%FF", "copy_sentence=" + "%00" * 10,
]


def test_hostile_bodies_on_every_operation_are_refused_or_ignored(live, django_db_blocker):
    with django_db_blocker.unblock():
        _hostile(live["states"], live["url"])


def _url(states: dict, server: str, path: str) -> str:
    """``path`` with the session's own task and turn (and a made-up invitation token)."""
    state = states[state_for(path)]
    return server + path.replace("{task_id}", str(state.get("task", states["chat"]["task"]).pk)).replace(
        "{turn_id}", str(states["chat"]["turn"].pk)).replace("{token}", "t" * 32).replace("{id}", "1")


def _reads(operation: dict, body: str, content_type: str) -> bool:
    """Whether the operation would read this body: JSON (every JSON operation parses it) or a form
    field its schema names."""
    if content_type != FORM:
        return True
    schema = json.dumps(operation.get("requestBody", {}))
    names = {part.split("=", 1)[0] for part in body.split("&")}
    return any(f'"{name}"' in schema for name in names if name.isidentifier())


def _hostile(states: dict, server: str) -> None:
    """Every hostile body on every POST operation: never a 5xx. A body that names a field the
    operation reads (or is not valid text) is refused and stores nothing: an API answers 4xx; a
    worker's HTML form answers 4xx or shows the form again with its error (200, as Django forms
    do), never the next step. A body whose fields the operation does not read is ignored."""
    sent = 0
    accepted: list[tuple[str, str, int]] = []
    for path, methods in _raw["paths"].items():
        if "post" not in methods:
            continue
        state, url = states[state_for(path)], _url(states, server, path)
        json_op = "application/json" in json.dumps(methods["post"].get("requestBody", {}))
        bodies = [(b, "application/json") for b in HOSTILE_JSON] if json_op else [(b, FORM) for b in HOSTILE_FORM]
        for body, content_type in bodies:
            before = snapshot()
            r = requests.post(url, data=body.encode("utf-8", "surrogatepass"), cookies=state["cookies"],
                              headers={"Content-Type": content_type, "X-CSRFToken": state["cookies"]["csrftoken"]},
                              allow_redirects=False, timeout=60)
            count(r.status_code)
            sent += 1
            assert r.status_code < 500, (path, body[:60], r.status_code, r.text[:300])
            form_error = content_type == FORM and r.status_code == 200 and "errorlist" in r.text
            if _reads(methods["post"], body, content_type) and not (400 <= r.status_code < 500 or form_error):
                accepted.append((path, body[:40], r.status_code))
            if 400 <= r.status_code < 500 or form_error:
                assert snapshot() == before, (path, body[:60], r.status_code)
    assert sent > 100
    assert not accepted, f"hostile bodies accepted: {accepted}"


# --- every body charset and content type on every operation (issue 22, item 6) -----------------

CHARSETS = ["utf-8", "rot13", "base64", "hex", "zlib", "utf-16", "utf-7", "latin-1", "idna", "nonsense", ""]
CONTENT_TYPES = ["application/json", "text/plain", FORM, "multipart/form-data; boundary=xyz", "application/xml",
                 "application/octet-stream"]
BODIES = {"application/json": b'{"query": "q", "consent": "on"}', "text/plain": b'{"seq": 0}',
          FORM: b"consent=on&query=q&age=30",
          "multipart/form-data; boundary=xyz": b'--xyz\r\nContent-Disposition: form-data; name="consent"\r\n\r\non\r\n'
                                                b"--xyz--\r\n",
          "application/xml": b"<a/>", "application/octet-stream": b"\x00\x01"}


def test_body_charsets_and_content_types_on_every_operation_are_4xx(live, django_db_blocker):
    """JSON with ``charset=rot13``/``base64``/``hex``/``zlib`` was a 500 (collection/parsers.py),
    and so was a form post in a non-UTF-8 charset with a CSRF cookie (the 400 handler ran the CSRF
    check again, which read the body again)."""
    with django_db_blocker.unblock():
        sent = _charsets(live["states"], live["url"])
    assert sent >= len(CHARSETS) * len(CONTENT_TYPES) * 8


def _charsets(states: dict, server: str) -> int:
    sent = 0
    for path, methods in _raw["paths"].items():
        if "post" not in methods:
            continue
        state, url = states[state_for(path)], _url(states, server, path)
        for content_type in CONTENT_TYPES:
            for charset in CHARSETS:
                header = f"{content_type}; charset={charset}" if charset else f"{content_type}; charset="
                before = snapshot()
                r = requests.post(url, data=BODIES[content_type], cookies=state["cookies"],
                                  headers={"Content-Type": header, "X-CSRFToken": state["cookies"]["csrftoken"]},
                                  allow_redirects=False, timeout=60)
                count(r.status_code)
                sent += 1
                assert r.status_code < 500, (path, header, r.status_code, r.text[:300])
                if r.status_code >= 400:
                    assert snapshot() == before, (path, header)
    return sent
