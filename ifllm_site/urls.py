"""URL configuration of IFllm Lab.

``collection`` owns the site root (the study pages and ``/api/study/``); the staff pages of
``analysis`` and ``crowd`` sit under their own prefixes; ``alignment`` has no pages of its own
(everything is in the admin). Each app's ``urls.py`` sets ``app_name`` for namespaced reversing.
"""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from crowd.withdrawal_views import withdraw

from . import converters  # noqa: F401  (registers <id:...>)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/jobs/", include("jobs.urls")),
    # Most specific prefixes first: collection owns the root.
    path("analysis/", include("analysis.urls")),
    path("crowd/", include("crowd.urls")),
    # A participant's own withdrawal: a study page, served by crowd (its service imports every app).
    path("withdraw/", withdraw, name="withdraw"),
    path("", include("collection.urls")),
]

handler400 = "ifllm_site.errors.bad_request"
handler500 = "ifllm_site.errors.server_error"
