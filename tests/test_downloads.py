"""Exports reach the browser: preference datasets as a zip, finished export jobs' folders as a zip."""

from __future__ import annotations

import io
import zipfile
from io import StringIO

import pytest
from django.core.management import call_command

from alignment.models import PreferenceDataset
from alignment.services import preference_dataset_build
from jobs.models import Job
from jobs.services import job_start
from tests.support.paths import MINI

pytestmark = pytest.mark.django_db


def _zip(response) -> zipfile.ZipFile:
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert "attachment" in response["Content-Disposition"]
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_preference_dataset_download_holds_the_export_files(admin_client, settings, tmp_path) -> None:
    settings.IFLLM_RUNS_DIR = tmp_path / "runs"
    call_command("import_ifllm", str(MINI), "--jobs", "1", stdout=StringIO())
    dataset = preference_dataset_build(name="explicit", source=PreferenceDataset.Source.EXPLICIT)
    response = admin_client.post("/admin/alignment/preferencedataset/",
                                 {"action": "download_datasets", "_selected_action": [dataset.pk]})
    zf = _zip(response)
    assert response["Content-Disposition"].endswith(f'filename="dataset-{dataset.pk}.zip"')
    names = set(zf.namelist())
    assert {f"dataset-{dataset.pk}/README.md", f"dataset-{dataset.pk}/train.jsonl"} <= names
    lines = zf.read(f"dataset-{dataset.pk}/train.jsonl").decode().splitlines()
    assert len(lines) == dataset.pairs.filter(split="train").count() > 0
    assert not (tmp_path / "runs").exists()  # nothing left on the server


def test_finished_export_job_offers_its_folder_as_a_zip(admin_client, settings, tmp_path,
                                                       django_capture_on_commit_callbacks) -> None:
    settings.VAR_DIR = tmp_path
    call_command("import_ifllm", str(MINI), "--jobs", "1", stdout=StringIO())
    with django_capture_on_commit_callbacks(execute=True):
        job = job_start(kind="crowd.export_dataset", params={"path": str(tmp_path / "exports" / "x")})
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    page = admin_client.get(f"/admin/jobs/job/{job.pk}/change/").content.decode()
    url = f"/admin/jobs/job/{job.pk}/download/"
    assert f'href="{url}"' in page
    zf = _zip(admin_client.get(url))
    assert any(name.startswith("x/") and name.endswith(".csv") for name in zf.namelist())
    # a path outside VAR_DIR is never served, whatever the job's params say
    Job.objects.filter(pk=job.pk).update(params={"path": str(MINI)})
    assert admin_client.get(url).status_code == 404
    other = Job.objects.create(kind="analysis.figures", status=Job.Status.SUCCEEDED, params={"path": str(tmp_path)})
    assert admin_client.get(f"/admin/jobs/job/{other.pk}/download/").status_code == 404
    assert "Output" not in admin_client.get(f"/admin/jobs/job/{other.pk}/change/").content.decode()


def test_download_needs_the_export_permission(client, django_user_model, settings, tmp_path) -> None:
    from django.contrib.auth.models import Permission

    settings.VAR_DIR = tmp_path
    (tmp_path / "exports" / "x").mkdir(parents=True)
    job = Job.objects.create(kind="crowd.export_dataset", status=Job.Status.SUCCEEDED,
                             params={"path": str(tmp_path / "exports" / "x")})
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_job"))
    client.force_login(user)
    assert client.get(f"/admin/jobs/job/{job.pk}/download/").status_code == 403
