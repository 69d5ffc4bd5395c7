"""Analysis jobs (``cpu`` queue): reward-model tables and behaviour figures.

Idempotent: a job recomputes its run from the database and replaces what the run held.
"""

from __future__ import annotations

from jobs.runner import JobContext, job_task


def _execute_run(ctx: JobContext, run_pk: int, execute) -> dict:
    """Attach the job to the run, compute it, and log its table."""
    from .models import RewardModelRun

    run = RewardModelRun.objects.get(pk=run_pk)
    run.job = ctx.job
    run.save(update_fields=["job"])
    run = execute(run=run, progress=ctx.progress, log=ctx.log)
    ctx.log(run.table_text)
    return {"run": run.pk, "rows": run.n_samples, "predictions": run.predictions.count()}


@job_task("analysis.reward_models", permission="analysis.add_rewardmodelrun")
def reward_models(ctx: JobContext, *, run_pk: int) -> dict:
    from .services import reward_model_run_execute

    return _execute_run(ctx, run_pk, reward_model_run_execute)


@job_task("analysis.figures", permission="analysis.add_analysisfigure")
def figures(ctx: JobContext) -> dict:
    from .services import figures_render

    made = figures_render(job=ctx.job, progress=ctx.progress)
    return {"figures": [f.name for f in made]}


@job_task("analysis.text_reward", queue="gpu", permission="analysis.add_rewardmodelrun")
def text_reward(ctx: JobContext, *, run_pk: int) -> dict:
    """Fine-tune a transformer text reward model (GPU when present) under CV."""
    from .services import text_reward_run_execute

    return _execute_run(ctx, run_pk, text_reward_run_execute)


def _attached(ctx: JobContext, model, pk: int, execute):
    """Attach the job to its row (a re-run finds it there), compute it, and log its table."""
    obj = model.objects.get(pk=pk)
    obj.job = ctx.job
    obj.save(update_fields=["job"])
    obj = execute(obj)
    ctx.log(obj.table_text)
    return obj


@job_task("analysis.leaderboard", permission="analysis.add_leaderboard")
def leaderboard(ctx: JobContext, *, leaderboard_pk: int) -> dict:
    """Bradley–Terry leaderboard of every requested vote source, with bootstrap intervals."""
    from .leaderboard_services import leaderboard_execute
    from .models import Leaderboard

    board = _attached(ctx, Leaderboard, leaderboard_pk,
                      lambda b: leaderboard_execute(leaderboard=b, progress=ctx.progress))
    return {"leaderboard": board.pk, "votes": board.n_votes, "sources": [s["source"] for s in board.results["sources"]]}


@job_task("analysis.learning_curve", permission="analysis.add_studyplan")
def learning_curve(ctx: JobContext, *, plan_pk: int) -> dict:
    """Learning curves over workers and the study size that would show behaviour's advantage."""
    from .models import StudyPlan
    from .plan_services import study_plan_execute

    plan = _attached(ctx, StudyPlan, plan_pk, lambda p: study_plan_execute(plan=p, progress=ctx.progress))
    return {"plan": plan.pk, "workers_needed": plan.workers_needed}
