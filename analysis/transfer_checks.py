"""Checks of a transfer run's worker lists, before its job starts.

A transfer run named by worker ids that do not exist used to "succeed" with an empty table; the
form and the command now refuse it with the field named. Workers that exist but have no features
(no samples, or every task left out by the quality filter) are known only once the job has built
the feature table: the run stores them (``report["transfer_workers_without_features"]``) and its
page warns.
"""

from __future__ import annotations

from collection.models import Worker

TRANSFER_FIELDS = ("train_workers", "test_workers")


def _listed(ids: list[str], most: int = 5) -> str:
    shown = ", ".join(ids[:most])
    return shown + (f" and {len(ids) - most} more" if len(ids) > most else "")


def transfer_worker_errors(params: dict) -> dict[str, str]:
    """Field -> message for the worker lists of ``params`` ({} when fine or not a transfer run).

    Both lists or neither; each a non-empty list of worker pseudonyms that exist in the database;
    no worker in both.
    """
    given = {f: params.get(f) for f in TRANSFER_FIELDS if params.get(f) not in (None, [], "")}
    if not given:
        return {}
    errors: dict[str, str] = {}
    for field in TRANSFER_FIELDS:
        if field not in given:
            errors[field] = f"A transfer run needs both train_workers and test_workers; {field} is missing."
    lists = {}
    for field, value in given.items():
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            errors[field] = f"{field} must be a list of worker ids (strings)."
        else:
            lists[field] = [v.strip() for v in value]
    known = set(Worker.objects.filter(pseudonym__in=[v for ids in lists.values() for v in ids])
                .values_list("pseudonym", flat=True))
    for field, ids in lists.items():
        unknown = sorted(set(ids) - known)
        if unknown:
            errors[field] = f"{len(unknown)} unknown worker id(s): {_listed(unknown)}."
    if len(lists) == 2 and "test_workers" not in errors:
        shared = sorted(set(lists["train_workers"]) & set(lists["test_workers"]))
        if shared:
            errors["test_workers"] = f"{len(shared)} worker(s) are also training workers: {_listed(shared)}."
    return errors
