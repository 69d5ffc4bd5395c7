from django.apps import AppConfig


class CrowdConfig(AppConfig):
    """Crowd platforms (MTurk, Prolific), quality control, staff review and anonymised export."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "crowd"
    verbose_name = "Crowd and quality control"

    def ready(self) -> None:
        from django.contrib import admin

        from access.privacy import guard_admin_lookups

        # Every admin refuses query-string lookups on private fields for viewers (access.privacy).
        for model_admin in admin.site._registry.values():
            guard_admin_lookups(model_admin)

        from .admin_withdrawal import add_withdrawal_notices

        # Pages of runs, datasets, leaderboards, selections and exports built from a withdrawn
        # participant's data say so, with the way to rebuild them.
        add_withdrawal_notices(admin.site)

        from collection.signals import task_completed

        from .services import task_completed as qc_on_completion

        # QC runs (as a job, after the commit) as soon as a worker completes a task.
        task_completed.connect(
            lambda sender, task, **kw: qc_on_completion(task=task), weak=False, dispatch_uid="crowd.qc"
        )
