"""JSON APIs of the study pages: one APIView per operation, validate then call a service.

Every view is open to anonymous participants (no Django login) but not to anyone: the
:class:`StudyWorkerPermission` needs a worker bound to the server-side session and a valid CSRF
token, and every task is looked up among that worker's own tasks of the session's assignment only
(another worker's task id is a 404, exactly like a task that does not exist). An open task must
also be held by this browser session; otherwise 403 with code ``moved`` (continued elsewhere).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import OperationalError
from django.http import Http404
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotFound, PermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import session as study_session
from .models import CalibrationAttempt, Task, Turn
from .parsers import BeaconJSONParser, PayloadTooLarge, SafeJSONParser, max_body_bytes
from .serializers import MAX_BATCH_SAMPLES, SampleColumnsSerializer
from .services import identity, study
from .services.trajectory import (
    BatchConflict,
    TaskGone,
    trajectory_batch_ingest,
    trajectory_batch_ingest_owned,
    trajectory_batch_stored,
    trajectory_batch_window_open,
)
from .tracker_versions import tracker_versions

#: Query parameter carrying the CSRF token where no header can be set (navigator.sendBeacon).
BEACON_CSRF_PARAM = "csrf_token"

logger = logging.getLogger(__name__)


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request: Any, reason: str) -> str:
        return reason


class StudyWorkerPermission(BasePermission):
    """A worker is bound to the session, the session is not idle, and the CSRF token is valid."""

    message = "No study session: start the study from its entry page."

    def has_permission(self, request: Request, view: APIView) -> bool:
        django_request = request._request
        token = request.query_params.get(BEACON_CSRF_PARAM)
        if token and "HTTP_X_CSRFTOKEN" not in django_request.META:
            django_request.META["HTTP_X_CSRFTOKEN"] = token
        reason = _CsrfCheck(lambda r: None).process_view(django_request, None, (), {})
        if reason:
            raise PermissionDenied(f"CSRF failed: {reason}")
        worker_id = django_request.session.get(study_session.WORKER_KEY)
        if worker_id is None:
            return False
        if getattr(view, "counts_as_activity", True):
            if study_session.idle_expired(django_request):
                study_session.session_end(django_request)
                raise PermissionDenied("The session ended after a long time without activity.")
            study_session.activity_touch(django_request)
        request.study_worker_id = worker_id
        return True


class TaskMoved(APIException):
    status_code = status.HTTP_403_FORBIDDEN
    default_detail = "This task continues in another window."
    default_code = "moved"

    def __init__(self) -> None:
        super().__init__({"detail": self.default_detail, "code": self.default_code})


class StudyApi(APIView):
    """Base of the study APIs: session identity, no Django login, CSRF checked by the permission."""

    authentication_classes: list = []
    permission_classes = [StudyWorkerPermission]

    def handle_exception(self, exc: Exception) -> Response:
        """Lock contention (SQLite under concurrent writers) is a 503 the page retries, not a 500:
        the transaction was rolled back, so nothing was half stored."""
        if isinstance(exc, OperationalError):
            logger.warning("%s: database busy (%s)", type(self).__name__, exc)
            return Response({"detail": "The server is busy; retry.", "code": "busy"},
                            status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "1"})
        return super().handle_exception(exc)

    def own_task(self, request: Request, task_id: int) -> Task:
        session = request._request.session
        try:
            # One query for identity and ownership: a blocked worker's tasks are not found either,
            # nor those another assignment started.
            task = get_object_or_404(Task.objects.select_related("topic"), pk=task_id,
                                     worker_id=request.study_worker_id, worker__blocked=False,
                                     assignment_id=study_session.entry_get(request._request).assignment_id)
        except Http404:
            raise NotFound("No such task.") from None
        if task.status in study.OPEN_STATUSES and task.holder != session.get(study_session.HOLDER_KEY):
            if task.holder or not identity.task_hold(task=task, holder=study_session.holder_get(request._request)):
                raise TaskMoved()
        return task

    def own_turn(self, task: Task, turn_id: int) -> Turn:
        turn = Turn.objects.filter(pk=turn_id, task=task).first()
        if turn is None:
            raise NotFound("No such turn.")
        return turn

    @staticmethod
    def study_error(exc: study.StudyError, *, status_code: int = status.HTTP_409_CONFLICT) -> Response:
        body: dict[str, Any] = {"detail": exc.message, "code": exc.code}
        if exc.field:
            body[exc.field] = [exc.message]
            status_code = status.HTTP_400_BAD_REQUEST
        return Response(body, status=status_code)


class TurnOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Turn
        fields = [
            "id", "index", "query", "bullet_instruction", "response_1", "response_2", "error_1", "error_2",
            "likert_1", "likert_2", "preferred", "better_than_previous", "asked_at", "answered_at", "rated_at",
        ]


class ProgressSerializer(serializers.Serializer):
    rated_turns = serializers.IntegerField()
    min_turns = serializers.IntegerField()
    elapsed_s = serializers.FloatField()
    min_seconds = serializers.IntegerField()
    seconds_left = serializers.FloatField()
    can_finish = serializers.BooleanField()


class TaskDetailApi(StudyApi):
    """State of one of the worker's tasks, with its turns (what the chat page resumes from)."""

    counts_as_activity = False

    @extend_schema_serializer(component_name="StudyTaskDetailOutput")
    class OutputSerializer(serializers.ModelSerializer):
        topic = serializers.CharField(source="topic.title")
        turns = TurnOutputSerializer(many=True)
        progress = serializers.SerializerMethodField()

        class Meta:
            model = Task
            fields = ["id", "topic", "mode", "status", "calibration_score", "turns", "progress"]

        @extend_schema(responses=ProgressSerializer)
        def get_progress(self, task: Task) -> dict[str, Any]:
            return study.task_chat_progress(task=task)

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request, task_id: int) -> Response:
        task = self.own_task(request, task_id)
        return Response(self.OutputSerializer(task).data)


