"""Pages of the study, in the order a worker meets them.

Every page after the entry reads the worker from the session (``collection.session``), never
from the URL, and every task id in a URL is looked up among that worker's tasks of the session's
assignment only; an open task also has to be held by this browser session
(``services.identity``). Where the worker should be is decided by :func:`next_step` from the
server's state, so a reload, the back button or a bookmarked URL lands on the right step.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable
from functools import lru_cache, wraps
from typing import Any
from urllib.parse import urlsplit

from csp.constants import UNSAFE_EVAL
from csp.decorators import csp_update
from django.conf import settings
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import staticfiles_storage
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from . import page_texts
from . import session as study_session
from .api import BEACON_CSRF_PARAM, TurnOutputSerializer
from .forms import POST_FORMS, ConsentForm, DemographicsForm, LabEntryForm, TopicChoiceForm
from .models import IdentityEvent, Mode, Platform, Task, Turn, Worker
from .services import identity, study
from .services.chat import turn_answer_events

MTURK_PREVIEW = "ASSIGNMENT_ID_NOT_AVAILABLE"
#: Where an MTurk ExternalQuestion may post back to (anything else would be an open redirect).
MTURK_SUBMIT_HOSTS = ("https://www.mturk.com", "https://workersandbox.mturk.com")


def study_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Load the bound worker (or send to the start), end idle sessions, count the visit as activity."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if study_session.idle_expired(request):
            study_session.session_end(request)
            return redirect("collection:session_ended")
        worker = study_session.worker_get(request)
        if worker is None:
            return redirect("collection:start")
        study_session.activity_touch(request)
        return view(request, worker, *args, **kwargs)

    return wrapper


def _tasks_open(request: HttpRequest, worker: Worker):
    """The open tasks this session may see: the worker's, of the assignment it entered with."""
    return study.tasks_open(worker=worker, assignment_id=study_session.entry_get(request).assignment_id)


def _own_task(request: HttpRequest, worker: Worker, task_id: int) -> Task:
    """One of the worker's tasks of this session's assignment (any other id is a 404)."""
    return get_object_or_404(
        Task.objects.select_related("topic"),
        pk=task_id, worker=worker, assignment_id=study_session.entry_get(request).assignment_id,
    )


def _held_task(request: HttpRequest, worker: Worker, task_id: int) -> Task | HttpResponse:
    """The task if this browser session holds it (claimed if free), else the page that says
    where it is being worked on and offers to continue here."""
    task = _own_task(request, worker, task_id)
    if task.status not in study.OPEN_STATUSES:
        return task
    holder = study_session.holder_get(request)
    if identity.task_hold(task=task, holder=holder):
        study_session.held_add(request, task.pk)
        study.task_seen(task)  # the worker is here: not idle (open tasks expire, services.study.expiry)
        return task
    moved = study_session.held_before(request, task.pk)
    if not moved:
        identity.event_record(kind=IdentityEvent.Kind.SESSION_REFUSED, worker=worker, task=task,
                              entry=study_session.entry_get(request))
    return render(
        request, "collection/other_window.html", _base_context(request, task=task, moved=moved), status=409
    )


@require_POST
@study_page
def take_over(request: HttpRequest, worker: Worker, task_id: int) -> HttpResponse:
    """Continue an open task in this browser session; the other one gets "continued elsewhere"."""
    task = _own_task(request, worker, task_id)
    try:
        identity.task_take_over(task=task, holder=study_session.holder_get(request),
                                entry=study_session.entry_get(request))
    except study.StudyError:
        return next_step(request, worker)
    study_session.held_add(request, task.pk)
    return next_step(request, worker)


def _base_context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    cfg = study.study_settings_get()
    # Every page of a bound worker offers withdrawal (served by crowd: its service reaches every app).
    withdraw_url = reverse("withdraw") if request.session.get(study_session.WORKER_KEY) is not None else None
    return {"idle_timeout_s": cfg.idle_timeout_s, "study_settings": cfg, "withdraw_url": withdraw_url,
            "preview_session": study_session.is_preview(request), **extra}


