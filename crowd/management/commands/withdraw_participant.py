"""``manage.py withdraw_participant ID [--platform] [--yes]``: a participant's withdrawal by command."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from collection.models import Withdrawal
from crowd.services.withdrawal import WithdrawalError, participant_find, participant_withdraw, withdrawal_preview


class Command(BaseCommand):
    help = (
        "Withdraw a participant: delete their samples, answers, calibration, demographics and free text, "
        "remove their rows from the feature cache, and mark every run, dataset, leaderboard, export and "
        "training run built from their data as affected (rebuild them from the admin: Withdrawals). Payment "
        "records are kept. Without --yes it only says what would be deleted and marked."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("identifier", help="the participant's pseudonym (or, with --platform, platform id)")
        parser.add_argument("--platform", action="store_true", help="the identifier is a platform id "
                            "(Prolific PID, MTurk worker id, lab participant id)")
        parser.add_argument("--yes", action="store_true", help="really delete (otherwise: a dry run)")

    def handle(self, *args, identifier: str, platform: bool, yes: bool, **options) -> None:
        try:
            worker = participant_find(identifier=identifier, platform_id=platform)
        except WithdrawalError as exc:
            raise CommandError(str(exc)) from None
        preview = withdrawal_preview(worker=worker)
        self.stdout.write(
            f"Participant {worker.pseudonym}: {preview['tasks']} task(s), {preview['turns']} turn(s), "
            f"{preview['samples']} sample(s), {preview['calibration_attempts']} calibration attempt(s)."
        )
        for a in preview["affected"]:
            self.stdout.write(f"  affected: {a.app_label}.{a.model_name} #{a.object_id} {a.label} ({a.reason})")
        if not yes:
            raise CommandError("nothing deleted: add --yes to withdraw this participant")
        record = participant_withdraw(worker=worker, channel=Withdrawal.Channel.COMMAND)
        if record is None:
            raise CommandError("already withdrawn (nothing left to delete)")
        record.refresh_from_db()
        self.stdout.write(self.style.SUCCESS(
            f"Withdrawn ({record}): deleted {record.counts}; {record.affected.count()} artifact(s) marked affected."
        ))
