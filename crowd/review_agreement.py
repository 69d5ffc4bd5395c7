"""Agreement between reviewers of a review queue, and what a task's calls add up to (pure: no Django).

Two reviewers each make one *call* per task: ``keep``, ``exclude`` or ``flag`` (needs another
look). Their agreement is measured over the tasks **both** called, on those three labels (a keep
against a flag is a disagreement: one reviewer was sure, the other was not):

* raw agreement: the share of shared tasks with the same call;
* Cohen's kappa: that agreement corrected for what the two reviewers' label frequencies would
  give by chance (``sklearn.metrics.cohen_kappa_score``). Kappa is undefined when chance alone
  predicts full agreement (both reviewers used one and the same label on every task): it is then
  ``None``, not a number, and pages say so.

A task's *status* in the queue follows from all its calls (:func:`task_status`): ``disputed``
when the decisive calls (keep, exclude) differ, else ``flagged`` when someone flagged it, else
the decision the reviewers agree on, ``unreviewed`` without calls.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

KEEP, EXCLUDE, FLAG = "keep", "exclude", "flag"
#: Every call, in a fixed order (kappa's label set: a label neither reviewer used changes nothing).
CALLS = (KEEP, EXCLUDE, FLAG)
#: Calls that decide whether the task stays in the dataset.
DECISIVE = (KEEP, EXCLUDE)

UNREVIEWED, FLAGGED, DISPUTED = "unreviewed", "flagged", "disputed"
STATUSES = (UNREVIEWED, FLAGGED, DISPUTED, KEEP, EXCLUDE)


@dataclass(frozen=True)
class Agreement:
    """Agreement of two reviewers over the tasks both called.

    ``per_task`` maps each shared task to ``True`` (same call) or ``False``; ``kappa`` is ``None``
    when there is no shared task or kappa is undefined (see the module's docstring).
    """

    n: int
    n_agree: int
    percent: float | None
    kappa: float | None
    per_task: dict[Hashable, bool] = field(default_factory=dict)

    @property
    def n_disagree(self) -> int:
        return self.n - self.n_agree


def _check(calls: Mapping[Hashable, str], who: str) -> None:
    bad = sorted({str(c) for c in calls.values() if c not in CALLS})
    if bad:
        raise ValueError(f"{who}: unknown call(s) {', '.join(bad)}; expected one of {', '.join(CALLS)}")


def agreement(a: Mapping[Hashable, str], b: Mapping[Hashable, str]) -> Agreement:
    """Agreement of reviewer ``a`` and reviewer ``b`` (each: task -> call) over the tasks both called."""
    from sklearn.exceptions import UndefinedMetricWarning
    from sklearn.metrics import cohen_kappa_score

    _check(a, "a")
    _check(b, "b")
    shared = sorted((t for t in a if t in b), key=repr)
    per_task = {t: a[t] == b[t] for t in shared}
    n, n_agree = len(shared), sum(per_task.values())
    if n == 0:
        return Agreement(n=0, n_agree=0, percent=None, kappa=None, per_task={})
    with warnings.catch_warnings():  # one label only: sklearn warns and returns nan (undefined)
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        kappa = float(cohen_kappa_score([a[t] for t in shared], [b[t] for t in shared], labels=list(CALLS)))
    return Agreement(n=n, n_agree=n_agree, percent=n_agree / n, kappa=None if math.isnan(kappa) else kappa,
                     per_task=per_task)


def pairwise(calls: Iterable[tuple[Hashable, Hashable, str]]) -> list[tuple[Hashable, Hashable, Agreement]]:
    """Agreement of every pair of reviewers who called at least one task in common.

    ``calls`` holds ``(task, reviewer, call)`` (one per task and reviewer); pairs come in the order
    of the reviewers' first appearance, and pairs without a shared task are left out.
    """
    by_reviewer: dict[Hashable, dict[Hashable, str]] = {}
    for task, reviewer, call in calls:
        by_reviewer.setdefault(reviewer, {})[task] = call
    out = []
    for r1, r2 in combinations(by_reviewer, 2):
        result = agreement(by_reviewer[r1], by_reviewer[r2])
        if result.n:
            out.append((r1, r2, result))
    return out


def task_status(calls: Sequence[str]) -> str:
    """What a task's calls (one per reviewer) add up to: one of :data:`STATUSES`."""
    if not calls:
        return UNREVIEWED
    decisive = {c for c in calls if c in DECISIVE}
    if len(decisive) > 1:
        return DISPUTED
    if FLAG in calls:
        return FLAGGED
    return decisive.pop()


def agreed_decision(calls: Sequence[str]) -> str | None:
    """The decision the decisive calls agree on (``keep`` or ``exclude``), else ``None``: no
    decisive call, or a dispute (then the task keeps the decision it had)."""
    decisive = {c for c in calls if c in DECISIVE}
    return decisive.pop() if len(decisive) == 1 else None
