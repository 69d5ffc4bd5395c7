"""The move of the shared staff permissions from crowd to access keeps who holds them."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType

pytestmark = pytest.mark.django_db


def test_holders_of_the_old_crowd_permissions_get_the_access_ones() -> None:
    migration = importlib.import_module("access.migrations.0001_initial")
    study = ContentType.objects.get(app_label="crowd", model="study")
    old = Permission.objects.create(content_type=study, codename="view_private", name="old")
    group = Group.objects.create(name="lab-a")
    group.permissions.add(old)
    user = User.objects.create_user("u")
    user.user_permissions.add(Permission.objects.create(content_type=study, codename="export_dataset", name="old"))
    outsider = User.objects.create_user("v")
    migration.forwards(apps, None)
    assert group.permissions.filter(content_type__app_label="access", codename="view_private").exists()
    user = User.objects.get(pk=user.pk)
    assert user.has_perm("access.export_dataset") and not user.has_perm("access.view_private")
    assert not User.objects.get(pk=outsider.pk).has_perm("access.export_dataset")
    assert not Permission.objects.filter(content_type=study, codename__in=migration.MOVED).exists()
    # The global registry is left as it was: with no models module, every later flush (transactional
    # tests) skipped creating the access permissions and the role groups lost them.
    assert apps.get_app_config("access").models_module is importlib.import_module("access.models")