def _validated_items(serializer_class: type[serializers.Serializer], value: list[dict]) -> list[dict]:
    """Each object of a list validated by ``serializer_class`` (a 400 names the item), as dicts."""
    ser = serializer_class(data=value, many=True)
    ser.is_valid(raise_exception=True)
    return [dict(item) for item in ser.validated_data]


#: What one calibration attempt needs, with room: the page validates at 5 targets (the centre
#: for 5 s, the others for 1.5 s) and WebGazer gives at most one estimate per display frame
#: (1,000 samples is 5 s at 200 Hz); 9 dots x up to 20 clicks each. A request beyond that is
#: refused before it costs server time (issue 22: a 2 MB request took 1.5-1.8 s).
MAX_CALIBRATION_POINTS = 9
MAX_POINT_SAMPLES = 1000
MAX_CALIBRATION_CLICKS = 500
MAX_CALIBRATION_BODY = 1024 * 1024


@extend_schema_serializer(component_name="StudyCalibrationAttemptCreateSample")
class CalibrationSampleSerializer(serializers.Serializer):
    """One gaze estimate during validation (the schema of :class:`GazeSamplesField`'s items)."""

    x = serializers.FloatField(min_value=-1e6, max_value=1e6)
    y = serializers.FloatField(min_value=-1e6, max_value=1e6)
    t = serializers.FloatField(min_value=0, max_value=1e10)


_SAMPLE_RANGES = {"x": (-1e6, 1e6), "y": (-1e6, 1e6), "t": (0.0, 1e10)}


