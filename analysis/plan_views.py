"""Staff page of the study planner (learning curves over workers), and its downloads."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from rest_framework import serializers

from collection.selectors import affected_marks_for

from .models import StudyPlan
from .plan_services import parse_sizes, study_plan_start
from .views import PageQuerySerializer, serializer_errors, staff_view

#: Starting a plan from the page needs what adding one in the admin needs.
START_PERMISSION = "analysis.add_studyplan"
staff_page = staff_view("analysis.view_studyplan")


class StudyPlanStartSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=StudyPlan.Mode.choices, default=StudyPlan.Mode.PAIRWISE)
    repeats = serializers.IntegerField(min_value=2, max_value=50, default=5)
    sizes = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    trees = serializers.IntegerField(min_value=10, max_value=1000, default=50)

    def validate_sizes(self, value: str) -> str:
        try:
            parse_sizes(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc
        return value


@staff_page
def plan_page(request: HttpRequest) -> HttpResponse:
    """The latest (or ``?pk=``) plan: the answer in one sentence, the figure, the curve's points.

    POST starts a new plan job (staff with the add permission only).
    """
    can_start = request.user.has_perm(START_PERMISSION)
    if request.method == "POST":
        if not can_start:
            return HttpResponseForbidden("You may not start study-plan jobs.")
        start = StudyPlanStartSerializer(data=request.POST.dict())
        if not start.is_valid():
            return serializer_errors(start)
        plan = StudyPlan.objects.create(**start.validated_data, created_by=request.user)
        study_plan_start(plan=plan, user=request.user)
        return redirect(f"{reverse('analysis:plan')}?pk={plan.pk}")
    query = PageQuerySerializer(data=request.GET.dict())
    if not query.is_valid():
        return serializer_errors(query)
    pk = query.validated_data.get("pk")
    plan = get_object_or_404(StudyPlan, pk=pk) if pk else StudyPlan.objects.select_related("job").first()
    rows = []
    if plan and plan.results:
        by_n: dict[int, dict] = {}
        for r in plan.results["curve"]:
            key = "target" if r["model"] == plan.results["model"] else (
                "baseline" if r["model"] == plan.results["baseline"] else None)
            if key:
                by_n.setdefault(r["n"], {"n": r["n"]})[key] = r
        rows = [by_n[n] for n in sorted(by_n)]
    context = {**admin.site.each_context(request), "plan": plan, "rows": rows, "can_start": can_start,
               "mode_choices": StudyPlan.Mode.choices, "title": "Plan the next study",
               "withdrawal_marks": affected_marks_for(plan) if plan is not None else []}
    return render(request, "analysis/plan.html", context)


@staff_page
def plan_json(request: HttpRequest, pk: int) -> HttpResponse:
    plan = get_object_or_404(StudyPlan, pk=pk)
    response = JsonResponse(plan.results, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="study-plan-{plan.pk}.json"'
    return response


@staff_page
def plan_svg(request: HttpRequest, pk: int) -> HttpResponse:
    plan = get_object_or_404(StudyPlan.objects.only("svg"), pk=pk)
    return HttpResponse(plan.svg, content_type="image/svg+xml")
