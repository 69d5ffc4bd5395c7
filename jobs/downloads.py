"""Downloads of what jobs and exports write to folders on the server.

Staff rarely have shell access to the server, so an export that only names a server path is of
no use to them: these helpers send such a folder as one zip file. The zip is spooled to a
temporary file (exports with trajectories run to hundreds of MB) and streamed from there.
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

from django.conf import settings
from django.http import FileResponse

from .runner import DOWNLOADABLE_KINDS  # job kinds declare it: job_task(download_permission=...)

__all__ = ["DOWNLOADABLE_KINDS", "job_output_folder", "zip_folders", "zip_response"]


def zip_folders(folders: dict[str, Path]) -> tempfile.SpooledTemporaryFile:
    """A zip of each folder under its name (``{"dataset-3": Path(...)}``), rewound for reading."""
    out = tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, folder in folders.items():
            for file in sorted(p for p in folder.rglob("*") if p.is_file()):
                zf.write(file, f"{name}/{file.relative_to(folder).as_posix()}")
    out.seek(0)
    return out


def zip_response(folders: dict[str, Path], filename: str) -> FileResponse:
    """An attachment response with the zip of ``folders`` (see :func:`zip_folders`)."""
    return FileResponse(zip_folders(folders), as_attachment=True, filename=filename, content_type="application/zip")


def job_output_folder(job) -> Path | None:  # jobs.models.Job
    """The folder a finished job wrote, if it is downloadable: a known kind, succeeded, and under
    ``VAR_DIR`` (a path from a job's params is never trusted to point anywhere else)."""
    if job.kind not in DOWNLOADABLE_KINDS or job.status != job.Status.SUCCEEDED:
        return None
    raw = (job.params or {}).get("path")
    if not raw:
        return None
    folder = Path(raw).resolve()
    if not folder.is_dir() or not folder.is_relative_to(Path(settings.VAR_DIR).resolve()):
        return None
    return folder