@extend_schema_field(CalibrationSampleSerializer(many=True))
class GazeSamplesField(serializers.Field):
    """A point's ``samples``: ``[{x, y, t}, ...]`` with the ranges of
    :class:`CalibrationSampleSerializer`, checked in one plain loop (a serializer per sample
    cost about 0.1 ms each). Errors name the item and the key."""

    def to_internal_value(self, data: Any) -> list[dict[str, float]]:
        if not isinstance(data, list):
            raise serializers.ValidationError(_("Expected a list of samples."))
        if len(data) > MAX_POINT_SAMPLES:
            raise serializers.ValidationError(_("At most %(n)d samples per point.") % {"n": MAX_POINT_SAMPLES})
        out = []
        for i, item in enumerate(data):
            if not isinstance(item, dict):
                raise serializers.ValidationError({i: [_("Expected an object with x, y and t.")]})
            row = {}
            for key, (low, high) in _SAMPLE_RANGES.items():
                value = item.get(key)
                if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
                    raise serializers.ValidationError(
                        {i: {key: [_("A number from %(low)g to %(high)g is required.") % {"low": low, "high": high}]}})
                row[key] = float(value)
            out.append(row)
        return out

    def to_representation(self, value: Any) -> Any:
        return value


class CalibrationAttemptCreateApi(StudyApi):
    """Store one calibration/validation attempt; the server computes the score and pass/fail."""

    max_body_bytes = MAX_CALIBRATION_BODY  # read by collection.parsers.SafeJSONParser

    @extend_schema_serializer(component_name="StudyCalibrationAttemptCreatePoint")
    class PointSerializer(serializers.Serializer):
        x = serializers.FloatField(min_value=-1e6, max_value=1e6)
        y = serializers.FloatField(min_value=-1e6, max_value=1e6)
        centre = serializers.BooleanField(default=False)
        samples = GazeSamplesField()
        frames = serializers.IntegerField(
            min_value=0, max_value=100_000, required=False, allow_null=True, default=None,
            help_text="The tracker's frames while the target was judged, with or without a prediction.",
        )

    @extend_schema_serializer(component_name="StudyCalibrationAttemptCreateClick")
    class ClickSerializer(serializers.Serializer):
        point = serializers.IntegerField(min_value=0, max_value=100)
        x = serializers.FloatField(min_value=-1e6, max_value=1e6)
        y = serializers.FloatField(min_value=-1e6, max_value=1e6)
        t = serializers.FloatField(min_value=0, max_value=1e10)

    @extend_schema_serializer(component_name="StudyCalibrationAttemptCreateEnvironment")
    class EnvironmentSerializer(serializers.Serializer):
        """What the eye-tracking report needs to turn pixels into degrees (optional: older pages)."""

        screen_w = serializers.IntegerField(min_value=100, max_value=100_000)
        screen_h = serializers.IntegerField(min_value=100, max_value=100_000)
        device_pixel_ratio = serializers.FloatField(min_value=0.1, max_value=16, default=1.0)
        camera_w = serializers.IntegerField(min_value=1, max_value=100_000, required=False, allow_null=True)
        camera_h = serializers.IntegerField(min_value=1, max_value=100_000, required=False, allow_null=True)
        camera_fps = serializers.FloatField(min_value=0, max_value=1000, required=False, allow_null=True)

    @extend_schema_serializer(component_name="StudyCalibrationAttemptCreateInput")
    class InputSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=CalibrationAttempt.Kind.choices)
        viewport_w = serializers.IntegerField(min_value=100, max_value=100_000)
        viewport_h = serializers.IntegerField(min_value=100, max_value=100_000)
        clicks = serializers.ListField(child=serializers.DictField(), max_length=MAX_CALIBRATION_CLICKS, default=list)
        points = serializers.ListField(child=serializers.DictField(), min_length=1, max_length=MAX_CALIBRATION_POINTS)
        head_in_box_share = serializers.FloatField(min_value=0, max_value=1, default=None, allow_null=True)
        face_found_share = serializers.FloatField(min_value=0, max_value=1, default=None, allow_null=True)
        environment = serializers.DictField(required=False)

        def validate_environment(self, value: dict) -> dict:
            ser = CalibrationAttemptCreateApi.EnvironmentSerializer(data=value)
            ser.is_valid(raise_exception=True)
            return dict(ser.validated_data)

        def validate_clicks(self, value: list[dict]) -> list[dict]:
            return _validated_items(CalibrationAttemptCreateApi.ClickSerializer, value)

        def validate_points(self, value: list[dict]) -> list[dict]:
            return _validated_items(CalibrationAttemptCreateApi.PointSerializer, value)

    @extend_schema_serializer(component_name="StudyCalibrationAttemptCreateOutput")
    class OutputSerializer(serializers.ModelSerializer):
        task_status = serializers.CharField(source="task.status")
        way_out_url = serializers.SerializerMethodField()
        reason = serializers.SerializerMethodField()

        class Meta:
            model = CalibrationAttempt
            fields = ["id", "kind", "score", "threshold", "passed", "points", "rule", "reason", "task_status",
                      "way_out_url"]

        @extend_schema_field(serializers.ChoiceField(choices=["no_face", "accuracy"], allow_null=True))
        def get_reason(self, attempt: CalibrationAttempt) -> str | None:
            """Why the attempt failed, for the worker's advice (null when it passed)."""
            return study.attempt_failure_reason(attempt)

        def get_way_out_url(self, attempt: CalibrationAttempt) -> str | None:
            """Where the page goes when this failure was the last one allowed (else null)."""
            from django.urls import reverse

            if attempt.task.calibration_failed_at is None:
                return None
            return reverse("collection:calibration_failed", kwargs={"task_id": attempt.task_id})

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request: Request, task_id: int) -> Response:
        task = self.own_task(request, task_id)
        ser = self.InputSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        data = dict(ser.validated_data)
        # The versions come from the site's own files, not from the page.
        data["environment"] = {**data.get("environment", {}), **tracker_versions()}
        try:
            attempt = study.calibration_attempt_record(task=task, **data)
        except study.StudyError as exc:
            return self.study_error(exc)
        if attempt.passed:
            request._request.session[study_session.CALIBRATED_KEY] = True
        elif attempt.task.calibration_failed_at is not None:
            request._request.session[study_session.WAY_OUT_KEY] = attempt.task_id
        return Response(self.OutputSerializer(attempt).data, status=status.HTTP_201_CREATED)


