"""The two staff roles, as Django groups: what each may do is declared here, once.

* ``researcher``: everything on the lab's apps, including payments and exports.
* ``viewer``: read-only (``view_*`` permissions and the staff pages); no payments, not even
  the payment records, and no platform worker ids or amounts anywhere (``view_private``, see
  ``access.privacy``); starts, cancels and re-runs no job (each job kind declares a permission
  viewers lack, see ``jobs.services``).

Users also need ``is_staff`` to reach the admin. The groups are created by a data migration
(``crowd/migrations/0002_staff_roles.py``) and topped up after every ``migrate``, so models that
other apps add later get into the matrix without a new migration.
"""

from __future__ import annotations

from typing import Any

RESEARCHER = "researcher"
VIEWER = "viewer"

#: Apps whose models staff work with.
LAB_APPS = ("access", "collection", "crowd", "jobs", "analysis", "alignment")
#: Custom permissions (access.StaffAccess, crowd.Study) that only researchers hold.
RESEARCHER_ONLY = ("pay_workers", "review_task", "export_dataset", "view_private")
SHARED = ("view_staff_pages",)


def role_permission_codenames(perms: list[tuple[str, str]]) -> dict[str, set[tuple[str, str]]]:
    """Split ``(app_label, codename)`` pairs into the two roles.

    Researchers get all of them; viewers get ``view_*`` and the shared page permission.
    """
    researcher = set(perms)
    viewer = {(app, code) for app, code in perms if code.startswith("view_") or code in SHARED}
    # No payments of any kind for viewers, not even reading who was paid what.
    viewer -= {(app, code) for app, code in perms if code in (*RESEARCHER_ONLY, "view_payment")}
    return {RESEARCHER: researcher, VIEWER: viewer}


def roles_sync(apps: Any) -> None:
    """Create the groups if needed and give them the matrix's permissions (idempotent)."""
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    perms = list(permission_model.objects.filter(content_type__app_label__in=LAB_APPS))
    by_key = {(p.content_type.app_label, p.codename): p for p in perms}
    for role, keys in role_permission_codenames(list(by_key)).items():
        group, _ = group_model.objects.get_or_create(name=role)
        group.permissions.add(*[by_key[k] for k in keys])


def roles_sync_after_migrate(sender: Any, **kwargs: Any) -> None:
    """post_migrate receiver: after each lab app's permissions exist (idempotent, a few queries)."""
    if getattr(sender, "name", None) not in LAB_APPS:
        return
    from django.apps import apps as global_apps

    roles_sync(kwargs.get("apps") or global_apps)
