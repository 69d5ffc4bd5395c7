"""Staff import a release from the admin (server path or uploaded archive) as a job with progress.

Archives are built at test time from ../shared/ifllm/mini in tmp (never committed). Uploads and
unpack folders go to a temporary ``VAR_DIR``.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from collection.models import ImportRun, Turn
from jobs.models import Job
from tests.support.paths import MINI

pytestmark = pytest.mark.django_db

IMPORT_URL = "/admin/collection/importrun/import/"
MINI_SAMPLES, MINI_TURNS = 84972, 28


@pytest.fixture(autouse=True)
def var_dir(settings, tmp_path: Path) -> Path:
    settings.VAR_DIR = tmp_path / "var"
    settings.VAR_DIR.mkdir()
    return settings.VAR_DIR


def _staff(name: str, role: str) -> Client:
    user = User.objects.create_user(name, password=f"pw-{name}-1", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def researcher() -> Client:
    return _staff("rita", "researcher")


def tar_xz(tmp_path: Path, name: str = "release.tar.xz") -> Path:
    archive = tmp_path / name
    with tarfile.open(archive, "w:xz", preset=1) as tar:
        tar.add(MINI, arcname="ifllm-mini")
    return archive


def zip_of(tmp_path: Path, members: dict[str, bytes] | None = None, name: str = "release.zip") -> Path:
    """A zip of the mini release (``members=None``), or of the given members only."""
    archive = tmp_path / name
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        if members is None:
            for path in sorted(MINI.rglob("*")):
                if path.is_file():
                    zf.write(path, f"mini/{path.relative_to(MINI)}")
        else:
            for member, data in members.items():
                zf.writestr(member, data)
    return archive


def _upload(client: Client, archive: Path, capture, **extra: str):
    """Post the upload; the job runs when the request's transaction commits (as without Redis);
    then open the page the post redirected to, like the browser."""
    with capture(execute=True):
        upload = SimpleUploadedFile(archive.name, archive.read_bytes(), content_type="application/octet-stream")
        response = client.post(IMPORT_URL, {"archive": upload, "path": "", **extra})
    return client.get(response["Location"]) if response.status_code == 302 else response


def _left_in(var_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(var_dir)) for p in (var_dir / "imports").rglob("*") if p.is_file())


@pytest.mark.parametrize("kind", ["tar.xz", "zip"])
def test_uploaded_archive_is_imported_by_a_job(
    kind: str, researcher: Client, tmp_path: Path, var_dir: Path, django_capture_on_commit_callbacks
) -> None:
    archive = tar_xz(tmp_path) if kind == "tar.xz" else zip_of(tmp_path)
    response = _upload(researcher, archive, django_capture_on_commit_callbacks)
    assert response.status_code == 200
    job = Job.objects.get(kind="collection.import_release")
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.progress == 100 and job.message.endswith("task folders")
    assert job.result["loaded"]["samples"] == MINI_SAMPLES and job.result["loaded"]["turns"] == MINI_TURNS
    assert Turn.objects.count() == MINI_TURNS
    # The run is named after the upload, not the folder the job unpacked it into; nothing is left.
    run = ImportRun.objects.get()
    assert run.path == f"upload: {archive.name}" and job.result["import_run"] == run.pk
    assert _left_in(var_dir) == []
    page = response.content.decode()
    assert f"Importing upload: {archive.name} (job {job.pk})" in page
    assert reverse("admin:collection_importrun_change", args=[run.pk]) in page
    listing = researcher.get(reverse("admin:collection_importrun_changelist")).content.decode()
    assert f"upload: {archive.name}" in listing and "unpacked" not in listing and str(tmp_path) not in listing


def test_progress_is_reported_per_task_folder(
    researcher: Client, tmp_path: Path, django_capture_on_commit_callbacks, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobs import runner

    seen: list[tuple[int, str]] = []
    original = runner.JobContext.progress

    def spy(self, pct: float, message: str = "") -> None:
        original(self, pct, message)
        seen.append((self.job.progress, message))

    monkeypatch.setattr(runner.JobContext, "progress", spy)
    _upload(researcher, tar_xz(tmp_path), django_capture_on_commit_callbacks)
    assert seen[0][1] == "unpacking upload: release.tar.xz"
    percents = [p for p, _ in seen]
    assert percents == sorted(percents) and percents[-1] == 99 and len(seen) >= 5
    assert any(m.startswith("1 of ") for _, m in seen)


def _bad_archives(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    garbage = tmp_path / "garbage.tar.xz"
    garbage.write_bytes(b"this is not an archive" * 10)
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    return {
        "garbage": (garbage, "not a readable .tar.xz, .tar.gz, .tar or .zip archive"),
        "suffix": (notes, "expected one of .tar.xz"),
        "no_release": (zip_of(tmp_path, {"data/readme.md": b"hi"}), "holds no query_logs_table.csv"),
        "traversal": (
            zip_of(tmp_path, {"../query_logs_table.csv": b"x", "r/query_logs_table.csv": b"x"}, "evil.zip"),
            "would unpack outside the import folder",
        ),
        "truncated": (_truncated(tmp_path), "not a readable"),
    }


def _truncated(tmp_path: Path) -> Path:
    whole = tar_xz(tmp_path, "whole.tar.xz").read_bytes()
    cut = tmp_path / "cut.tar.xz"
    cut.write_bytes(whole[: len(whole) // 2])
    return cut


@pytest.mark.parametrize("case", ["garbage", "suffix", "no_release", "traversal", "truncated"])
def test_bad_archive_is_a_clear_error_on_the_field(
    case: str, researcher: Client, tmp_path: Path, var_dir: Path, django_capture_on_commit_callbacks
) -> None:
    archive, message = _bad_archives(tmp_path)[case]
    response = _upload(researcher, archive, django_capture_on_commit_callbacks)
    assert response.status_code == 200
    form = response.context["form"]
    assert message in " ".join(form.errors["archive"]), form.errors
    assert archive.name in " ".join(form.errors["archive"])
    assert not Job.objects.exists() and not ImportRun.objects.exists()
    assert _left_in(var_dir) == []


def test_upload_over_the_cap_is_refused(
    settings, researcher: Client, tmp_path: Path, var_dir: Path, django_capture_on_commit_callbacks
) -> None:
    settings.IFLLM_IMPORT_MAX_UPLOAD_MB = 0.5
    response = _upload(researcher, tar_xz(tmp_path), django_capture_on_commit_callbacks)
    errors = " ".join(response.context["form"].errors["archive"])
    assert "uploads are limited to 0.5 MB" in errors and "give its path" in errors
    assert not Job.objects.exists() and _left_in(var_dir) == []


def test_archive_that_unpacks_too_big_is_refused(
    settings, researcher: Client, tmp_path: Path, django_capture_on_commit_callbacks
) -> None:
    settings.IFLLM_IMPORT_MAX_UNPACKED_MB = 1  # the mini release unpacks to ~4 MB
    response = _upload(researcher, zip_of(tmp_path), django_capture_on_commit_callbacks)
    assert "unpacks to more than 1 MB" in " ".join(response.context["form"].errors["archive"])


@pytest.mark.parametrize("as_archive", [False, True], ids=["folder", "archive"])
def test_server_path_is_imported_and_named_as_given(
    as_archive: bool, researcher: Client, tmp_path: Path, var_dir: Path, django_capture_on_commit_callbacks
) -> None:
    src = tar_xz(tmp_path) if as_archive else MINI
    with django_capture_on_commit_callbacks(execute=True):
        response = researcher.post(IMPORT_URL, {"path": f"  {src}  "})
    job = Job.objects.get()
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert ImportRun.objects.get().path == str(src)
    assert Turn.objects.count() == MINI_TURNS
    assert src.exists() and _left_in(var_dir) == []  # a server file is never deleted
    assert response["Location"] == f"{IMPORT_URL}?job={job.pk}"


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"path": "/nowhere/release"}, "path", "/nowhere/release does not exist on the server"),
        ({"path": "relative/release"}, "path", "give an absolute path"),
        ({"path": str(MINI / "user_behavior")}, "path", "holds no query_logs_table.csv"),
        ({"path": ""}, "__all__", "Give either a path on the server or an archive"),
        # issue 22: OSError "File name too long" was a 500
        ({"path": "/" + "a" * 400}, "path", "not a usable path (File name too long)"),
        ({"path": "/tmp/" + "b" * 300 + "/release"}, "path", "not a usable path"),
        ({"path": "~no-such-user-here/release"}, "path", "not a usable path"),
    ],
)
def test_bad_server_path_is_a_clear_error(researcher: Client, data: dict, field: str, message: str) -> None:
    response = researcher.post(IMPORT_URL, data)
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert not Job.objects.exists()


def test_bad_job_in_the_query_string_is_no_500(researcher: Client) -> None:
    for value in ("abc", "1e5", "-1", "9" * 30, "\u0661"):
        assert researcher.get(IMPORT_URL, {"job": value}).status_code == 200


def test_path_and_upload_together_are_refused(researcher: Client) -> None:
    upload = SimpleUploadedFile("r.zip", b"PK")
    response = researcher.post(IMPORT_URL, {"path": str(MINI), "archive": upload})
    assert "not both" in " ".join(response.context["form"].non_field_errors())
    assert not Job.objects.exists()


def test_only_researchers_import() -> None:
    viewer = _staff("victor", "viewer")
    assert viewer.get(IMPORT_URL).status_code == 403
    assert viewer.post(IMPORT_URL, {"path": str(MINI)}).status_code == 403
    listing = viewer.get(reverse("admin:collection_importrun_changelist")).content.decode()
    assert IMPORT_URL not in listing and "ask a researcher to import one" in listing
    assert Client().get(IMPORT_URL).status_code == 302  # to the login page
    researcher = _staff("rita", "researcher")
    listing = researcher.get(reverse("admin:collection_importrun_changelist")).content.decode()
    assert f'href="{IMPORT_URL}"' in listing


def test_command_names_the_archive_not_the_temp_folder(tmp_path: Path) -> None:
    archive = tar_xz(tmp_path)
    call_command("import_ifllm", str(archive), "--jobs", "1", stdout=io.StringIO())
    assert ImportRun.objects.get().path == str(archive.resolve())


EMPTY_PAGES = [
    "/analysis/",
    "/crowd/qc/",
    "/crowd/release-exclusions/",
    "/admin/collection/task/",
    "/admin/collection/worker/",
    "/admin/collection/importrun/",
    "/admin/crowd/taskqc/",
]


def test_empty_pages_say_how_to_get_data(researcher: Client) -> None:
    for url in EMPTY_PAGES:
        html = researcher.get(url).content.decode()
        assert "No " in html and f'href="{IMPORT_URL}"' in html, url
        if url != "/crowd/release-exclusions/":  # only an import brings release workers
            assert "Run a study" in html and 'href="/admin/crowd/study/"' in html, url


def test_pages_with_data_do_not_show_the_hint(researcher: Client) -> None:
    from tests.support.site_tasks import site_task

    site_task(name="one")
    for url in ["/analysis/", "/admin/collection/task/", "/admin/collection/worker/", "/crowd/qc/"]:
        assert "no-data-hint" not in researcher.get(url).content.decode(), url
    # A list that is still empty while others are not keeps its hint.
    assert "no-data-hint" in researcher.get("/admin/collection/importrun/").content.decode()