def _way_out_task_id(request: HttpRequest, worker: Worker) -> int | None:
    """The task whose failed calibration ended this assignment (or, for lab entries, this session):
    after it the study shows only its way out, never the topics again (issue 20, item 8)."""
    task_id = request.session.get(study_session.WAY_OUT_KEY)
    if task_id is None:
        task = study.assignment_way_out(worker_id=worker.pk,
                                        assignment_id=study_session.entry_get(request).assignment_id)
        task_id = task.pk if task is not None else None
    return task_id


def profile_need(request: HttpRequest, worker: Worker) -> str | None:
    """'consent' or 'demographics' while owed. An unverified entry inherits nothing: it owes its
    own (kept in the session and on its tasks, never on the worker)."""
    if not study_session.entry_get(request).unverified:
        return study.worker_needs_profile(worker)
    profile = request.session.get(study_session.PROFILE_KEY) or {}
    if not profile.get("consent"):
        return "consent"
    return None if "age" in profile else "demographics"


def _profile_store(request: HttpRequest, **values: Any) -> None:
    request.session[study_session.PROFILE_KEY] = {**(request.session.get(study_session.PROFILE_KEY) or {}),
                                                  **values}


def next_step(request: HttpRequest, worker: Worker) -> HttpResponse:
    """Redirect to where the worker is, from the server's state only."""
    need = profile_need(request, worker)
    if need == "consent":
        return redirect("collection:consent")
    if need == "demographics":
        return redirect("collection:demographics")
    way_out = _way_out_task_id(request, worker)
    if way_out is not None:
        return redirect("collection:calibration_failed", task_id=way_out)
    task = _tasks_open(request, worker).first()
    if task is None:
        return redirect("collection:topics")
    if not request.session.get(study_session.INSTRUCTIONS_KEY):
        return redirect("collection:instructions")
    if task.status in (Task.Status.CHOSEN, Task.Status.CALIBRATING):
        return redirect("collection:calibrate", task_id=task.pk)
    if task.status == Task.Status.CHATTING:
        return redirect("collection:chat", task_id=task.pk)
    return redirect("collection:post_task", task_id=task.pk)


@study_page
def resume(request: HttpRequest, worker: Worker) -> HttpResponse:
    return next_step(request, worker)


# --- entry ---------------------------------------------------------------------------------------


def _entry_from_params(params: Any) -> study.Entry | str | None:
    """An Entry from MTurk/Prolific parameters, ``"preview"``, an error message, or None (lab)."""
    if "assignmentId" in params:
        if params["assignmentId"] == MTURK_PREVIEW:
            return "preview"
        if not identity.WELL_FORMED_ID.fullmatch(params["assignmentId"]):
            return _("This link has no valid assignmentId.")
        submit_to = params.get("turkSubmitTo", "").rstrip("/")
        if submit_to not in MTURK_SUBMIT_HOSTS:
            return _("This link is missing a valid turkSubmitTo address.")
        if not params.get("workerId") or not params.get("hitId"):
            return _("This link is missing the worker or HIT id.")
        return study.Entry(
            platform=Platform.MTURK,
            assignment_id=params["assignmentId"][:128],
            hit_id=params["hitId"][:128],
            turk_submit_to=submit_to,
        )
    if "PROLIFIC_PID" in params:
        if not params.get("STUDY_ID") or not params.get("SESSION_ID"):
            return _("This link is missing the Prolific study or session id.")
        if not identity.WELL_FORMED_ID.fullmatch(params["SESSION_ID"]):
            return _("This link has no valid SESSION_ID.")
        return study.Entry(
            platform=Platform.PROLIFIC,
            assignment_id=params["SESSION_ID"][:128],
            hit_id=params["STUDY_ID"][:128],
            study_id=params["STUDY_ID"][:128],
            session_id=params["SESSION_ID"][:128],
        )
    return None


