"""``manage.py reward_models``: Table 2 under every protocol, from the database."""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand

from analysis.models import RewardModelRun
from analysis.services import DEFAULT_PARAMS, reward_model_run_execute


class Command(BaseCommand):
    help = "Evaluate the reward models (paper / worker-grouped / nested protocols) and store a run."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--seeds", default=",".join(map(str, DEFAULT_PARAMS["seeds"])))
        parser.add_argument("--trees", type=int, default=DEFAULT_PARAMS["trees"])
        parser.add_argument("--k", type=int, default=DEFAULT_PARAMS["k"])
        parser.add_argument("--n-splits", type=int, default=DEFAULT_PARAMS["n_splits"])
        parser.add_argument("--no-quality-filter", action="store_true")
        parser.add_argument("--no-worker-normalise", action="store_true")
        parser.add_argument("--text", action="store_true", help="add the MiniLM text models")
        parser.add_argument("--name", default="")

    def handle(self, *args, **opts) -> None:
        params = {
            "seeds": [int(s) for s in opts["seeds"].split(",")],
            "trees": opts["trees"],
            "k": opts["k"],
            "n_splits": opts["n_splits"],
            "quality_filter": not opts["no_quality_filter"],
            "worker_normalise": not opts["no_worker_normalise"],
            "text": opts["text"],
        }
        run = RewardModelRun.objects.create(name=opts["name"], params=params)

        def progress(pct: float, message: str = "") -> None:
            sys.stderr.write(f"\r{pct:5.1f}% {message:60s}")

        run = reward_model_run_execute(run=run, progress=progress)
        sys.stderr.write("\n")
        self.stdout.write(run.table_text)
        self.stdout.write("\nmatching and filtering: " + json.dumps(run.report, default=str))
        self.stdout.write("stage timings (s): " + json.dumps({k: round(v, 1) for k, v in run.timings.items()}))
        self.stdout.write(self.style.SUCCESS(f"reward-model run {run.pk}: {run.predictions.count()} predictions"))
