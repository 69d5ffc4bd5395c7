"""IFllm Lab Django project.

The Celery app is imported here so that ``@shared_task`` (and ``jobs.runner.job_task``) bind to
it whenever Django starts, in the web process as well as in workers.
"""

from .celery import app as celery_app

__all__ = ("celery_app",)
