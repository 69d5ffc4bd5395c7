"""``manage.py expire_open_tasks``: abandon open tasks whose worker left (idempotent; for cron).

Choosing topics runs the same sweep before it balances the quotas, so this command only makes
the admin's task list and the quota figures current between workers.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from collection.services.study import study_settings_get, tasks_expire_idle


class Command(BaseCommand):
    help = "Abandon open study tasks idle for longer than the study setting open_task_expire_s."

    def handle(self, *args, **options) -> None:
        expired = tasks_expire_idle()
        after = study_settings_get().open_task_expire_s
        self.stdout.write(f"expired {len(expired)} open task(s) idle for more than {after} s: {expired}")
