"""Reads of the data of record, returned in the pure modules' dataframe formats."""

from __future__ import annotations

import pandas as pd
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from .models import Task, TrajectoryChunk, Turn
from .release import schema


def task_samples(*, task: Task | int) -> pd.DataFrame:
    """All gaze/mouse samples of a task in the long format of ``collection.release.schema``."""
    task_id = task if isinstance(task, int) else task.pk
    blocks = TrajectoryChunk.objects.filter(task_id=task_id).order_by("seq").values_list("data", flat=True)
    return schema.decode_blocks(list(blocks))


def task_stream_summary(*, task: Task | int) -> dict[str, dict[str, int | None]]:
    """Per stream (``gaze/box1`` ...): sample count and first/last epoch ms, from chunk metadata."""
    task_id = task if isinstance(task, int) else task.pk
    out: dict[str, dict[str, int | None]] = {}
    for streams in TrajectoryChunk.objects.filter(task_id=task_id).values_list("streams", flat=True):
        for key, info in streams.items():
            cur = out.setdefault(key, {"count": 0, "first_ms": None, "last_ms": None})
            cur["count"] += info["count"]
            for name, pick in (("first_ms", min), ("last_ms", max)):
                if info.get(name) is not None:
                    cur[name] = info[name] if cur[name] is None else pick(cur[name], info[name])
    return dict(sorted(out.items()))


def tasks_exist() -> bool:
    """Whether any task (imported or collected) is stored: empty staff pages say how to get data."""
    return Task.objects.exists()


def tasks_with_turn_and_sample_counts(qs: QuerySet[Task]) -> QuerySet[Task]:
    """``qs`` annotated with ``n_turns_total`` and ``n_samples_total``, each from its own subquery.

    Why subqueries: ``Count("turns")`` with ``Sum("chunks__n_samples")`` on one queryset joins
    turns and chunks together, so every chunk is summed once per turn (and ``distinct=True``
    cannot fix a sum). One correlated subquery per relation keeps both figures exact and
    sortable.
    """

    def per_task(model: type, aggregate: Count | Sum) -> Coalesce:
        inner = (
            model.objects.filter(task=OuterRef("pk")).order_by().values("task").annotate(v=aggregate).values("v")
        )
        return Coalesce(Subquery(inner, output_field=IntegerField()), 0)

    return qs.annotate(
        n_turns_total=per_task(Turn, Count("pk")),
        n_samples_total=per_task(TrajectoryChunk, Sum("n_samples")),
    )


TURN_COLUMNS = [
    "turn_id", "query_id", "worker", "task_id", "task_pk", "mode", "query", "response_1",
    "response_2", "error_1", "error_2", "model_1", "model_2", "likert_1", "likert_2",
    "preferred", "better_than_previous", "bullet_instruction", "asked_at", "raw_overrides",
]


def turns_frame(*, tasks: QuerySet[Task] | None = None) -> pd.DataFrame:
    """Turns as the dataframe that ``collection.release.reader.read_queries`` returns.

    ``query_id`` is the release's query id, or the turn's primary key for site data;
    ``task_id`` the release task id, or the task's primary key.
    """
    qs = Turn.objects.select_related("task", "task__worker").order_by("task_id", "index")
    if tasks is not None:
        qs = qs.filter(task__in=tasks)
    rows = []
    for t in qs:
        rows.append(
            {
                "turn_id": t.pk,
                "query_id": t.public_id,
                "worker": t.task.worker.pseudonym,
                "task_id": t.task.public_id,
                "task_pk": t.task_id,
                "mode": t.mode,
                "query": t.query,
                "response_1": t.response_1,
                "response_2": t.response_2,
                "error_1": t.error_1,
                "error_2": t.error_2,
                "model_1": t.model_1,
                "model_2": t.model_2,
                "likert_1": t.likert_1,
                "likert_2": t.likert_2,
                "preferred": t.preferred,
                "better_than_previous": t.better_than_previous,
                "bullet_instruction": t.bullet_instruction,
                "asked_at": t.asked_at,
                "raw_overrides": t.raw_overrides,
            }
        )
    df = pd.DataFrame(rows, columns=TURN_COLUMNS)
    for col in ("likert_1", "likert_2", "preferred"):
        df[col] = df[col].astype("Int64")
    return df


def affected_marks(*, app_label: str, model_name: str, object_id: int) -> list:
    """The withdrawals that affected one stored result (``collection.AffectedArtifact``), oldest
    first: what its pages show as "affected by a withdrawal on <date>"."""
    from .models import AffectedArtifact

    return list(
        AffectedArtifact.objects.filter(app_label=app_label, model_name=model_name, object_id=object_id)
        .select_related("withdrawal").order_by("withdrawal__created_at")
    )


def affected_marks_for(obj) -> list:
    """:func:`affected_marks` of a model instance."""
    return affected_marks(app_label=obj._meta.app_label, model_name=obj._meta.model_name, object_id=obj.pk)
