"""Staff pages of the analysis app: the dashboard of latest figures and runs, figure files."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from jobs.services import job_start

from .models import AnalysisFigure, RewardModelRun


@staff_member_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """Latest figure of each kind, with the job that made it, and the latest reward-model runs."""
    if request.method == "POST" and request.POST.get("action") == "render":
        job_start(kind="analysis.figures", params={}, user=request.user)
    latest_ids = AnalysisFigure.objects.values("name").annotate(last=Max("pk")).values_list("last", flat=True)
    figures = AnalysisFigure.objects.filter(pk__in=list(latest_ids)).defer("png", "svg").select_related("job")
    runs = RewardModelRun.objects.select_related("job")[:5]
    return render(request, "analysis/dashboard.html", {"figures": figures.order_by("name"), "runs": runs})


@staff_member_required
def figure_png(request: HttpRequest, pk: int) -> HttpResponse:
    fig = get_object_or_404(AnalysisFigure.objects.only("png"), pk=pk)
    return HttpResponse(bytes(fig.png), content_type="image/png")


@staff_member_required
def figure_svg(request: HttpRequest, pk: int) -> HttpResponse:
    fig = get_object_or_404(AnalysisFigure.objects.only("svg", "name"), pk=pk)
    response = HttpResponse(fig.svg, content_type="image/svg+xml")
    response["Content-Disposition"] = f'inline; filename="{fig.name}.svg"'
    return response
