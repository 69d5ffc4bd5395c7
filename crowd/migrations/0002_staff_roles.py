"""Create the two staff roles (researcher, viewer) with their permissions (see crowd/roles.py)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def forwards(apps, schema_editor):
    from access.roles import LAB_APPS, roles_sync

    # Permissions are normally created after all migrations (post_migrate); create them now
    # for the apps the roles cover, so the groups get their permissions on a fresh database.
    for app_config in apps.get_app_configs():
        if app_config.label in LAB_APPS:
            app_config.models_module = True
            create_permissions(app_config, apps=apps, verbosity=0)
            app_config.models_module = None
    roles_sync(apps)


def backwards(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=["researcher", "viewer"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("crowd", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("jobs", "0001_initial"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