class TurnCreateApi(StudyApi):
    """Ask a question; the answers are then fetched from the turn's answer stream."""

    @extend_schema_serializer(component_name="StudyTurnCreateInput")
    class InputSerializer(serializers.Serializer):
        query = serializers.CharField(max_length=study.MAX_QUERY_CHARS, trim_whitespace=True)

    @extend_schema_serializer(component_name="StudyTurnCreateOutput")
    class OutputSerializer(serializers.ModelSerializer):
        class Meta:
            model = Turn
            fields = ["id", "index", "query"]

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request: Request, task_id: int) -> Response:
        task = self.own_task(request, task_id)
        ser = self.InputSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        try:
            turn = study.turn_create(task=task, query=ser.validated_data["query"])
        except study.StudyError as exc:
            return self.study_error(exc)
        return Response(self.OutputSerializer(turn).data, status=status.HTTP_201_CREATED)


class BoxLayoutSerializer(serializers.Serializer):
    """How one answer box looked (its computed style), so that the replay draws it the same."""

    width = serializers.FloatField(min_value=1, max_value=100_000)
    height = serializers.FloatField(min_value=1, max_value=100_000)
    client_width = serializers.FloatField(min_value=0, max_value=100_000)
    client_height = serializers.FloatField(min_value=0, max_value=100_000)
    font_family = serializers.CharField(max_length=300)
    font_size_px = serializers.FloatField(min_value=1, max_value=500)
    line_height_px = serializers.FloatField(min_value=1, max_value=1000, required=False, allow_null=True)
    padding = serializers.ListField(child=serializers.FloatField(min_value=0, max_value=1000), min_length=4,
                                    max_length=4, help_text="top, right, bottom, left (CSS px)")
    border = serializers.ListField(child=serializers.FloatField(min_value=0, max_value=1000), min_length=4,
                                   max_length=4, help_text="top, right, bottom, left (CSS px)")


