"""The Celery application of IFllm Lab.

All configuration lives in Django settings under the ``CELERY_`` prefix (see
``ifllm_site/settings.py``: queues, routes, eager mode without Redis). Start a worker for one
queue with ``make worker QUEUE=cpu`` or
``celery -A ifllm_site worker -Q cpu --concurrency=1 -l info``.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ifllm_site.settings")

app = Celery("ifllm_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Finds ``<app>/tasks.py`` in every installed app when a worker starts. The web process imports
# the same modules from ``jobs.apps.JobsConfig.ready`` so that job kinds are known there too.
app.autodiscover_tasks()
