"""``manage.py import_human_eval EVAL_PK RESULTS.csv``: un-blind MTurk results, compare with the judge."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from alignment.models import EvaluationRun
from alignment.services import human_results_import


class Command(BaseCommand):
    help = "Import an MTurk results CSV of a human-evaluation batch and compare it with the LLM judge."

    def add_arguments(self, parser) -> None:
        parser.add_argument("evaluation", type=int)
        parser.add_argument("results_csv")

    def handle(self, *args, evaluation: int, results_csv: str, **opts) -> None:
        run = EvaluationRun.objects.filter(pk=evaluation).first()
        if run is None:
            raise CommandError(f"no evaluation {evaluation}")
        try:
            summary = human_results_import(evaluation=run, results_csv=results_csv)
        except (ValueError, FileNotFoundError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps(summary, indent=2))
