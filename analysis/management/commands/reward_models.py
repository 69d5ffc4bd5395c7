"""``manage.py reward_models``: Table 2 under every protocol, from the database."""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from analysis.models import RewardModelRun
from analysis.services import DEFAULT_PARAMS, reward_model_run_start, workers_file


class Command(BaseCommand):
    help = "Evaluate the reward models (paper / worker-grouped / nested protocols) and store a run."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--seeds", default=",".join(map(str, DEFAULT_PARAMS["seeds"])))
        parser.add_argument("--trees", type=int, default=DEFAULT_PARAMS["trees"])
        parser.add_argument("--k", type=int, default=DEFAULT_PARAMS["k"])
        parser.add_argument("--n-splits", type=int, default=DEFAULT_PARAMS["n_splits"])
        parser.add_argument("--no-quality-filter", action="store_true")
        parser.add_argument("--no-worker-normalise", action="store_true")
        parser.add_argument("--text", action="store_true", help="add the MiniLM text models")
        parser.add_argument("--name", default="")
        parser.add_argument("--selection", type=int,
                            help="id of a data selection: use its tasks (the paper's quality filter is then off)")
        parser.add_argument("--calibration", choices=["platt", "isotonic", "none"], default=DEFAULT_PARAMS["calibration"])  # noqa: E501
        parser.add_argument("--calibration-fit", choices=["crossfit", "inner"],
                            default=DEFAULT_PARAMS["calibration_fit"],
                            help="crossfit: on the other outer folds (no refits); inner: inner CV per fold (slower)")
        parser.add_argument("--selector-trees", type=int, default=DEFAULT_PARAMS["selector_trees"],
                            help="trees of the forest that ranks the important features")
        parser.add_argument("--train-workers", help="transfer: file of training worker ids (one per line)")
        parser.add_argument("--test-workers", help="transfer: file of test worker ids (one per line)")
        parser.add_argument("--json", dest="json_out", help="transfer: write the per-setting, per-model metrics here")

    def handle(self, *args, **opts) -> None:
        params = {
            "seeds": [int(s) for s in opts["seeds"].split(",")],
            "trees": opts["trees"],
            "k": opts["k"],
            "n_splits": opts["n_splits"],
            "quality_filter": not opts["no_quality_filter"],
            "worker_normalise": not opts["no_worker_normalise"],
            "text": opts["text"],
            "calibration": opts["calibration"],
            "calibration_fit": opts["calibration_fit"],
            "selector_trees": opts["selector_trees"],
        }
        if bool(opts["train_workers"]) != bool(opts["test_workers"]):
            raise CommandError("--train-workers and --test-workers go together")
        if opts["train_workers"]:
            try:
                params["train_workers"] = workers_file(opts["train_workers"])
                params["test_workers"] = workers_file(opts["test_workers"])
            except OSError as exc:
                raise CommandError(f"worker file: {exc}") from exc
            from analysis.transfer_checks import transfer_worker_errors

            errors = transfer_worker_errors(params)
            if errors:
                raise CommandError("; ".join(f"{k}: {v}" for k, v in errors.items()))
        selection = None
        if opts["selection"] is not None:
            from collection.models import DataSelection

            selection = DataSelection.objects.filter(pk=opts["selection"]).first()
            if selection is None:
                raise CommandError(f"--selection: no data selection {opts['selection']}")
        def progress(pct: float, message: str = "") -> None:
            sys.stderr.write(f"\r{pct:5.1f}% {message:60s}")

        try:
            run = RewardModelRun(name=opts["name"], params=params, selection=selection)
            run = reward_model_run_start(run=run, inline=True, progress=progress)
        except ValueError as exc:  # the service deleted the run it made
            raise CommandError(str(exc)) from exc
        if opts["json_out"] and "transfer" in run.report:
            with open(opts["json_out"], "w") as fh:
                json.dump(run.report["transfer"], fh, indent=2)
        sys.stderr.write("\n")
        self.stdout.write(run.table_text)
        self.stdout.write("\nmatching and filtering: " + json.dumps(run.report, default=str))
        self.stdout.write("stage timings (s): " + json.dumps({k: round(v, 1) for k, v in run.timings.items()}))
        self.stdout.write(self.style.SUCCESS(f"reward-model run {run.pk}: {run.predictions.count()} predictions"))
