"""The live study monitor's figures, from plain rows (no Django: the selector builds the rows).

The unit is the **participant session**: one person on one platform assignment (an MTurk
assignment, a Prolific submission; for lab participants the person). A session may hold several
tasks (one per topic chosen), so a person is counted once, in the stage of their furthest task.

Stages, in order; a session is counted in exactly one (the first rule that applies):

``completed``
    at least one of its tasks is completed (post-task answers given, completion code made).
``post_task``
    an open task is at the post-task questions (the chat ended).
``chatting``
    an open task is in the chat (calibration passed, chat started).
``calibrated``
    an open task (topic chosen or calibrating) has a passed calibration attempt, but the chat
    has not started.
``consented``
    consent given and nothing further: at the demographics, the topics, the instructions or an
    open task still calibrating without a pass.
``way_out``
    no open or completed task, and a task ended with the calibration way out (too many failed
    calibrations; the worker was offered the return / partial-payment code / contact).
``abandoned``
    no open or completed task and no way out: every task was abandoned (left idle and expired).
``entered``
    came in from the platform link and did not consent (yet).

The **funnel** counts, for each of ``entered → consented → calibrated → chatting → post_task →
completed``, the sessions that *reached* it at any time (an abandoned session that chatted has
reached ``chatting``), with the conversion from the previous step and from entry.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .qc import RULES

#: Every stage a session can be in, in the order the monitor lists them.
STAGES: tuple[str, ...] = (
    "entered", "consented", "calibrated", "chatting", "post_task", "completed", "way_out", "abandoned",
)
STAGE_LABELS: dict[str, str] = {
    "entered": "entered", "consented": "consented", "calibrated": "calibrated", "chatting": "chatting",
    "post_task": "post-task", "completed": "completed", "way_out": "way out", "abandoned": "abandoned",
}
#: The forward steps of the funnel (way out and abandoned are ends, not steps).
FUNNEL: tuple[str, ...] = ("entered", "consented", "calibrated", "chatting", "post_task", "completed")

OPEN = frozenset({"chosen", "calibrating", "chatting", "post_task"})

#: Calibration failure reasons: the monitor's name <- the codes of ``CalibrationAttempt.rule
#: ["failures"]`` (``collection.gaze_quality.validation_verdict``: ``<check>@<target>``, ``no_face``).
FAILURE_REASONS: dict[str, str] = {
    "coverage": "too few predictions at a target (data loss)",
    "distance": "predictions too far from a target (accuracy)",
    "spread": "predictions too scattered at a target (precision)",
    "follows": "prediction did not move towards a corner target",
    "face": "no face found for most of the attempt",
    "other": "failed without a recorded reason (older attempts)",
}
_CHECK_TO_REASON = {"coverage": "coverage", "accuracy": "distance", "spread": "spread", "follows": "follows",
                    "no_face": "face"}

#: Time spans of a task (and of a session) whose median the monitor shows: name -> (label, from, to).
STAGE_TIMES: dict[str, tuple[str, str, str]] = {
    "entry": ("entry to first topic (consent, about you, topics)", "session.entered_at", "first task.started_at"),
    "calibration": ("topic chosen to chat start (instructions, calibration)", "started_at", "chat_started_at"),
    "chat": ("chat", "chat_started_at", "chat_ended_at"),
    "post_task": ("post-task questions", "chat_ended_at", "finished_at"),
    "task": ("whole task (topic chosen to completion)", "started_at", "finished_at"),
    "session": ("whole session (entry to last completed task)", "session.entered_at", "last finished_at"),
}


@dataclass(frozen=True)
class TaskRow:
    """One task of the study (times in seconds since the epoch, None when not reached)."""

    task: int
    session: str
    status: str
    mode: str = ""
    model_1: str = ""
    model_2: str = ""
    started_at: float | None = None
    chat_started_at: float | None = None
    chat_ended_at: float | None = None
    finished_at: float | None = None
    calibration_failed: bool = False
    calibrated: bool = False  #: a calibration attempt of the task passed
    qc_flags: tuple[str, ...] | None = None  #: None: no QC computed yet; () computed, not flagged


@dataclass(frozen=True)
class SessionRow:
    """One participant session: who entered, whether they consented, when they came in."""

    session: str
    consented: bool = False
    entered_at: float | None = None  #: platform accept time, else the site's entry time, else None


@dataclass(frozen=True)
class AttemptRow:
    """One calibration attempt: passed or not, and the rule's failure codes."""

    passed: bool
    failures: tuple[str, ...] = ()


