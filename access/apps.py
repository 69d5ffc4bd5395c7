from django.apps import AppConfig


class AccessConfig(AppConfig):
    """Staff roles and the permissions every app checks (the bottom of the app graph, beside jobs).

    Other apps ask ``access.*`` permissions and use :mod:`access.privacy`; this app imports none of
    them, so permissions never make one lab app depend on another (tests/test_app_boundaries.py).
    """

    default_auto_field = "django.db.models.BigAutoField"
    name = "access"
    verbose_name = "Staff access"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from .roles import roles_sync_after_migrate

        # Keeps the two staff roles' permissions complete when other apps add models later.
        post_migrate.connect(roles_sync_after_migrate, dispatch_uid="access.roles_sync")
