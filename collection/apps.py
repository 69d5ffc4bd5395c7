from django.apps import AppConfig


class CollectionConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "collection"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