@dataclass(frozen=True)
class PaymentRow:
    amount: Decimal
    status: str  #: "pending", "paid", "failed"


@dataclass
class _Session:
    row: SessionRow
    tasks: list[TaskRow] = field(default_factory=list)


def _sessions(sessions: Iterable[SessionRow], tasks: Iterable[TaskRow]) -> list[_Session]:
    """Sessions with their tasks; a task whose session is not listed makes a session of its own
    (it exists, so its worker entered and consented)."""
    by_key: dict[str, _Session] = {s.session: _Session(s) for s in sessions}
    for t in tasks:
        if t.session not in by_key:
            by_key[t.session] = _Session(SessionRow(session=t.session, consented=True))
        by_key[t.session].tasks.append(t)
    return list(by_key.values())


def _open_stage(t: TaskRow) -> str:
    if t.status == "post_task":
        return "post_task"
    if t.status == "chatting":
        return "chatting"
    return "calibrated" if t.calibrated else "consented"


def session_stage(session: SessionRow, tasks: Sequence[TaskRow]) -> str:
    """The one stage a session is counted in (see the module docstring)."""
    if any(t.status == "completed" for t in tasks):
        return "completed"
    open_ = [_open_stage(t) for t in tasks if t.status in OPEN]
    if open_:
        return max(open_, key=FUNNEL.index)
    if any(t.calibration_failed for t in tasks):
        return "way_out"
    if tasks:
        return "abandoned"
    return "consented" if session.consented else "entered"


def stage_counts(sessions: Iterable[SessionRow], tasks: Iterable[TaskRow]) -> dict[str, int]:
    """Sessions per stage, every stage present (zeros included), in :data:`STAGES` order."""
    counts = Counter(session_stage(s.row, s.tasks) for s in _sessions(sessions, tasks))
    return {stage: counts.get(stage, 0) for stage in STAGES}


def _reached(s: _Session) -> int:
    """Index in :data:`FUNNEL` of the furthest step the session ever reached."""
    best = 1 if (s.row.consented or s.tasks) else 0
    for t in s.tasks:
        if t.status == "completed":
            best = max(best, 5)
        if t.status in ("post_task", "completed") or t.chat_ended_at is not None:
            best = max(best, 4)
        if t.status in ("chatting", "post_task", "completed") or t.chat_started_at is not None:
            best = max(best, 3)
        if t.calibrated:
            best = max(best, 2)
    return best


def funnel(sessions: Iterable[SessionRow], tasks: Iterable[TaskRow]) -> list[dict[str, Any]]:
    """Per funnel step: sessions that reached it, share of those that entered, and conversion
    from the previous step (None where the previous step has nobody)."""
    reached = Counter(_reached(s) for s in _sessions(sessions, tasks))
    out: list[dict[str, Any]] = []
    for i, stage in enumerate(FUNNEL):
        n = sum(v for k, v in reached.items() if k >= i)
        first = out[0]["reached"] if out else n
        prev = out[-1]["reached"] if out else None
        out.append({
            "stage": stage, "label": STAGE_LABELS[stage], "reached": n,
            "of_entered": (n / first) if first else None,
            "from_previous": None if prev is None else ((n / prev) if prev else None),
        })
    return out


