"""``manage.py export_dataset PATH``: the cleaned, pseudonymised dataset for release."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from collection.management.progress import task_progress_bar
from collection.models import DataSelection
from crowd.services import dataset_export

FORMATS = ("release", "parquet", "hf")


class Command(BaseCommand):
    help = (
        "Export the tasks of a data selection (--selection ID; without one: every task not excluded by "
        "staff, QC not applied) in the release layout, as Parquet and as Hugging Face preference JSONL, "
        "with keyed worker pseudonyms, every QC figure per task, and without platform ids or free text."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("path")
        parser.add_argument("--format", action="append", choices=FORMATS, help="repeat; default: all three")
        parser.add_argument("--include-free-text", action="store_true", help="keep summaries, feedback, location")
        parser.add_argument("--no-demographics", action="store_true", help="blank age, gender, education, race")
        parser.add_argument("--selection", type=int, help="id of the data selection to export (admin: Data selections)")

    def handle(self, *args, path: str, format: list[str] | None, **options) -> None:
        selection = None
        if options["selection"] is not None:
            selection = DataSelection.objects.filter(pk=options["selection"]).first()
            if selection is None:
                raise CommandError(f"--selection: no data selection {options['selection']}")
        else:
            self.stderr.write("No --selection: every task not excluded by staff is exported; QC is not applied.")
        with task_progress_bar() as progress:
            counts = dataset_export(
                selection=selection,
                path=path,
                formats=tuple(format or FORMATS),
                include_free_text=options["include_free_text"],
                include_demographics=not options["no_demographics"],
                progress=progress,
            )
        self.stdout.write(self.style.SUCCESS(f"Exported to {path}: {counts}"))