class TurnRateApi(StudyApi):
    """Save the ratings given so far for a turn (partial: send only what changed)."""

    @extend_schema_serializer(component_name="StudyTurnRateInput")
    class InputSerializer(serializers.Serializer):
        likert_1 = serializers.IntegerField(min_value=1, max_value=5, required=False)
        likert_2 = serializers.IntegerField(min_value=1, max_value=5, required=False)
        preferred = serializers.ChoiceField(choices=Turn.Side.choices, required=False)
        better_than_previous = serializers.BooleanField(required=False)
        # Not ratings: the answer boxes' layout while rating (for the replay), sent along.
        box_1 = BoxLayoutSerializer(required=False)
        box_2 = BoxLayoutSerializer(required=False)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if not any(k in attrs for k in ("likert_1", "likert_2", "preferred", "better_than_previous")):
                raise serializers.ValidationError("Send at least one rating.")
            return attrs

    @extend_schema_serializer(component_name="StudyTurnRateOutput")
    class OutputSerializer(serializers.Serializer):
        turn = TurnOutputSerializer()
        complete = serializers.BooleanField()
        progress = ProgressSerializer()

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def post(self, request: Request, task_id: int, turn_id: int) -> Response:
        task = self.own_task(request, task_id)
        turn = self.own_turn(task, turn_id)
        ser = self.InputSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        ratings = dict(ser.validated_data)
        layout = {str(n): dict(ratings.pop(f"box_{n}")) for n in (1, 2) if f"box_{n}" in ratings}
        try:
            turn = study.turn_rate(turn=turn, ratings=ratings, box_layout=layout)
        except study.StudyError as exc:
            return self.study_error(exc)
        task.refresh_from_db()
        out = {
            "turn": turn,
            "complete": not study.turn_missing_ratings(turn, task.mode),
            "progress": study.task_chat_progress(task=task),
        }
        return Response(self.OutputSerializer(out).data)


class TaskChatFinishApi(StudyApi):
    """Leave the chat for the post-task questions (server checks N rated turns and T seconds)."""

    @extend_schema_serializer(component_name="StudyTaskChatFinishOutput")
    class OutputSerializer(serializers.Serializer):
        status = serializers.CharField()
        next_url = serializers.CharField()

    @extend_schema(request=None, responses=OutputSerializer)
    def post(self, request: Request, task_id: int) -> Response:
        from django.urls import reverse

        task = self.own_task(request, task_id)
        try:
            task = study.task_chat_finish(task=task)
        except study.StudyError as exc:
            return self.study_error(exc)
        return Response({"status": task.status,
                         "next_url": reverse("collection:post_task", kwargs={"task_id": task.pk})})


