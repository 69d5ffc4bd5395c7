"""URL configuration of IFllm Lab.

Each app that has a ``urls.py`` is mounted here without editing this file: ``collection`` at the
site root (the study pages), ``analysis`` under ``analysis/`` and ``alignment`` under
``alignment/``. An app's ``urls.py`` should set ``app_name`` for namespaced reversing.
"""

from importlib.util import find_spec

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from . import converters  # noqa: F401  (registers <id:...>)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/jobs/", include("jobs.urls")),
]

# Most specific prefixes first: collection owns the root.
_APP_MOUNTS = [("analysis", "analysis/"), ("alignment", "alignment/"), ("crowd", "crowd/"), ("collection", "")]
for _app, _prefix in _APP_MOUNTS:
    if find_spec(f"{_app}.urls") is not None:
        urlpatterns.append(path(_prefix, include(f"{_app}.urls")))
