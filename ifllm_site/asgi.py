"""ASGI entry point, served by uvicorn (``make run``).

ASGI rather than WSGI because the site streams (LLM answers, job progress) and a streaming
response must not hold one of a few sync worker threads for its whole duration.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ifllm_site.settings")

django_application = get_asgi_application()

from .body_limit import RequestBodyLimitASGI  # noqa: E402 - needs the settings configured above

# The body cap wraps Django so that an oversized upload is refused before Django reads it.
application = RequestBodyLimitASGI(django_application)
