"""The consent page's way to withdraw afterwards points at something that is on the page: the
researchers' contact when the lab gave one, else the recruitment platform's messages."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from collection.services import study

from .conftest import enter_lab

pytestmark = pytest.mark.django_db


def _how(client: Client) -> str:
    html = client.get(reverse("collection:consent")).content.decode()
    return html.split('id="how-to-withdraw"', 1)[1].split("</ul>", 1)[0]


def test_with_a_contact_the_page_points_at_it() -> None:
    cfg = study.study_settings_get()
    cfg.researcher_contact = "IFllm lab, lab@example.org"
    cfg.save()
    client = Client()
    enter_lab(client, "with-contact")
    how = _how(client)
    assert "Who runs this study" in how and "platform you came from" not in how
    assert 'id="researcher-contact"' in client.get(reverse("collection:consent")).content.decode()


def test_without_a_contact_the_page_does_not_point_below() -> None:
    cfg = study.study_settings_get()
    cfg.researcher_contact = ""
    cfg.save()
    client = Client()
    enter_lab(client, "no-contact")
    how = _how(client)
    assert "below" not in how and "platform you came from" in how
    assert 'id="researcher-contact"' not in client.get(reverse("collection:consent")).content.decode()
