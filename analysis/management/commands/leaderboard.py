"""``manage.py leaderboard``: the model leaderboard from the database's votes (or a release)."""

from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from analysis.leaderboard import build_leaderboard
from analysis.leaderboard.board import format_board
from analysis.reward.models import HEADLINE_MODEL


class Command(BaseCommand):
    help = (
        "Rank the models by Bradley–Terry strength with worker-bootstrap 95% intervals, from explicit "
        "votes, a reward-model run's out-of-fold predictions (implicit), or both (mixed)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--source", choices=["explicit", "implicit", "mixed"], default="explicit")
        parser.add_argument("--style-control", action="store_true", help="fit the style covariates jointly")
        parser.add_argument("--release", help="read the votes of a release folder instead of the database")
        parser.add_argument("--reward-run", type=int, help="reward-model run (default: the latest with predictions)")
        parser.add_argument("--selection", type=int,
                            help="data selection id: the votes of its tasks only (default: all not excluded)")
        parser.add_argument("--reward-model", default=HEADLINE_MODEL)
        parser.add_argument("--protocol", default="grouped")
        parser.add_argument("--hard", action="store_true", help="the predicted winner gets the whole vote")
        parser.add_argument("--rounds", type=int, default=1000)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--format", choices=["text", "csv", "json"], default="text")

    def handle(self, *args, **opts) -> None:
        started = time.perf_counter()
        if opts["rounds"] < 50:
            raise CommandError("--rounds: at least 50 bootstrap rounds are needed for 95% intervals")
        try:
            if opts["release"]:
                board = self._from_release(opts)
            else:
                board = self._from_database(opts)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if opts["format"] == "csv":
            self.stdout.write(board.to_csv(), ending="")
        elif opts["format"] == "json":
            self.stdout.write(board.to_json())
        else:
            self.stdout.write(format_board(board.boards[opts["source"]], board.params))
        self.stderr.write(f"leaderboard computed in {time.perf_counter() - started:.1f} s")

    def _from_release(self, opts: dict):
        from collection.release import reader

        if opts["selection"] is not None:
            raise CommandError("--selection: a data selection names tasks of the database, not of a release folder")
        if opts["source"] != "explicit":
            raise CommandError("--release: a release holds explicit votes only; implicit votes need --reward-run")
        path = Path(opts["release"]) / "query_logs_table.csv"
        if not path.exists():
            raise CommandError(f"--release: {path} not found (unpack the archive into a folder first)")
        queries = reader.read_queries(path, [])
        return build_leaderboard(queries, style_control=opts["style_control"], rounds=opts["rounds"], seed=opts["seed"])

    def _from_database(self, opts: dict):
        from analysis.leaderboard_services import leaderboard_compute
        from analysis.models import RewardModelRun
        from collection.models import DataSelection

        selection = None
        if opts["selection"] is not None:
            selection = DataSelection.objects.filter(pk=opts["selection"]).first()
            if selection is None:
                raise CommandError(f"--selection: no data selection {opts['selection']}")
        run = None
        if opts["reward_run"] is not None:
            run = RewardModelRun.objects.filter(pk=opts["reward_run"]).first()
            if run is None:
                raise CommandError(f"--reward-run: no reward-model run {opts['reward_run']}")
        board, _ = leaderboard_compute(
            sources=[opts["source"]], style_control=opts["style_control"], reward_run=run,
            reward_model=opts["reward_model"], reward_protocol=opts["protocol"], soft=not opts["hard"],
            rounds=opts["rounds"], seed=opts["seed"], selection=selection,
        )
        return board
