from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class JobsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "jobs"

    def ready(self) -> None:
        # Import every app's ``tasks`` module so that each ``@job_task`` is registered in the web
        # process too: ``job_enqueue`` finds a task by the job's kind. Celery's own
        # autodiscovery only runs inside workers.
        autodiscover_modules("tasks")
