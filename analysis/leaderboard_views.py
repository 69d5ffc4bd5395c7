"""Staff page of the model leaderboard, and its downloads (CSV, JSON, PNG, SVG)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from rest_framework import serializers

from analysis.leaderboard.board import source_notes
from collection.models import DataSelection
from collection.selection_html import selection_block
from collection.selectors import affected_marks_for

from .leaderboard_services import LEADERBOARD_WITHOUT_SELECTION, leaderboard_start
from .models import Leaderboard
from .views import PageQuerySerializer, serializer_errors, staff_view

#: What starting a job from the page needs: the same permission as adding one in the admin.
START_PERMISSION = "analysis.add_leaderboard"


#: The same right as the admin's leaderboard list, so roles decide both pages alike.
staff_page = staff_view("analysis.view_leaderboard")


class LeaderboardStartSerializer(serializers.Serializer):
    sources = serializers.MultipleChoiceField(choices=Leaderboard.Source.choices, default=["explicit"])
    style_control = serializers.BooleanField(default=False)
    rounds = serializers.IntegerField(min_value=50, max_value=10_000, default=1000)
    selection = serializers.PrimaryKeyRelatedField(
        queryset=DataSelection.objects.all(), required=False, allow_null=True, default=None
    )


@staff_page
def leaderboard_page(request: HttpRequest) -> HttpResponse:
    """The latest (or ``?pk=``) leaderboard: tables per source, style coefficients, agreement, plot.

    POST starts a new leaderboard job (staff with the add permission only).
    """
    can_start = request.user.has_perm(START_PERMISSION)
    if request.method == "POST":
        if not can_start:
            return HttpResponseForbidden("You may not start leaderboard jobs.")
        data = request.POST.copy()
        if "style_control" not in data:
            data["style_control"] = "false"  # an unticked checkbox sends nothing
        fields = {**data.dict(), "sources": data.getlist("sources") or ["explicit"]}
        if not fields.get("selection"):
            fields["selection"] = None  # the select's empty choice
        start = LeaderboardStartSerializer(data=fields)
        if not start.is_valid():
            return serializer_errors(start)
        board = Leaderboard.objects.create(
            sources=sorted(start.validated_data["sources"]), style_control=start.validated_data["style_control"],
            rounds=start.validated_data["rounds"], selection=start.validated_data["selection"], created_by=request.user,
        )
        leaderboard_start(leaderboard=board, user=request.user)
        return redirect(f"{reverse('analysis:leaderboard')}?pk={board.pk}")
    query = PageQuerySerializer(data=request.GET.dict())
    if not query.is_valid():
        return serializer_errors(query)
    if "pk" in query.validated_data:
        board = get_object_or_404(Leaderboard.objects.defer("png", "svg"), pk=query.validated_data["pk"])
    else:
        board = Leaderboard.objects.defer("png", "svg").exclude(results={}).first()
    sources = []
    if board is not None and board.results:
        entries = board.results.get("sources", [])
        explicit = next((e["votes"] for e in entries if e["source"] == "explicit"), None)
        for entry in entries:
            styled = {r["model"]: r for r in entry.get("style_controlled", [])}
            rows = [{**r, "style": styled.get(r["model"])} for r in entry["raw"]]
            added = entry.get("added_votes")
            if added is None and entry["source"] == "mixed" and explicit is not None:  # boards stored before
                added = entry["votes"] - explicit
            sources.append({"title": Leaderboard.Source(entry["source"]).label, **entry, "rows": rows,
                            "added_votes": added, "notes": source_notes(entry["source"], added),
                            "same_as_explicit": entry["source"] == "mixed" and added == 0,
                            "predicted": entry["source"] == "implicit" or (entry["source"] == "mixed" and added != 0)})
    context = {
        "board": board, "sources": sources, "can_start": can_start,
        "recent": Leaderboard.objects.defer("png", "svg", "results", "csv", "table_text").select_related("job")[:8],
        "source_choices": Leaderboard.Source.choices,
        "selection_choices": DataSelection.objects.only("pk", "name", "version", "n_kept", "n_candidates")[:50],
        "board_selection": selection_block(board.selection, without=LEADERBOARD_WITHOUT_SELECTION)
        if board is not None else "",
        "withdrawal_marks": affected_marks_for(board) if board is not None else [],
    }
    return render(request, "analysis/leaderboard.html", context)


def _board(pk: int, *fields: str) -> Leaderboard:
    return get_object_or_404(Leaderboard.objects.only("pk", "created_at", *fields), pk=pk)


@staff_page
def leaderboard_csv(request: HttpRequest, pk: int) -> HttpResponse:
    response = HttpResponse(_board(pk, "csv").csv, content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="leaderboard-{pk}.csv"'
    return response


@staff_page
def leaderboard_json(request: HttpRequest, pk: int) -> HttpResponse:
    response = JsonResponse(_board(pk, "results").results, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="leaderboard-{pk}.json"'
    return response


@staff_page
def leaderboard_png(request: HttpRequest, pk: int) -> HttpResponse:
    return HttpResponse(bytes(_board(pk, "png").png), content_type="image/png")


@staff_page
def leaderboard_svg(request: HttpRequest, pk: int) -> HttpResponse:
    return HttpResponse(_board(pk, "svg").svg, content_type="image/svg+xml")
