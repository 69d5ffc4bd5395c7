"""``manage.py make_smoke_model``: a tiny random causal LM under var/models/ for trying alignment."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from alignment.services import smoke_model_make


class Command(BaseCommand):
    help = (
        "Make a tiny randomly initialised GPT-2 with an offline tokenizer under var/models/ "
        "(a SMOKE-TEST model: for walking SFT -> rDPO -> evaluation on a CPU, not for results)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--force", action="store_true", help="Make it again even if it exists.")

    def handle(self, *args, force: bool, **options) -> None:
        path, made = smoke_model_make(force=force)
        verb = "written to" if made else "already at (kept; --force makes it again)"
        self.stdout.write(self.style.SUCCESS(f"Smoke-test model {verb} {path}"))
        self.stdout.write("Use this path as the base model of an SFT run (admin: Alignment > Training runs > Add).")
