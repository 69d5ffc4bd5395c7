"""The Study admin's form says what is true for each platform: the three Prolific codes are above
the code list, the URL serves both platforms, Prolific has no sandbox; the other platform's
section of a saved study starts folded. The crowd lists link a study's live monitor."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from crowd.models import Study

from .conftest import client_for

pytestmark = pytest.mark.django_db


def _fieldset_classes(html: str, legend: str) -> str:
    """The class attribute of the fieldset whose heading is ``legend``."""
    for match in re.finditer(r'<fieldset class="([^"]*)"[^>]*>(.*?)</fieldset>', html, re.S):
        if re.search(rf"<h2[^>]*>\s*{re.escape(legend)}\s*</h2>", match.group(2)):
            return match.group(1)
    raise AssertionError(f"no fieldset {legend!r}")


def test_a_prolific_study_folds_the_mturk_section_and_the_help_fits(researcher) -> None:
    study = Study.objects.create(name="p", platform=Study.Platform.PROLIFIC, reward=Decimal("2"))
    html = client_for(researcher).get(reverse("admin:crowd_study_change", args=[study.pk])).content.decode()
    assert "collapse" in _fieldset_classes(html, "MTurk qualifications")
    assert "collapse" not in _fieldset_classes(html, "Prolific")
    assert "The three codes above are added" in html and "three codes below" not in html
    assert "Prolific has no sandbox" in html and "PROLIFIC_PID, STUDY_ID and SESSION_ID are added" in html


def test_an_mturk_study_folds_the_prolific_section_and_a_new_one_folds_nothing(researcher) -> None:
    study = Study.objects.create(name="m", platform=Study.Platform.MTURK, reward=Decimal("2"))
    client = client_for(researcher)
    html = client.get(reverse("admin:crowd_study_change", args=[study.pk])).content.decode()
    assert "collapse" in _fieldset_classes(html, "Prolific")
    assert "collapse" not in _fieldset_classes(html, "MTurk qualifications")
    new = client.get(reverse("admin:crowd_study_add")).content.decode()
    assert "collapse" not in _fieldset_classes(new, "Prolific")
    assert "collapse" not in _fieldset_classes(new, "MTurk qualifications")
    listing = client.get(reverse("admin:crowd_study_changelist")).content.decode()
    assert reverse("crowd:study_monitor", args=[study.pk]) in listing