@require_http_methods(["GET", "POST"])
def start(request: HttpRequest) -> HttpResponse:
    """Entry: MTurk ExternalQuestion (with preview), Prolific, or the lab's worker-id form."""
    entry = _entry_from_params(request.GET)
    if entry == "preview":
        return render(request, "collection/preview.html", _base_context(request))
    if isinstance(entry, str):
        return render(request, "collection/error.html", _base_context(request, message=entry), status=400)
    if isinstance(entry, study.Entry):
        worker_id = request.GET.get("workerId") or request.GET.get("PROLIFIC_PID", "")
        try:
            worker, entry = identity.entry_admit(platform_worker_id=worker_id, entry=entry)
        except study.StudyError as exc:
            status = {"rate": 429, "malformed": 400}.get(exc.code, 403)
            return render(request, "collection/error.html", _base_context(request, message=exc.message),
                          status=status)
        study_session.worker_bind(request, worker=worker, entry=entry)
        # Open tasks of other assignments stay where they are (recorded, never taken over).
        identity.entry_check(worker=worker, entry=entry)
        return next_step(request, worker)
    bound = study_session.worker_get(request)
    if not study.study_settings_get().lab_typed_ids:
        # Lab participants come with an invitation link; a typed id would let anyone be anyone.
        status = 403 if request.method == "POST" else 200
        return render(request, "collection/start.html", _base_context(request, form=None, bound=bound),
                      status=status)
    form = LabEntryForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            worker = study.worker_get_or_create(
                platform=Platform.LAB, platform_worker_id=form.cleaned_data["worker_id"]
            )
        except study.StudyError as exc:
            form.add_error("worker_id", exc.message)
        else:
            entry = study.Entry(platform=Platform.LAB)
            study_session.worker_bind(request, worker=worker, entry=entry)
            identity.event_record(kind=IdentityEvent.Kind.TYPED_ENTRY, worker=worker, entry=entry)
            return next_step(request, worker)
    return render(request, "collection/start.html", _base_context(request, form=form, bound=bound))


@require_http_methods(["GET", "POST"])
def join(request: HttpRequest, token: str) -> HttpResponse:
    """A lab participant's one-time invitation link.

    GET only shows a button: link previews and mail scanners fetch links, and must not use them up.
    """
    if request.method == "POST":
        try:
            worker = identity.invitation_redeem(token=token)
        except study.StudyError as exc:
            return render(request, "collection/error.html", _base_context(request, message=exc.message),
                          status=403)
        study_session.worker_bind(request, worker=worker, entry=study.Entry(platform=Platform.LAB))
        return next_step(request, worker)
    return render(request, "collection/join.html", _base_context(request))


def session_ended(request: HttpRequest) -> HttpResponse:
    """The clear page after the idle timeout (or when the worker chose to stop)."""
    study_session.session_end(request)
    return render(request, "collection/session_ended.html", _base_context(request))


def unsupported(request: HttpRequest) -> HttpResponse:
    return render(request, "collection/unsupported.html", _base_context(request))


# --- profile, topics, instructions --------------------------------------------------------------


