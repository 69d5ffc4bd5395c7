"""``manage.py export_ifllm PATH [--format release|parquet]``."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from collection.management.progress import task_progress_bar
from collection.models import Task
from collection.services.release_export import FORMATS, release_export


class Command(BaseCommand):
    help = "Export the data in the IFllm release layout, or as Parquet tables."

    def add_arguments(self, parser) -> None:
        parser.add_argument("path")
        parser.add_argument("--format", choices=FORMATS, default="release")
        parser.add_argument(
            "--cleaned", action="store_true", help="leave out tasks excluded by quality control"
        )

    def handle(self, *args, path: str, format: str, cleaned: bool, **options) -> None:
        tasks = Task.objects.counted().filter(excluded=False) if cleaned else Task.objects.counted()
        with task_progress_bar() as progress:
            counts = release_export(path=path, format=format, tasks=tasks, progress=progress)
        self.stdout.write(self.style.SUCCESS(f"Exported to {path} ({format}): {counts}"))
