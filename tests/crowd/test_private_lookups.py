"""Issue 22, item 2: viewers read private data through admin filters.

Replayed: ``/admin/crowd/assignment/?platform_worker_id__startswith=A2S`` answered "1 assignment"
or "0" (a worker id came out in 239 requests), ``/admin/crowd/auditlog/?request__BonusAmount=0.75``
the same for amounts, and the study admin showed ``reward``. Now every admin refuses (400) each
lookup that reaches a private field for users without ``access.view_private``.
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from access.privacy import PRIVATE_FIELDS, lookup_is_private
from collection.models import Platform, Worker
from crowd.models import HIT, Assignment, AuditLog, Study

from .conftest import client_for

pytestmark = pytest.mark.django_db


def _private_lookups(model) -> list[str]:
    """Every lookup of ``model``'s admin that reaches a private field in at most two hops."""
    out = []
    for field in model._meta.get_fields():
        if field.name in PRIVATE_FIELDS.get(model._meta.label_lower, ()):
            out += [field.name, f"{field.name}__startswith", f"{field.name}__BonusAmount"]
        elif field.is_relation and field.related_model is not None:
            related = field.related_model._meta
            for private in PRIVATE_FIELDS.get(related.label_lower, ()):
                out.append(f"{field.name}__{private}__startswith")
            for sub in related.get_fields():
                if sub.is_relation and sub.related_model is not None:
                    for private in PRIVATE_FIELDS.get(sub.related_model._meta.label_lower, ()):
                        out.append(f"{field.name}__{sub.name}__{private}")
    return out


@pytest.fixture
def rows(study: Study) -> Assignment:
    worker = Worker.objects.create(pseudonym="p1", platform=Platform.MTURK, platform_worker_id="A2SVICTIM0000001")
    hit = HIT.objects.create(study=study, environment="sandbox", hit_id="3H", unique_request_token="t",
                             max_assignments=1, reward="2.00")
    AuditLog.objects.create(platform="mturk", environment="sandbox", operation="send_bonus", ok=True,
                            request={"BonusAmount": "0.75", "WorkerId": "A2SVICTIM0000001"}, study=study)
    return Assignment.objects.create(study=study, hit=hit, platform="mturk", assignment_id="3A",
                                     platform_worker_id="A2SVICTIM0000001", worker=worker)


def test_the_replayed_probes_are_400_for_viewers_and_work_for_researchers(rows, viewer, researcher):
    probes = [
        ("admin:crowd_assignment_changelist", {"platform_worker_id__startswith": "A2S"}),
        ("admin:crowd_auditlog_changelist", {"request__BonusAmount": "0.75"}),
        ("admin:crowd_hit_changelist", {"reward": "2.00"}),
        ("admin:crowd_study_changelist", {"reward__gte": "1"}),
        ("admin:collection_worker_changelist", {"platform_worker_id__startswith": "A2S"}),
    ]
    for name, params in probes:
        assert client_for(viewer).get(reverse(name), params).status_code == 400, (name, params)
        assert client_for(researcher).get(reverse(name), params).status_code in (200, 302), (name, params)
    # through a relation: refused for viewers (Django refuses it for everyone not in list_filter)
    url = reverse("admin:crowd_assignment_changelist")
    assert client_for(viewer).get(url, {"worker__platform_worker_id__startswith": "A2S"}).status_code == 400
    page = client_for(researcher).get(reverse("admin:crowd_assignment_changelist"),
                                      {"platform_worker_id__startswith": "A2S"})
    assert page.context["cl"].result_count == 1  # researchers still filter by worker id


def test_study_admin_hides_the_reward_from_viewers(study: Study, viewer, researcher):
    url = reverse("admin:crowd_study_change", args=[study.pk])
    assert "reward" not in client_for(viewer).get(url).context["adminform"].form.fields
    assert 'name="reward"' in client_for(researcher).get(url).content.decode()
    listing = client_for(viewer).get(reverse("admin:crowd_study_changelist")).content.decode()
    assert "column-reward" not in listing


def test_every_admin_refuses_private_lookups_for_viewers(rows, viewer):
    """For every registered admin, every lookup that reaches a private field: 400 (or 403 where
    the viewer may not see the list at all), never an answer."""
    client = client_for(viewer)
    checked = 0
    for model, model_admin in admin.site._registry.items():
        assert getattr(model_admin, "_private_lookups_guarded", False), model
        for lookup in _private_lookups(model)[:4]:  # each kind of path; all of them take a minute
            assert lookup_is_private(model, lookup), (model, lookup)
            url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
            status = client.get(url, {lookup: "A"}).status_code
            assert status in (400, 403), (url, lookup, status)
            checked += 1
    assert checked > 20


def test_public_lookups_are_not_refused(rows, viewer):
    assert not lookup_is_private(Assignment, "status")
    assert not lookup_is_private(Assignment, "study__name__startswith")
    r = client_for(viewer).get(reverse("admin:crowd_assignment_changelist"), {"status": "Submitted"})
    assert r.status_code == 200
