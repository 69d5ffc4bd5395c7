"""``manage.py analysis_figures [--out DIR]``: render the behaviour figures (PNG and SVG)."""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand

from analysis.services import figures_render


class Command(BaseCommand):
    help = "Render every behaviour figure from the database; store them and optionally write files."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--out", help="also write NAME.png and NAME.svg into this folder")

    def handle(self, *args, out: str | None, **opts) -> None:
        figures = figures_render(progress=lambda pct, msg="": sys.stderr.write(f"\r{pct:5.1f}% {msg:50s}"))
        sys.stderr.write("\n")
        if out:
            folder = Path(out)
            folder.mkdir(parents=True, exist_ok=True)
            for fig in figures:
                (folder / f"{fig.name}.png").write_bytes(bytes(fig.png))
                (folder / f"{fig.name}.svg").write_text(fig.svg)
        self.stdout.write(self.style.SUCCESS(f"{len(figures)} figures: {', '.join(f.name for f in figures)}"))
