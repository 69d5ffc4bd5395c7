"""Print the eye-tracking report (Markdown or CSV) of a selection of tasks.

    manage.py eyetracking_report --source release                 # the imported release
    manage.py eyetracking_report --source site --format csv --out report.csv
    manage.py eyetracking_report --tasks 12,13 --viewing-distance-cm 55

The same figures as the staff page ``/crowd/eyetracking-report/`` (crowd/eyetracking.py).
"""

from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from crowd import eyetracking
from crowd.models import Study
from crowd.services.eyetracking import Selection, eyetracking_report, selected_tasks


class Command(BaseCommand):
    help = "Print the eye-tracking report (tracker, sampling rate, accuracy, precision, data loss, exclusions)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--source", choices=["site", "release"], default="")
        parser.add_argument("--platform", default="")
        parser.add_argument("--study", type=int, help="study id")
        parser.add_argument("--tasks", default="", help="comma-separated task ids")
        parser.add_argument("--format", choices=["md", "csv"], default="md")
        parser.add_argument("--out", type=Path, help="write here instead of standard output")
        defaults = eyetracking.ReportParams()
        parser.add_argument("--viewing-distance-cm", type=float, default=defaults.viewing_distance_cm)
        parser.add_argument("--screen-diagonal-in", type=float, default=defaults.screen_diagonal_in)
        parser.add_argument("--gap-s", type=float, default=defaults.gap_s)

    def handle(self, *args: object, **opts: object) -> None:
        try:
            params = eyetracking.ReportParams(viewing_distance_cm=opts["viewing_distance_cm"],
                                              screen_diagonal_in=opts["screen_diagonal_in"], gap_s=opts["gap_s"])
            ids = tuple(int(p) for p in str(opts["tasks"]).split(",") if p.strip())
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        study = None
        if opts["study"] is not None:
            study = Study.objects.filter(pk=opts["study"]).first()
            if study is None:
                raise CommandError(f"--study: no study {opts['study']}")
        selection = Selection(study=study, platform=str(opts["platform"]), source=str(opts["source"]), task_ids=ids)
        t0 = time.perf_counter()
        report = eyetracking_report(selected_tasks(selection), params=params)
        title = f"Eye-tracking report: {selection.describe()}"
        text = eyetracking.to_markdown(report, title=title) if opts["format"] == "md" else eyetracking.to_csv(report)
        if opts["out"]:
            Path(opts["out"]).write_text(text, encoding="utf-8")
        else:
            self.stdout.write(text)
        n = next((r.cells for r in report["rows"] if r.metric == "tasks"), {})
        self.stderr.write(f"report of {sum(c['value'] for c in n.values())} tasks in {time.perf_counter() - t0:.1f} s")
