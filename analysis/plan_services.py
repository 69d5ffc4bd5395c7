"""Database side of the study planner: feed :mod:`analysis.learning_curve` and store its answer."""

from __future__ import annotations

import io
from collections.abc import Callable

from django.contrib.auth.models import AbstractBaseUser

from jobs.models import Job
from jobs.services import job_start

from .models import AnalysisFigure, StudyPlan

JOB_KIND = "analysis.learning_curve"
Progress = Callable[[float, str], None]


def _noop(pct: float, message: str = "") -> None:
    return None


def study_plan_start(*, plan: StudyPlan, user: AbstractBaseUser | None = None) -> Job:
    """Enqueue the job that computes ``plan`` (cpu queue)."""
    job = job_start(kind=JOB_KIND, params={"plan_pk": plan.pk}, user=user)
    plan.job = job
    plan.save(update_fields=["job"])
    return job


def parse_sizes(text: str) -> tuple[int, ...]:
    """``"8, 16,24"`` -> ``(8, 16, 24)``; raises ValueError naming the bad part."""
    out = []
    for part in (text or "").replace(" ", "").split(","):
        if not part:
            continue
        if not part.isdigit() or int(part) < 2:
            raise ValueError(f"{part!r} is not a whole number of workers of at least 2")
        out.append(int(part))
    return tuple(sorted(set(out)))


def study_plan_execute(*, plan: StudyPlan, progress: Progress = _noop) -> StudyPlan:
    """Compute the curve on the database's feature table (quality-filtered unless the plan says
    otherwise) and store the answer (idempotent: a re-run replaces results, table and figure)."""
    from analysis import learning_curve as lc
    from analysis.figures import png_svg
    from analysis.leaderboard.votes import explicit_votes
    from analysis.pipeline import apply_quality_filter, labelled_set, reward_run_config
    from analysis.plots.learning_curve import plan_figure

    from .services import feature_table

    progress(2, "features")
    turns, table = feature_table(params={"worker_normalise": True}, progress=lambda p, m="": progress(p * 0.3, m))
    features = apply_quality_filter(table.features, table.quality) if plan.quality_filter else table.features
    data = labelled_set(features, turns, plan.mode)
    eval_config, specs, point_specs = reward_run_config({"trees": plan.trees, "seeds": [0]})
    config = lc.CurveConfig(repeats=plan.repeats, sizes=parse_sizes(plan.sizes))
    try:
        votes = explicit_votes(turns)
    except ValueError:
        votes = None
    result = lc.plan_study(
        data.X, data.y.to_numpy(), data.groups.to_numpy(), specs=specs if plan.mode == "pairwise" else point_specs,
        eval_config=eval_config, config=config, votes=votes,
        progress=lambda pct, msg: progress(30 + 0.65 * pct, msg),
    )
    progress(96, "plotting")
    plan.results = result.as_json()
    plan.table_text = lc.format_curve(result)
    plan.workers_needed = result.needed.workers
    fig = plan_figure(plan.results)
    svg = io.StringIO()
    fig.savefig(svg, format="svg", bbox_inches="tight")
    plan.svg = svg.getvalue()
    plan.save(update_fields=["results", "table_text", "workers_needed", "svg"])
    png, svg_text = png_svg(plan_figure(plan.results))
    AnalysisFigure.objects.create(name="learning_curve", title=f"Learning curve over workers ({plan})",
                                  job=plan.job, png=png, svg=svg_text)
    return plan


def learning_curve_figure() -> tuple[str, str, object] | None:
    """The latest finished plan's figure for ``figures_render`` (None when there is none)."""
    from analysis.plots.learning_curve import plan_figure

    plan = StudyPlan.objects.exclude(results={}).order_by("-pk").first()
    if plan is None:
        return None
    return "learning_curve", f"Learning curve over workers ({plan})", plan_figure(plan.results)
