"""Study flow: topics and balanced assignment."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from ...models import (
    LLMModel,
    Mode,
    StudySettings,
    Task,
    Topic,
    Worker,
)
from .base import OPEN_STATUSES, StudyError, _rng
from .expiry import tasks_expire_idle
from .workers import study_settings_get


def topics_available(*, worker: Worker, assignment_id: str | None = None) -> list[Topic]:
    """Enabled topics the worker has not finished and has no open task on.

    Tasks of an unverified assignment (``extra.unverified``) take topics only from that
    assignment itself: someone entering with another worker's id cannot use up their topics.
    """
    tasks = Task.objects.filter(worker=worker).exclude(status=Task.Status.ABANDONED)
    # The key is only ever present with the value true (verification removes it).
    counts = ~Q(extra__has_key="unverified")
    if assignment_id is not None:
        counts |= Q(assignment_id=assignment_id)
    taken = tasks.filter(counts).values("topic_id")
    return list(Topic.objects.filter(enabled=True).exclude(pk__in=taken))


def topic_pool_draw(*, worker: Worker, assignment_id: str | None = None) -> list[int]:
    """A shuffled sample of available topic ids (against position bias), of the staff-set size."""
    pool = [t.pk for t in topics_available(worker=worker, assignment_id=assignment_id)]
    _rng.shuffle(pool)
    return pool[: study_settings_get().topic_pool_size]


def _live_tasks():
    """Tasks that count against quotas: the site's own, not abandoned (release imports and
    preview sessions excluded; ``TaskQuerySet.quota_live``, which the monitor reads too)."""
    return Task.objects.quota_live()


def _choose_mode(*, topic: Topic, cfg: StudySettings) -> str:
    """Mode with room under its quota; among those, the one this topic has had least, then the
    one furthest from its quota. Never derived from the topic id."""
    quotas = {Mode.POINTWISE: cfg.pointwise_quota, Mode.PAIRWISE: cfg.pairwise_quota}
    live = _live_tasks()
    total = dict(live.values_list("mode").annotate(n=Count("id")))
    on_topic = dict(live.filter(topic=topic).values_list("mode").annotate(n=Count("id")))
    enabled = [m for m, q in quotas.items() if q > 0]
    if not enabled:
        raise StudyError(_("The study is not taking new tasks."), code="closed")
    open_ = [m for m in enabled if total.get(m, 0) < quotas[m]] or enabled
    return min(
        open_,
        key=lambda m: (on_topic.get(m, 0), total.get(m, 0) / quotas[m], _rng.random()),
    )


def _choose_models(*, mode: str) -> tuple[str, str]:
    """Least-used enabled models under their quota (distinct in pairwise; sides in random order)."""
    models = list(LLMModel.objects.filter(enabled=True))
    need = 2 if mode == Mode.PAIRWISE else 1
    if len(models) < need:
        raise StudyError(_("No language model is available right now. Please try later."), code="no_models")
    live = _live_tasks()
    used = {m.name: 0 for m in models}
    for name, n in live.values_list("model_1").annotate(n=Count("id")):
        if name in used:
            used[name] += n
    for name, n in live.exclude(model_2="").values_list("model_2").annotate(n=Count("id")):
        if name in used:
            used[name] += n
    under = [m for m in models if used[m.name] < m.quota]
    pool = under if len(under) >= need else models
    ranked = sorted(pool, key=lambda m: (used[m.name] / max(m.quota, 1), _rng.random()))
    chosen = [m.name for m in ranked[:need]]
    _rng.shuffle(chosen)  # which model sits left is random, so position is not confounded
    return chosen[0], (chosen[1] if need == 2 else "")


@dataclass(frozen=True)
class Entry:
    """Where the worker came from; stored on every task created in this visit."""

    platform: str
    assignment_id: str = ""
    hit_id: str = ""
    turk_submit_to: str = ""
    study_id: str = ""
    session_id: str = ""
    #: A known worker id with an assignment the platform has not vouched for yet: the session
    #: inherits none of the worker's profile and its tasks consume none of the worker's topics.
    unverified: bool = False

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v}


@transaction.atomic
def tasks_create_for_topics(
    *, worker: Worker, topic_ids: Iterable[int], offered: Iterable[int], entry: Entry,
    profile: dict | None = None,
) -> list[Task]:
    """Create one CHOSEN task per chosen topic, with a balanced mode and models.

    Only topics that were offered to this worker and are still available may be chosen.
    The settings row is locked so that concurrent workers cannot overshoot a quota.
    """
    cfg = StudySettings.objects.select_for_update().get(pk=study_settings_get().pk)
    if entry.assignment_id and Task.objects.filter(
        worker=worker, assignment_id=entry.assignment_id, calibration_failed_at__isnull=False
    ).exists():
        # After a failed calibration the assignment offers only its way out (issue 20, item 8).
        raise StudyError(_("The eye tracker could not be set up for this assignment."), code="calibration_failed")
    # Tasks whose worker left stop counting against the quotas before the quotas are read.
    tasks_expire_idle()
    ids = list(dict.fromkeys(int(t) for t in topic_ids))
    if not ids:
        raise StudyError(_("Please choose at least one topic."), field="topics")
    if len(ids) > cfg.max_topics_per_entry:
        raise StudyError(_("Please choose at most %(n)d topics.") % {"n": cfg.max_topics_per_entry}, field="topics")
    if entry.unverified:
        # What one unverified assignment can do is bounded: one entry's worth of topics in all.
        made = Task.objects.filter(worker=worker, assignment_id=entry.assignment_id).count()
        if made + len(ids) > cfg.max_topics_per_entry:
            raise StudyError(_("This assignment cannot take more topics."), field="topics", code="bounded")
    allowed = set(offered) & {t.pk for t in topics_available(worker=worker, assignment_id=entry.assignment_id)}
    if not set(ids) <= allowed:
        raise StudyError(_("One of the chosen topics is not available."), field="topics")
    topics = Topic.objects.in_bulk(ids)
    tasks = []
    for tid in ids:
        mode = _choose_mode(topic=topics[tid], cfg=cfg)
        m1, m2 = _choose_models(mode=mode)
        tasks.append(
            Task.objects.create(
                worker=worker,
                topic=topics[tid],
                mode=mode,
                model_1=m1,
                model_2=m2,
                status=Task.Status.CHOSEN,
                started_at=timezone.now(),
                assignment_id=entry.assignment_id,
                hit_id=entry.hit_id,
                extra={
                    "entry": entry.as_dict(),
                    **({"unverified": True, "entry_profile": profile or {}} if entry.unverified else {}),
                    # Recorded per task: whether gaze and mouse were coupled by WebGazer's learning.
                    "webgazer_learn_during_task": cfg.webgazer_learn_during_task,
                    "sample_interval_ms": cfg.sample_interval_ms,
                    "min_turns": cfg.min_turns,
                    "min_seconds": cfg.min_seconds,
                },
            )
        )
    return tasks


def tasks_open(*, worker: Worker, assignment_id: str | None = None):
    """The worker's unfinished tasks, oldest first: the first one is where the worker is.

    ``assignment_id`` (the session's entry) keeps to the tasks that assignment started: an open
    task belongs to its assignment and is never moved to another (``services.identity``).
    """
    tasks = Task.objects.filter(worker=worker, status__in=OPEN_STATUSES)
    if assignment_id is not None:
        tasks = tasks.filter(assignment_id=assignment_id)
    return tasks.select_related("topic").order_by("pk")
