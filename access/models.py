"""The permissions that more than one app checks, held by a model without a table."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class StaffAccess(models.Model):
    """No rows: Django permissions need a model, and these belong to no single lab app."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_staff_pages", _("Can see the staff pages: replay, QC plots, analysis, release exclusions")),
            ("view_private", _("Can see platform worker ids and payment amounts")),
            ("export_dataset", _("Can export and download datasets of workers' data")),
        ]

    def __str__(self) -> str:
        return "staff access"
