"""``manage.py import_ifllm PATH``: load an IFllm release folder (or its .tar.xz)."""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from collection.management.progress import task_progress_bar
from collection.services.release_import import release_import


class Command(BaseCommand):
    help = "Import an IFllm release folder (query_logs_table.csv, task_table.csv, ...). Idempotent."

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", help="release folder, or a .tar.xz archive of one")
        parser.add_argument("--jobs", type=int, default=2, help="parser processes (default 2)")
        parser.add_argument("--show-problems", type=int, default=20, help="problems to list")

    def handle(self, *args, path: str, jobs: int, show_problems: int, **options) -> None:
        src = Path(path)
        if not src.exists():
            raise CommandError(f"{src} does not exist")
        if src.is_file():
            with tempfile.TemporaryDirectory(prefix="ifllm-") as tmp:
                self.stdout.write(f"Unpacking {src} ...")
                with tarfile.open(src) as tar:
                    tar.extractall(tmp, filter="data")
                roots = [p.parent for p in Path(tmp).rglob("query_logs_table.csv")]
                if not roots:
                    raise CommandError(f"{src} holds no query_logs_table.csv")
                self._import(roots[0], jobs, show_problems, label=str(src.resolve()))
        else:
            self._import(src, jobs, show_problems, label=str(src.resolve()))

    def _import(self, root: Path, jobs: int, show_problems: int, *, label: str) -> None:
        with task_progress_bar() as progress:
            try:
                summary = release_import(path=root, n_jobs=jobs, progress=progress, label=label)
            except FileNotFoundError as exc:
                raise CommandError(str(exc)) from exc
        data = summary.as_dict()
        self.stdout.write(self.style.SUCCESS("Loaded:"))
        for key, value in data["loaded"].items():
            self.stdout.write(f"  {key}: {value}")
        if data["skipped"]:
            self.stdout.write(self.style.WARNING("Skipped (reason: rows):"))
            for key, value in data["skipped"].items():
                self.stdout.write(f"  {key}: {value}")
        if data["notes"]:
            self.stdout.write("Changed or noted (reason: rows):")
            for key, value in data["notes"].items():
                self.stdout.write(f"  {key}: {value}")
        for problem in summary.problems[:show_problems]:
            self.stdout.write(f"  {problem}")
        if len(summary.problems) > show_problems:
            self.stdout.write(f"  ... {len(summary.problems) - show_problems} more (see the import run in the admin)")
