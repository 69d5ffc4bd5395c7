"""Compute and store leaderboards from the database (the fit itself is ``analysis.leaderboard``)."""

from __future__ import annotations

import io
from collections.abc import Callable

from django.contrib.auth.models import AbstractBaseUser

from analysis.leaderboard import Leaderboard as Board
from analysis.leaderboard import build_leaderboard
from analysis.reward.models import HEADLINE_MODEL
from jobs.models import Job
from jobs.services import job_start

from .leaderboard_selectors import reward_predictions_frame, reward_run_latest, vote_turns
from .models import Leaderboard, RewardModelRun

Progress = Callable[[float, str], None]

JOB_KIND = "analysis.leaderboard"
#: What a leaderboard without a data selection counts (said on its pages).
LEADERBOARD_WITHOUT_SELECTION = "Votes of every task not excluded by staff; QC thresholds not applied."


def _noop(pct: float, message: str = "") -> None:
    return None


def leaderboard_compute(
    *, sources: list[str], style_control: bool = True, reward_run: RewardModelRun | None = None,
    reward_model: str = HEADLINE_MODEL, reward_protocol: str = "grouped", soft: bool = True, rounds: int = 1000,
    seed: int = 0, selection=None,
) -> tuple[Board, RewardModelRun | None]:
    """The leaderboard of the votes on the data ``selection``'s tasks (default: every task not
    excluded by staff). Implicit and mixed sources read ``reward_run``'s predictions (default: the
    latest run that has some); returns the run used."""
    sources = ["explicit", *[s for s in sources if s != "explicit"]]
    turns = vote_turns(selection=selection)
    predictions = None
    if len(sources) > 1:
        reward_run = reward_run or reward_run_latest()
        if reward_run is None:
            raise ValueError("reward_run: implicit votes need a reward-model run with predictions; none exists")
        predictions = reward_predictions_frame(run=reward_run, model_name=reward_model, protocol=reward_protocol)
        if predictions.empty:
            raise ValueError(
                f"reward_model: run {reward_run.pk} has no predictions of {reward_model!r} ({reward_protocol})"
            )
    board = build_leaderboard(
        turns, predictions, sources=sources, style_control=style_control, rounds=rounds, seed=seed, soft=soft
    )
    board.params["selection"] = selection.record() if selection is not None else None
    if predictions is not None:
        board.params.update(reward_run=reward_run.pk, reward_model=reward_model, reward_protocol=reward_protocol)
    return board, (reward_run if predictions is not None else None)


def leaderboard_start(*, leaderboard: Leaderboard, user: AbstractBaseUser | None = None) -> Job:
    """Enqueue the job that computes ``leaderboard`` (cpu queue)."""
    job = job_start(kind=JOB_KIND, params={"leaderboard_pk": leaderboard.pk}, user=user)
    leaderboard.job = job
    leaderboard.save(update_fields=["job"])
    return job


def leaderboard_execute(*, leaderboard: Leaderboard, progress: Progress = _noop) -> Leaderboard:
    """Compute the leaderboard and store its tables, CSV, JSON and forest plot (idempotent)."""
    from analysis.plots.leaderboard import forest_figure

    progress(5, "fitting")
    board, run = leaderboard_compute(
        sources=list(leaderboard.sources or ["explicit"]), style_control=leaderboard.style_control,
        reward_run=leaderboard.reward_run, reward_model=leaderboard.reward_model,
        reward_protocol=leaderboard.reward_protocol, soft=leaderboard.soft, rounds=leaderboard.rounds,
        seed=leaderboard.seed, selection=leaderboard.selection,
    )
    progress(80, "plotting")
    fig = forest_figure(board)
    png, svg = io.BytesIO(), io.StringIO()
    fig.savefig(png, format="png", dpi=110, bbox_inches="tight")
    fig.savefig(svg, format="svg", bbox_inches="tight")
    leaderboard.reward_run = run
    leaderboard.results = board.as_dict()
    leaderboard.table_text = board.table_text()
    leaderboard.csv = board.to_csv()
    leaderboard.png, leaderboard.svg = png.getvalue(), svg.getvalue()
    leaderboard.n_votes = board.boards["explicit"].votes
    leaderboard.save()
    return leaderboard