@study_page
def topics(request: HttpRequest, worker: Worker) -> HttpResponse:
    need = profile_need(request, worker)
    if need or _way_out_task_id(request, worker) is not None:
        return next_step(request, worker)
    if _tasks_open(request, worker).exists():
        return next_step(request, worker)
    cfg = study.study_settings_get()
    entry = study_session.entry_get(request)
    offered = request.session.get(study_session.POOL_KEY)
    available = {t.pk: t for t in study.topics_available(worker=worker, assignment_id=entry.assignment_id)}
    if not offered or not set(offered) <= set(available):
        offered = study.topic_pool_draw(worker=worker, assignment_id=entry.assignment_id)
        request.session[study_session.POOL_KEY] = offered
    pool = [available[pk] for pk in offered if pk in available]
    form = TopicChoiceForm(
        request.POST if request.method == "POST" else None, topics=pool, max_topics=cfg.max_topics_per_entry
    )
    if request.method == "POST" and form.is_valid():
        try:
            study.tasks_create_for_topics(
                worker=worker,
                topic_ids=form.cleaned_data["topics"],
                offered=offered,
                entry=entry,
                profile=request.session.get(study_session.PROFILE_KEY) if entry.unverified else None,
            )
        except study.StudyError as exc:
            form.add_error(None, exc.message)
        else:
            request.session.pop(study_session.POOL_KEY, None)
            return next_step(request, worker)
    return render(
        request,
        "collection/topics.html",
        _base_context(request, form=form, pool=pool, max_topics=cfg.max_topics_per_entry,
                      min_turns=cfg.min_turns, min_minutes=max(1, round(cfg.min_seconds / 60))),
    )


@study_page
def consent(request: HttpRequest, worker: Worker) -> HttpResponse:
    form = ConsentForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        if study_session.entry_get(request).unverified:
            _profile_store(request, consent=bool(form.cleaned_data["consent"]))
        else:
            study.worker_consent_give(worker=worker, consent=form.cleaned_data["consent"])
        return next_step(request, worker)
    return render(request, "collection/consent.html", _base_context(request, form=form))


@study_page
def demographics(request: HttpRequest, worker: Worker) -> HttpResponse:
    need = profile_need(request, worker)
    if need == "consent":
        return redirect("collection:consent")
    if need is None:
        return next_step(request, worker)  # given once; a later entry cannot overwrite them
    unverified = study_session.entry_get(request).unverified
    form = DemographicsForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = {k: form.cleaned_data[k] for k in ("age", "location", "education", "race", "gender")}
        try:
            if unverified:
                _profile_store(request, **study.demographics_clean(**data))
            else:
                study.worker_demographics_set(worker=worker, **data)
        except study.StudyError as exc:
            form.add_error(exc.field, exc.message)
        else:
            return next_step(request, worker)
    return render(request, "collection/demographics.html", _base_context(request, form=form))


@study_page
def instructions(request: HttpRequest, worker: Worker) -> HttpResponse:
    first_time = not request.session.get(study_session.INSTRUCTIONS_KEY)
    if request.method == "POST":
        request.session[study_session.INSTRUCTIONS_KEY] = True
        return next_step(request, worker)
    cfg = study.study_settings_get()
    return render(
        request,
        "collection/instructions.html",
        _base_context(
            request,
            first_time=first_time,
            has_task=_tasks_open(request, worker).exists(),
            min_turns=cfg.min_turns,
            min_minutes=max(1, round(cfg.min_seconds / 60)),
            clicks=cfg.calibration_clicks_per_point,
            # Fetched while the instructions are read (tracker_files.mjs), from the HTTP cache later.
            tracker=tracker_files(),
            idle_minutes=max(1, round(cfg.idle_timeout_s / 60)),
        ),
    )


# --- calibration, chat ---------------------------------------------------------------------------


#: What WebGazer 3.5.3 downloads before it tracks (its bundle, then MediaPipe's face mesh in its
#: SIMD build, which every supported browser runs): fetched ahead with progress (tracker_files.mjs).
TRACKER_FILES = (
    "vendor/webgazer/webgazer.js",
    *(f"vendor/webgazer/mediapipe/face_mesh/{name}" for name in (
        "face_mesh_solution_packed_assets_loader.js", "face_mesh_solution_simd_wasm_bin.js",
        "face_mesh.binarypb", "face_mesh_solution_packed_assets.data", "face_mesh_solution_simd_wasm_bin.wasm",
    )),
)


