"""Staff import a release from the admin: a folder or archive on the server, or an uploaded archive.

The import itself is ``release_import``; this module checks what staff gave before a job is
queued (so a bad archive is a form error, not a failed job an hour later), keeps uploads under
``var/imports/`` and unpacks archives safely for the job:

* an upload larger than ``IFLLM_IMPORT_MAX_UPLOAD_MB`` is refused;
* an archive must be a readable ``.tar.xz``/``.tar.gz``/``.tar``/``.zip`` holding a
  ``query_logs_table.csv``;
* members may not leave the unpack folder (absolute paths, ``..``, links) and together may not
  unpack to more than ``IFLLM_IMPORT_MAX_UNPACKED_MB`` (a zip bomb fills the disk otherwise).
"""

from __future__ import annotations

import shutil
import tarfile
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile

from jobs.models import Job
from jobs.services import job_start

IMPORT_JOB = "collection.import_release"
MARKER = "query_logs_table.csv"
ARCHIVE_SUFFIXES = (".tar.xz", ".txz", ".tar.gz", ".tgz", ".tar", ".zip")
MB = 1024 * 1024


class ArchiveError(ValueError):
    """The archive cannot be read or would unpack outside its folder or beyond the size cap."""


def imports_dir() -> Path:
    return Path(settings.VAR_DIR) / "imports"


def max_upload_bytes() -> int:
    return int(settings.IFLLM_IMPORT_MAX_UPLOAD_MB * MB)


def max_unpacked_bytes() -> int:
    return int(settings.IFLLM_IMPORT_MAX_UNPACKED_MB * MB)


def is_archive_name(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


# --------------------------------------------------------------------------- archives (no Django)
@dataclass(frozen=True)
class Member:
    name: str
    size: int
    is_file: bool
    is_link: bool


def _members(archive: Path) -> Iterator[Member]:
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
                    yield Member(info.filename, info.file_size, not info.is_dir(), is_link)
            return
        with tarfile.open(archive) as tar:
            for info in tar:
                yield Member(info.name, info.size, info.isfile(), info.issym() or info.islnk())
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise ArchiveError(f"not a readable .tar.xz, .tar.gz, .tar or .zip archive ({exc})") from exc


def archive_check(archive: Path) -> str:
    """Read the archive's table of contents; return the folder inside it that holds the release.

    Raises :class:`ArchiveError` naming the first problem found.
    """
    if not tarfile.is_tarfile(archive) and not zipfile.is_zipfile(archive):
        raise ArchiveError("not a readable .tar.xz, .tar.gz, .tar or .zip archive")
    total, roots = 0, []
    for m in _members(archive):
        path = PurePosixPath(m.name)
        if path.is_absolute() or ".." in path.parts or "\\" in m.name:
            raise ArchiveError(f"member {m.name!r} would unpack outside the import folder")
        if m.is_link:
            raise ArchiveError(f"member {m.name!r} is a link; a release holds plain files only")
        total += m.size
        if total > max_unpacked_bytes():
            raise ArchiveError(
                f"unpacks to more than {settings.IFLLM_IMPORT_MAX_UNPACKED_MB} MB "
                "(IFLLM_IMPORT_MAX_UNPACKED_MB)"
            )
        if m.is_file and path.name == MARKER:
            roots.append(path.parent)
    if not roots:
        raise ArchiveError(f"holds no {MARKER}: is it an IFllm release?")
    return str(min(roots, key=lambda p: len(p.parts)))


def archive_unpack(archive: Path, dest: Path) -> Path:
    """Unpack ``archive`` (checked again: it may have changed since upload) into ``dest``;
    return the release folder."""
    inner = archive_check(archive)
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(dest)
    else:
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="data")
    return dest / inner


# --------------------------------------------------------------------------- services
def release_upload_store(*, upload: UploadedFile) -> Path:
    """Check an uploaded release archive and keep it under ``var/imports/uploads/``.

    Raises ``ValidationError`` on the ``archive`` field; nothing is kept then.
    """
    name = Path(upload.name or "").name
    if not is_archive_name(name):
        raise ValidationError(
            {"archive": f"{name or 'the file'}: expected one of {', '.join(ARCHIVE_SUFFIXES)}"}, code="suffix"
        )
    if upload.size is not None and upload.size > max_upload_bytes():
        raise ValidationError(
            {"archive": f"{name} is {upload.size / MB:.0f} MB; uploads are limited to "
                        f"{settings.IFLLM_IMPORT_MAX_UPLOAD_MB} MB. Copy it to the server and give its path."},
            code="too_large",
        )
    folder = imports_dir() / "uploads" / uuid.uuid4().hex
    folder.mkdir(parents=True)
    target = folder / name
    with target.open("wb") as fh:
        for chunk in upload.chunks():
            fh.write(chunk)
    try:
        archive_check(target)
    except ArchiveError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise ValidationError({"archive": f"{name}: {exc}"}, code="bad_archive") from None
    return target


def release_path_check(*, path: str) -> Path:
    """A release folder or archive on the server, checked; ``ValidationError`` on ``path``."""
    try:
        src = Path(path).expanduser()
        if not src.is_absolute():
            raise ValidationError({"path": f"{path[:200]}: give an absolute path on the server"}, code="relative")
        # Path.is_dir() raises OSError on a name the file system cannot hold (ENAMETOOLONG, ELOOP...).
        kind = "dir" if src.is_dir() else "file" if src.is_file() else ""
    except (OSError, RuntimeError) as exc:  # RuntimeError: expanduser of an unknown ~user
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ValidationError({"path": f"{path[:200]}: not a usable path ({reason})"}, code="bad_path") from None
    if kind == "dir":
        if not (src / MARKER).is_file():
            message = f"{src} holds no {MARKER}: is it an IFllm release folder?"
            raise ValidationError({"path": message}, code="no_release")
        return src
    if kind == "file":
        try:
            archive_check(src)
        except ArchiveError as exc:
            raise ValidationError({"path": f"{src}: {exc}"}, code="bad_archive") from None
        return src
    raise ValidationError({"path": f"{src} does not exist on the server"}, code="missing")


def release_import_start(*, path: str = "", upload: UploadedFile | None = None, user=None) -> Job:
    """Queue the import of a server path or an uploaded archive as a ``collection.import_release`` job.

    The job's ``label`` (what the *Import runs* page shows) is the path staff typed or the
    uploaded file's name, never the folder the job unpacks into.
    """
    if (upload is None) == (not path):
        raise ValidationError("Give either a path on the server or an archive to upload, not both.", code="one_of")
    if upload is not None:
        stored = release_upload_store(upload=upload)
        params = {"path": str(stored), "label": f"upload: {stored.name}", "uploaded": True}
    else:
        src = release_path_check(path=path)
        params = {"path": str(src), "label": str(src), "uploaded": False}
    return job_start(kind=IMPORT_JOB, params=params, user=user)
