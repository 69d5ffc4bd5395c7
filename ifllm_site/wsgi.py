"""WSGI entry point (kept for tools that want it; ``make run`` serves ASGI with uvicorn)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ifllm_site.settings")

application = get_wsgi_application()