@lru_cache(maxsize=1)
def _tracker_file_sizes() -> tuple[tuple[str, int], ...]:
    """(static path, bytes) of each tracker file found (collected, or from node_modules)."""
    out = []
    for path in TRACKER_FILES:
        found = finders.find(path)
        if found:
            out.append((path, os.path.getsize(found)))
        elif staticfiles_storage.exists(path):
            out.append((path, staticfiles_storage.size(path)))
    return tuple(out)


def tracker_files() -> dict[str, Any]:
    """The tracker files with their sizes (for an honest progress bar: a gzip-served file's
    Content-Length is not what the page counts), and the progress texts."""
    return {
        "files": [{"url": static(path), "bytes": size} for path, size in _tracker_file_sizes()],
        "text": page_texts.tracker_loading(),
    }


def _page_config(request: HttpRequest, task: Task, **extra: Any) -> dict[str, Any]:
    return {
        "taskId": task.pk,
        # One tab per task (tab_lock.mjs): the lock's name and what a second tab says.
        "tabLock": {
            "name": f"ifllm-task-{task.pk}",
            "title": _("This task is open in another tab"),
            "message": _("This task is already open in another tab of this browser. Please go on in that tab; "
                         "only one tab can use the eye tracker and record a task. You can close this tab."),
            "closed": _("If you have closed the other tab, continue here."),
            "continue": _("Continue in this tab"),
        },
        "tracker": tracker_files(),
        "csrfToken": get_token(request),
        "csrfParam": BEACON_CSRF_PARAM,
        "idleTimeoutS": study.study_settings_get().idle_timeout_s,
        "sessionEndedUrl": reverse("collection:session_ended"),
        "unsupportedUrl": reverse("collection:unsupported"),
        "faceMeshPath": static("vendor/webgazer/mediapipe/face_mesh"),
        "webgazerSrc": static("vendor/webgazer/webgazer.js"),
        **extra,
    }


#: WebGazer's bundle (its TF.js/MediaPipe code) calls eval: allowed on the two pages that run it
#: and nowhere else (settings.CONTENT_SECURITY_POLICY; tests/browser/test_csp_webgazer.py).
WEBGAZER_CSP: dict[str, list[str]] = {"script-src": [UNSAFE_EVAL]}
webgazer_csp = csp_update(WEBGAZER_CSP)


@webgazer_csp
@study_page
def calibrate(request: HttpRequest, worker: Worker, task_id: int) -> HttpResponse:
    task = _held_task(request, worker, task_id)
    if isinstance(task, HttpResponse):
        return task
    if task.status not in (Task.Status.CHOSEN, Task.Status.CALIBRATING):
        return next_step(request, worker)
    task = study.task_calibration_start(task=task)
    cfg = study.study_settings_get()
    # A further topic in the same session starts with the short validation; the model is still
    # in the browser. Failing it falls back to a full calibration (in the page).
    revalidate = bool(request.session.get(study_session.CALIBRATED_KEY))
    config = _page_config(
        request,
        task,
        attemptUrl=reverse("collection:api_calibration", kwargs={"task_id": task.pk}),
        nextUrl=reverse("collection:resume"),
        mode="revalidation" if revalidate else "calibration",
        passThreshold=cfg.pass_threshold,
        maxAttempts=cfg.max_calibration_attempts,
        failedBefore=task.calibration_attempts.filter(passed=False).count(),
        keepWebgazerData=cfg.keep_webgazer_data,
        clicksPerPoint=cfg.calibration_clicks_per_point,
    )
    config["text"] = page_texts.calibration(cfg.calibration_clicks_per_point)
    return render(request, "collection/calibrate.html",
                  _base_context(request, task=task, config=config, clicks=cfg.calibration_clicks_per_point))


