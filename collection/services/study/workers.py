"""Study flow: settings and identity."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ...models import (
    Platform,
    StudySettings,
    Withdrawal,
    Worker,
)
from .base import StudyError


def study_settings_get() -> StudySettings:
    """The singleton settings row, created with defaults on first use."""
    obj, _created = StudySettings.objects.get_or_create(pk=1)
    return obj


def withdrawal_key(*, platform: str, platform_worker_id: str) -> str:
    """One-way HMAC of a platform id in the ``withdrawal:`` domain (``collection.Withdrawal.subject_key``).

    A domain of its own so that the key equals no pseudonym (exports carry pseudonyms): the audit
    record of a withdrawal must not link back to anything the person's data was shared as.
    """
    key = settings.IFLLM_PSEUDONYM_KEY.encode()
    return hmac.new(key, f"withdrawal:{platform}:{platform_worker_id.strip()}".encode(), hashlib.sha256).hexdigest()


def platform_id_withdrew(*, platform: str, platform_worker_id: str) -> bool:
    """Whether the person with this platform id has withdrawn (``Withdrawal.subject_key``).

    Everything that would make a Worker from a platform id asks this first: entry
    (:func:`worker_get_or_create`), and the crowd side's matching and blocking of platform
    submissions (``crowd.services.platform``), which must keep the payment record without
    recording the person again.
    """
    wid = (platform_worker_id or "").strip()
    if not wid:
        return False
    return Withdrawal.objects.filter(subject_key=withdrawal_key(platform=platform, platform_worker_id=wid)).exists()


def worker_pseudonym(*, platform: str, platform_worker_id: str) -> str:
    """HMAC of the platform id under the lab key: stable per person, meaningless outside the lab."""
    key = settings.IFLLM_PSEUDONYM_KEY.encode()
    digest = hmac.new(key, f"{platform}:{platform_worker_id}".encode(), hashlib.sha256).hexdigest()
    return f"w{digest[:31]}"


@transaction.atomic
def worker_get_or_create(*, platform: str, platform_worker_id: str) -> Worker:
    """The worker with this platform id, created (without consent) when new.

    Raises StudyError for an empty/overlong id, for blocked workers, and for a person who has
    withdrawn from the study (their data was deleted; coming back with the same platform id is
    refused rather than silently recording them again).
    """
    wid = platform_worker_id.strip()
    if not wid or len(wid) > 128 or "\x00" in wid:
        raise StudyError(_("Please enter a valid worker ID."), field="worker_id")
    if platform not in (Platform.MTURK, Platform.PROLIFIC, Platform.LAB):
        raise StudyError(_("Unknown platform."), field="platform")
    if platform_id_withdrew(platform=platform, platform_worker_id=wid):
        raise StudyError(
            _("You have withdrawn from this study and your data was deleted, so you cannot take part again."),
            code="withdrawn",
        )
    worker, _created = Worker.objects.get_or_create(
        platform=platform,
        platform_worker_id=wid,
        defaults={
            "pseudonym": worker_pseudonym(platform=platform, platform_worker_id=wid),
            "created_at": timezone.now(),
        },
    )
    if worker.blocked:
        raise StudyError(_("This worker ID cannot take part in the study."), code="blocked")
    return worker


def preview_worker_create(*, user: Any, study_ref: str = "") -> Worker:
    """A new preview worker for a staff member who walks the study as a worker.

    ``is_preview`` keeps its tasks out of every figure and dataset (``TaskQuerySet.counted``);
    a fresh worker each time, so every preview starts at consent like a new participant.
    ``study_ref`` names what it previews (e.g. the crowd study), for the record only.
    """
    from django.core.exceptions import PermissionDenied

    if user is None or not user.is_staff or not user.has_perm("access.view_staff_pages"):
        raise PermissionDenied("a preview session needs a staff account with access.view_staff_pages")
    token = secrets.token_hex(8)
    return Worker.objects.create(
        pseudonym=f"preview-{token}",
        platform=Platform.LAB,
        platform_worker_id=f"preview-{token}",
        is_preview=True,
        created_at=timezone.now(),
        extra={"preview": {"by": user.pk, "study": study_ref}},
    )


@transaction.atomic
def worker_consent_give(*, worker: Worker, consent: bool) -> Worker:
    """Record consent; refusing is an error so that the page can say why it cannot continue."""
    if not consent:
        raise StudyError(_("You need to tick the consent box to take part."), field="consent")
    worker.consent = True
    worker.consented_at = timezone.now()
    worker.save(update_fields=["consent", "consented_at"])
    return worker


@transaction.atomic
def worker_demographics_set(
    *, worker: Worker, age: int, location: str, education: str, race: str, gender: str
) -> Worker:
    """Store demographics (already validated by the form; the ranges are re-checked here)."""
    if worker.consent is not True:
        raise StudyError(_("Consent is needed first."), code="no_consent")
    data = demographics_clean(age=age, location=location, education=education, race=race, gender=gender)
    for name, value in data.items():
        setattr(worker, name, value)
    worker.save(update_fields=list(data))
    return worker


def demographics_clean(*, age: int, location: str, education: str, race: str, gender: str) -> dict:
    """The checked demographics (StudyError naming the field otherwise)."""
    if not 18 <= int(age) <= 122:
        raise StudyError(_("Age must be between 18 and 122."), field="age")
    for name, value in (("location", location), ("education", education), ("race", race), ("gender", gender)):
        if not value.strip() or len(value) > 100:
            raise StudyError(_("Please answer this question."), field=name)
    return {"age": int(age), "location": location.strip(), "education": education.strip(),
            "race": race.strip(), "gender": gender.strip()}


def worker_needs_profile(worker: Worker) -> str | None:
    """'consent' or 'demographics' while the worker still owes them, else None."""
    if worker.consent is not True:
        return "consent"
    if worker.age is None:
        return "demographics"
    return None
