"""The shared staff permissions move from crowd.Study to access.StaffAccess.

Groups and users that held ``crowd.view_staff_pages``, ``crowd.view_private`` or
``crowd.export_dataset`` get the ``access`` permission of the same name; the old rows go.
"""

from django.db import migrations, models

MOVED = ("view_staff_pages", "view_private", "export_dataset")


def forwards(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    app_config = apps.get_app_config("access")
    # A state app has no models module, and create_permissions skips apps without one. Put back
    # what was there: run with the global registry (tests/crowd/test_access_migration.py), setting
    # None would make every later flush skip the access permissions.
    previous = getattr(app_config, "models_module", None)
    app_config.models_module = True
    try:
        create_permissions(app_config, apps=apps, verbosity=0)
    finally:
        app_config.models_module = previous
    permission = apps.get_model("auth", "Permission")
    for codename in MOVED:
        new = permission.objects.get(content_type__app_label="access", codename=codename)
        for old in permission.objects.filter(content_type__app_label="crowd", codename=codename):
            new.group_set.add(*old.group_set.all())
            new.user_set.add(*old.user_set.all())
            old.delete()


def backwards(apps, schema_editor):
    permission = apps.get_model("auth", "Permission")
    permission.objects.filter(content_type__app_label="access", codename__in=MOVED).delete()


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("crowd", "0003_h11b_view_private"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.CreateModel(
            name="StaffAccess",
            fields=[("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID"))],
            options={
                "managed": False,
                "default_permissions": (),
                "permissions": [
                    ("view_staff_pages", "Can see the staff pages: replay, QC plots, analysis, release exclusions"),
                    ("view_private", "Can see platform worker ids and payment amounts"),
                    ("export_dataset", "Can export and download datasets of workers' data"),
                ],
            },
        ),
        migrations.RunPython(forwards, backwards),
    ]