def _prolific_completion(task: Task, outcome: str) -> dict[str, str] | None:
    """The Prolific code and completion URL of the task's Prolific study for ``outcome``
    (completed, screened_out, partial), from the lab's study settings in the crowd app, asked
    through ``IFLLM_PROLIFIC_COMPLETION`` (collection does not import crowd); None without one."""
    from django.utils.module_loading import import_string

    hook = getattr(settings, "IFLLM_PROLIFIC_COMPLETION", "")
    study_id = task.extra.get("entry", {}).get("study_id") or task.hit_id
    return import_string(hook)(study_id=study_id, outcome=outcome) if hook and study_id else None


@study_page
def calibration_failed(request: HttpRequest, worker: Worker, task_id: int) -> HttpResponse:
    """The way out after too many failed calibrations: why, and what to do now (never a dead end)."""
    task = _own_task(request, worker, task_id)
    if task.calibration_failed_at is None:
        return next_step(request, worker)
    request.session[study_session.WAY_OUT_KEY] = task.pk
    cfg = study.study_settings_get()
    platform = task.extra.get("entry", {}).get("platform", worker.platform)
    code, code_url = (cfg.partial_payment_code if task.calibration_way_out == "code" else ""), ""
    if task.calibration_way_out == "code" and platform == Platform.PROLIFIC:
        # Screened out before any finished topic; partial payment after at least one.
        finished = Task.objects.filter(worker=worker, assignment_id=task.assignment_id,
                                       status=Task.Status.COMPLETED).exists()
        found = _prolific_completion(task, "partial" if finished else "screened_out")
        if found:
            code, code_url = found["code"], found["url"]
    ctx = {
        "task": task,
        "platform": platform,
        "way_out": task.calibration_way_out,
        "reason": study.calibration_failure_reason(task),
        "attempts": task.calibration_attempts.count(),
        "code": code,
        "code_url": code_url,
        "contact": cfg.researcher_contact,
        "forget_webgazer": not cfg.keep_webgazer_data,
    }
    return render(request, "collection/calibration_failed.html", _base_context(request, **ctx))


@webgazer_csp
@study_page
def chat(request: HttpRequest, worker: Worker, task_id: int) -> HttpResponse:
    task = _held_task(request, worker, task_id)
    if isinstance(task, HttpResponse):
        return task
    if task.status != Task.Status.CHATTING:
        return next_step(request, worker)
    cfg = study.study_settings_get()
    turns = list(task.turns.order_by("index"))
    config = _page_config(
        request,
        task,
        mode=task.mode,
        turns=TurnOutputSerializer(turns, many=True).data,
        progress=study.task_chat_progress(task=task),
        sampleIntervalMs=int(task.extra.get("sample_interval_ms", cfg.sample_interval_ms)),
        batchIntervalMs=cfg.batch_interval_ms,
        webgazerLearn=bool(task.extra.get("webgazer_learn_during_task", False)),
        urls={
            "turns": reverse("collection:api_turns", kwargs={"task_id": task.pk}),
            "answer": reverse("collection:turn_answer", kwargs={"task_id": task.pk, "turn_id": 0}),
            "rate": reverse("collection:api_turn_rate", kwargs={"task_id": task.pk, "turn_id": 0}),
            "finish": reverse("collection:api_finish", kwargs={"task_id": task.pk}),
            "batches": reverse("collection:api_batches", kwargs={"task_id": task.pk}),
        },
    )
    config["text"] = page_texts.chat(pairwise=task.mode == Mode.PAIRWISE)
    return render(
        request,
        "collection/chat.html",
        _base_context(request, task=task, config=config, pairwise=task.mode == Mode.PAIRWISE, likert=range(1, 6)),
    )