class TrajectoryBatchCreateApi(StudyApi):
    """Store one numbered batch of gaze/mouse samples, exactly once.

    201: stored now; 200: this batch was already stored (a re-send: acknowledged again);
    409: another batch holds this number (the page renumbers and re-sends); 400 names the field;
    413: more than ``MAX_BATCH_SAMPLES`` samples or a body over the request limit (the body gives
    both limits; the page splits the batch in two and sends the halves).
    Accepts ``?csrf_token=`` for ``navigator.sendBeacon``, which cannot set headers, and a JSON
    ``text/plain`` body (what beacons send).
    """

    # Batches keep flowing while a worker reads without touching anything: not activity.
    counts_as_activity = False

    @extend_schema_serializer(component_name="StudyTrajectoryBatchCreateInput")
    class InputSerializer(serializers.Serializer):
        seq = serializers.IntegerField(min_value=0, max_value=2**31 - 1)
        idempotency_key = serializers.CharField(max_length=100, required=False)
        columns = SampleColumnsSerializer()

    @extend_schema_serializer(component_name="StudyTrajectoryBatchCreateOutput")
    class OutputSerializer(serializers.Serializer):
        seq = serializers.IntegerField()
        n_samples = serializers.IntegerField()
        created = serializers.BooleanField()

    def get_parsers(self) -> list:
        return [SafeJSONParser(), BeaconJSONParser()]

    @extend_schema(
        request=InputSerializer,
        responses={200: OutputSerializer, 201: OutputSerializer},
        parameters=[OpenApiParameter(BEACON_CSRF_PARAM, str, required=False,
                                     description="CSRF token for sendBeacon requests")],
    )
    def post(self, request: Request, task_id: int) -> Response:
        columns = request.data.get("columns") if isinstance(request.data, dict) else None
        if isinstance(columns, dict) and any(
            isinstance(c, list) and len(c) > MAX_BATCH_SAMPLES for c in columns.values()
        ):
            # Too large, not wrong: the page splits the batch and sends the halves.
            self.own_task(request, task_id)
            raise PayloadTooLarge(f"A batch may carry at most {MAX_BATCH_SAMPLES} samples.",
                                  max_bytes=max_body_bytes(), max_samples=MAX_BATCH_SAMPLES)
        ser = self.InputSerializer(data=request.data)
        if not ser.is_valid():
            # Refusals keep their order (404 / "moved" before 400); only valid batches skip the
            # separate task lookup.
            self.own_task(request, task_id)
            raise serializers.ValidationError(ser.errors)
        columns = ser.validated_data["columns"]
        turn_ids = {t for t in columns["turn_id"].unique().to_pylist() if t is not None}
        django_request = request._request
        # The common case in one round trip after the session's; anything else (another
        # session's task, a re-send, a foreign turn...) stores nothing there and takes the full
        # path below, which gives the precise answer.
        fast = trajectory_batch_ingest_owned(
            task_id=task_id, worker_id=request.study_worker_id,
            assignment_id=study_session.entry_get(django_request).assignment_id,
            holder=django_request.session.get(study_session.HOLDER_KEY),
            seq=ser.validated_data["seq"], columns=columns, turn_ids=turn_ids,
        )
        if fast is not None:
            out = self.OutputSerializer({"seq": fast.seq, "n_samples": fast.n_samples, "created": True})
            return Response(out.data, status=status.HTTP_201_CREATED)
        task = self.own_task(request, task_id)
        if not trajectory_batch_window_open(task):
            resent = trajectory_batch_stored(task=task, seq=ser.validated_data["seq"], columns=columns)
            if resent is None:
                # 403: the page's logger stops sending (a 409 would make it renumber and retry).
                return Response({"detail": "This task is finished and takes no more samples.", "code": "task_closed"},
                                status=status.HTTP_403_FORBIDDEN)
            out = self.OutputSerializer({"seq": resent.seq, "n_samples": resent.n_samples, "created": False})
            return Response(out.data, status=status.HTTP_200_OK)
        if turn_ids and Turn.objects.filter(task=task, pk__in=turn_ids).count() != len(turn_ids):
            return Response({"columns": {"turn_id": ["a turn of another task"]}}, status=status.HTTP_400_BAD_REQUEST)
        try:
            result = trajectory_batch_ingest(task=task, seq=ser.validated_data["seq"], columns=columns)
        except BatchConflict as exc:
            return Response({"detail": str(exc), "code": "seq_conflict"}, status=status.HTTP_409_CONFLICT)
        except TaskGone:
            # 404, as for any later request: the page's logger stops sending and keeps its queue.
            return Response({"detail": "No such task.", "code": "task_gone"}, status=status.HTTP_404_NOT_FOUND)
        except OperationalError:
            # Lock contention (SQLite under concurrent writers): nothing was stored, the page retries.
            logger.warning("batch %s of task %s not stored: database busy", ser.validated_data["seq"], task.pk)
            return Response({"detail": "The server is busy; retry.", "code": "busy"},
                            status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "1"})
        out = self.OutputSerializer({"seq": result.seq, "n_samples": result.n_samples, "created": result.created})
        return Response(out.data, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)

