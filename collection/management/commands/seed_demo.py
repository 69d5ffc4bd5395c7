"""``manage.py seed_demo``: demo topics, the offline demo model and a staff account, then the
crowd app's demo Prolific study (``seed_demo_study``).

Idempotent. The staff password is generated once, printed, and kept in ``var/demo_staff.txt``
so a restart prints the same one.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand

from collection.models import LLMModel, LLMProvider, Topic

DEMO_TOPICS = [
    "Periodic table", "Burj Khalifa", "Alexander the Great", "Bundesliga", "Moomins",
    "Jack the Ripper", "Formula One", "Photosynthesis", "Great Barrier Reef", "Printing press",
    "Ottoman Empire", "Jazz", "Marie Curie", "Volcano", "Silk Road", "Honey bee",
]


class Command(BaseCommand):
    help = "Create demo topics, the offline demo LLM entries and a staff account (prints its password)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default="staff")

    def handle(self, *args, username: str, **options) -> None:
        for title in DEMO_TOPICS:
            Topic.objects.get_or_create(title=title)
        for name, model_id in (("Demo model A", "demo-a"), ("Demo model B", "demo-b")):
            LLMModel.objects.get_or_create(
                name=name, defaults={"provider": LLMProvider.DEMO, "model_id": model_id, "enabled": True}
            )
        # Judges alignment evaluations offline (a heuristic, for trying the loop, not for results);
        # never served to workers.
        LLMModel.objects.get_or_create(
            name="Demo judge (offline heuristic)",
            defaults={"provider": LLMProvider.DEMO, "model_id": "demo-judge", "can_judge": True, "enabled": False},
        )
        password_file = settings.VAR_DIR / "demo_staff.txt"
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None or not password_file.exists():
            password = secrets.token_urlsafe(12)
            user = user or User(username=username)
            user.is_staff = user.is_superuser = True
            user.set_password(password)
            user.save()
            password_file.write_text(f"{username}\n{password}\n")
            password_file.chmod(0o600)
        username, password = password_file.read_text().split()[:2]
        # The crowd app's demo study (monitor, review queue), by name: collection imports no crowd code.
        if "seed_demo_study" in get_commands():
            call_command("seed_demo_study", stdout=self.stdout)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data ready: {Topic.objects.count()} topics, "
                f"{LLMModel.objects.count()} models. Staff login: {username} / {password}"
            )
        )