@require_POST
async def turn_answer(request: HttpRequest, task_id: int, turn_id: int) -> HttpResponse:
    """Server-sent events with the answer(s) of a turn (POST: it may start paid model calls).

    Async so that a long answer holds no thread; CSRF is checked by the middleware.
    """
    worker_pk = await request.session.aget(study_session.WORKER_KEY)
    holder = await request.session.aget(study_session.HOLDER_KEY)
    if worker_pk is None or not holder:
        return HttpResponse(status=403)
    entry = await request.session.aget(study_session.ENTRY_KEY) or {}
    exists = await Turn.objects.filter(
        pk=turn_id, task_id=task_id, task__worker_id=worker_pk, task__status=Task.Status.CHATTING,
        task__assignment_id=entry.get("assignment_id", ""), task__holder=holder,
    ).aexists()
    if not exists:
        raise Http404

    async def events() -> AsyncIterator[str]:
        yield ": stream open\n\n"  # sent at once, so proxies and the page see the stream start
        async for event in turn_answer_events(turn_id=turn_id):
            yield f"event: {event['event']}\ndata: {json.dumps(event)}\n\n"

    response = StreamingHttpResponse(events(), content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


# --- post-task and completion --------------------------------------------------------------------


@study_page
def post_task(request: HttpRequest, worker: Worker, task_id: int) -> HttpResponse:
    task = _held_task(request, worker, task_id)
    if isinstance(task, HttpResponse):
        return task
    if task.status == Task.Status.COMPLETED:
        return redirect("collection:done", task_id=task.pk)
    if task.status != Task.Status.POST_TASK:
        return next_step(request, worker)
    step = study.task_post_step(task)
    form = POST_FORMS[step](request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            task = study.task_post_answer(task=task, step=step, data=form.cleaned_data)
        except study.StudyError as exc:
            form.add_error(exc.field, exc.message)
        else:
            if task.status == Task.Status.COMPLETED:
                return redirect("collection:done", task_id=task.pk)
            return redirect("collection:post_task", task_id=task.pk)
    turns = list(task.turns.order_by("index")) if step == "sentence" else []
    return render(
        request,
        "collection/post_task.html",
        _base_context(
            request,
            task=task,
            form=form,
            step=step,
            step_number=study.POST_STEPS.index(step) + 1,
            n_steps=len(study.POST_STEPS),
            turns=turns,
        ),
    )


@study_page
def done(request: HttpRequest, worker: Worker, task_id: int) -> HttpResponse:
    """The completion code, only for a task the server has checked complete."""
    task = _own_task(request, worker, task_id)
    if task.status != Task.Status.COMPLETED or not task.completion_code:
        return next_step(request, worker)
    next_task = _tasks_open(request, worker).first()
    entry = task.extra.get("entry", {})
    platform = entry.get("platform", Platform.LAB)
    ctx: dict[str, Any] = {"task": task, "next_task": next_task, "platform": platform}
    if next_task is None and platform == Platform.MTURK:
        submit_to = entry.get("turk_submit_to", "")
        if submit_to in MTURK_SUBMIT_HOSTS:
            codes = Task.objects.filter(
                worker=worker, assignment_id=task.assignment_id, status=Task.Status.COMPLETED
            ).values_list("completion_code", flat=True)
            ctx["mturk"] = {
                "action": f"{submit_to}/mturk/externalSubmit",
                "assignment_id": task.assignment_id,
                "codes": ",".join(sorted(c for c in codes if c)),
            }
    if next_task is None and platform == Platform.PROLIFIC:
        found = _prolific_completion(task, "completed")
        url = found["url"] if found else study.study_settings_get().prolific_completion_url
        if url and urlsplit(url).scheme == "https":
            ctx["prolific_url"] = url
            ctx["prolific_code"] = found["code"] if found else ""
    if next_task is not None:
        ctx["next_url"] = reverse("collection:resume")
    else:  # the worker leaves: the next person on this computer must not inherit the calibration
        ctx["forget_webgazer"] = not study.study_settings_get().keep_webgazer_data
        if ctx["forget_webgazer"]:  # ... and a later topic in this session calibrates afresh (item 6)
            request.session.pop(study_session.CALIBRATED_KEY, None)
    return render(request, "collection/done.html", _base_context(request, **ctx))
