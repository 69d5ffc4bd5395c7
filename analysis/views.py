"""Staff pages of the analysis app: the dashboard of latest figures and runs, figure files.

Like the crowd app's staff pages they need a staff login and ``access.view_staff_pages`` (both
roles); starting a job needs the job kind's permission (``jobs.services``), which viewers lack.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.db.models import Max
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from rest_framework import serializers

from jobs.services import job_start, job_user_may_run

from .models import AnalysisFigure, RewardModelRun


def staff_view(permission: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Staff login (else the admin login page), then ``permission`` (else 403 naming it)."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def checked(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.has_perm(permission):
                raise PermissionDenied(f"This page needs the {permission} permission, which your account lacks.")
            return view(request, *args, **kwargs)

        return staff_member_required(checked)

    return decorate


class PageQuerySerializer(serializers.Serializer):
    """``?pk=`` of a page that shows the latest object unless one is named."""

    pk = serializers.IntegerField(min_value=1, required=False)


def serializer_errors(serializer: serializers.Serializer) -> HttpResponse:
    """A 400 naming every refused field (plain text: the staff pages' forms are plain POSTs)."""
    text = "; ".join(f"{field}: {' '.join(map(str, errs))}" for field, errs in serializer.errors.items())
    return HttpResponseBadRequest(text, content_type="text/plain")


#: The staff pages' permission (both roles hold it).
staff_page = staff_view("access.view_staff_pages")


@staff_page
def dashboard(request: HttpRequest) -> HttpResponse:
    """Latest figure of each kind, with the job that made it, and the latest reward-model runs."""
    can_render = job_user_may_run(request.user, "analysis.figures")
    if request.method == "POST" and request.POST.get("action") == "render":
        if not can_render:
            raise PermissionDenied("rendering figures needs the researcher role")
        job = job_start(kind="analysis.figures", params={}, user=request.user)
        messages.success(request, f"Rendering the figures in job {job.pk}; reload when it has finished.")
        return HttpResponseRedirect(request.path)
    latest_ids = AnalysisFigure.objects.values("name").annotate(last=Max("pk")).values_list("last", flat=True)
    figures = AnalysisFigure.objects.filter(pk__in=list(latest_ids)).defer("png", "svg").select_related("job")
    runs = RewardModelRun.objects.select_related("job")[:5]
    context = {**admin.site.each_context(request),  # the admin header, user links and sidebar
               "figures": figures.order_by("name"), "runs": runs, "can_render": can_render}
    return render(request, "analysis/dashboard.html", context)


@staff_page
def figure_png(request: HttpRequest, pk: int) -> HttpResponse:
    fig = get_object_or_404(AnalysisFigure.objects.only("png"), pk=pk)
    return HttpResponse(bytes(fig.png), content_type="image/png")


@staff_page
def figure_svg(request: HttpRequest, pk: int) -> HttpResponse:
    fig = get_object_or_404(AnalysisFigure.objects.only("svg", "name"), pk=pk)
    response = HttpResponse(fig.svg, content_type="image/svg+xml")
    response["Content-Disposition"] = f'inline; filename="{fig.name}.svg"'
    return response