def quota_fill(quotas: Mapping[str, int], used: Mapping[str, int]) -> list[dict[str, Any]]:
    """Per quota (mode or model): tasks counted against it, the quota, the share filled (None for
    a zero quota, i.e. the mode or model is off) and whether it is full."""
    rows = []
    for name, quota in quotas.items():
        n = int(used.get(name, 0))
        rows.append({"name": name, "quota": int(quota), "used": n,
                     "share": (n / quota) if quota else None, "full": bool(quota) and n >= quota})
    return rows


def _median(values: Iterable[float]) -> float | None:
    vals = [v for v in values if v is not None and v >= 0]
    return float(statistics.median(vals)) if vals else None


def _span(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a


def completion_times(sessions: Iterable[SessionRow], tasks: Iterable[TaskRow]) -> list[float]:
    """Seconds from a completed session's start (``entered_at``, else its first task's start) to
    its last completed task: the time a participant spends for one reward."""
    out = []
    for s in _sessions(sessions, tasks):
        done = [t.finished_at for t in s.tasks if t.status == "completed" and t.finished_at is not None]
        starts = [t.started_at for t in s.tasks if t.started_at is not None]
        start = s.row.entered_at if s.row.entered_at is not None else (min(starts) if starts else None)
        if done and start is not None and max(done) >= start:
            out.append(max(done) - start)
    return out


def stage_times(sessions: Iterable[SessionRow], tasks: Iterable[TaskRow]) -> list[dict[str, Any]]:
    """Median seconds (and how many spans it is over) of each span of :data:`STAGE_TIMES`."""
    grouped = _sessions(sessions, tasks)
    all_tasks = [t for s in grouped for t in s.tasks]
    spans: dict[str, list[float | None]] = {
        "calibration": [_span(t.started_at, t.chat_started_at) for t in all_tasks],
        "chat": [_span(t.chat_started_at, t.chat_ended_at) for t in all_tasks],
        "post_task": [_span(t.chat_ended_at, t.finished_at) for t in all_tasks if t.status == "completed"],
        "task": [_span(t.started_at, t.finished_at) for t in all_tasks if t.status == "completed"],
        "entry": [
            _span(s.row.entered_at, min((t.started_at for t in s.tasks if t.started_at is not None), default=None))
            for s in grouped
        ],
        "session": list(completion_times([s.row for s in grouped], all_tasks)),
    }
    out = []
    for name, (label, _start, _end) in STAGE_TIMES.items():
        vals = [v for v in spans[name] if v is not None and v >= 0]
        out.append({"name": name, "label": label, "median_s": _median(vals), "n": len(vals)})
    return out


def calibration_summary(attempts: Iterable[AttemptRow]) -> dict[str, Any]:
    """Attempts, passes, pass rate, and failed attempts per reason (an attempt that failed two
    checks counts under both; at several targets under each check once)."""
    rows = list(attempts)
    passed = sum(1 for a in rows if a.passed)
    reasons: Counter[str] = Counter()
    for a in rows:
        if a.passed:
            continue
        names = {_CHECK_TO_REASON.get(code.split("@")[0]) for code in a.failures} - {None}
        for name in names or {"other"}:
            reasons[name] += 1
    n_failed = len(rows) - passed
    return {
        "n_attempts": len(rows), "n_passed": passed, "n_failed": n_failed,
        "pass_rate": (passed / len(rows)) if rows else None,
        "reasons": [{"reason": r, "label": FAILURE_REASONS[r], "n": reasons.get(r, 0),
                     "share_of_failed": (reasons.get(r, 0) / n_failed) if n_failed else None}
                    for r in FAILURE_REASONS],
    }


#: QC flag codes (``TaskQC.flags``) in the words staff read elsewhere (the QC list, the queue).
FLAG_LABELS: dict[str, str] = {"validation": "validation failed", **{r.metric: r.label for r in RULES}}


def qc_summary(tasks: Iterable[TaskRow]) -> dict[str, Any]:
    """QC flag rate among completed tasks whose QC is computed, with counts per flag code."""
    done = [t for t in tasks if t.status == "completed"]
    with_qc = [t for t in done if t.qc_flags is not None]
    flagged = [t for t in with_qc if t.qc_flags]
    flags = Counter(code for t in flagged for code in set(t.qc_flags or ()))
    return {
        "n_completed": len(done), "n_with_qc": len(with_qc), "n_pending": len(done) - len(with_qc),
        "n_flagged": len(flagged), "flag_rate": (len(flagged) / len(with_qc)) if with_qc else None,
        "flags": [{"code": c, "label": FLAG_LABELS.get(c, c), "n": n}
                  for c, n in sorted(flags.items(), key=lambda kv: (-kv[1], kv[0]))],
    }


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def pay_per_hour(*, reward: Decimal, median_s: float | None, minimum: Decimal | None) -> dict[str, Any]:
    """The reward per hour at the median completion time (how Prolific judges a study), and
    whether it is under the platform's minimum (None when either is unknown)."""
    if median_s is None or median_s <= 0:
        per_hour = None
    else:
        per_hour = Decimal(reward) * Decimal(3600) / Decimal(str(median_s))
    below = None if per_hour is None or minimum is None else per_hour < minimum
    return {"reward": _money(Decimal(reward)), "median_s": median_s,
            "per_hour": None if per_hour is None else _money(per_hour),
            "minimum": None if minimum is None else _money(minimum), "below_minimum": below}


def money_committed(*, reward: Decimal, n_rewarded: int, payments: Iterable[PaymentRow]) -> dict[str, Any]:
    """Rewards owed or paid (``n_rewarded`` × reward) plus bonuses pending and paid; failed bonus
    payments are listed apart (a retry pays them with the same token, so they may still come)."""
    rows = list(payments)

    def total(status: str) -> Decimal:
        return sum((Decimal(p.amount) for p in rows if p.status == status), Decimal(0))

    rewards = Decimal(reward) * n_rewarded
    pending, paid, failed = total("pending"), total("paid"), total("failed")
    return {"n_rewarded": n_rewarded, "rewards": _money(rewards), "bonuses_pending": _money(pending),
            "bonuses_paid": _money(paid), "bonuses_failed": _money(failed),
            "total": _money(rewards + pending + paid)}


def monitor(
    *,
    sessions: Iterable[SessionRow],
    tasks: Iterable[TaskRow],
    attempts: Iterable[AttemptRow],
    mode_quotas: Mapping[str, int],
    mode_used: Mapping[str, int],
    model_quotas: Mapping[str, int],
    model_used: Mapping[str, int],
    reward: Decimal,
    minimum_per_hour: Decimal | None,
    n_rewarded: int,
    payments: Iterable[PaymentRow],
) -> dict[str, Any]:
    """Every figure of the monitor as one JSON-able mapping (what the page's endpoint returns)."""
    sessions, tasks = list(sessions), list(tasks)
    counts = stage_counts(sessions, tasks)
    times = stage_times(sessions, tasks)
    median_session = next(t["median_s"] for t in times if t["name"] == "session")
    return {
        "n_sessions": sum(counts.values()),
        "n_tasks": len(tasks),
        "stages": [{"stage": s, "label": STAGE_LABELS[s], "n": counts[s]} for s in STAGES],
        "funnel": funnel(sessions, tasks),
        "mode_quotas": quota_fill(mode_quotas, mode_used),
        "model_quotas": quota_fill(model_quotas, model_used),
        "stage_times": times,
        "calibration": calibration_summary(attempts),
        "qc": qc_summary(tasks),
        "pay": pay_per_hour(reward=reward, median_s=median_session, minimum=minimum_per_hour),
        "money": money_committed(reward=reward, n_rewarded=n_rewarded, payments=payments),
    }
