"""Background jobs of the collection app (``collection.*``, default queue).

``collection.import_release`` is idempotent because ``release_import`` is (rows are keyed by
their release ids, chunks replaced per task), which is what makes the runner's ``acks_late``
redelivery safe.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from jobs.runner import JobContext, job_task


@job_task("collection.import_release", permission="collection.add_importrun")
def import_release(ctx: JobContext, *, path: str, label: str = "", uploaded: bool = False) -> dict:
    """Import a release folder or archive (``path`` on the server) with progress.

    An archive is unpacked into ``var/imports/unpacked/job-<pk>/``, removed afterwards whatever
    happens. An uploaded archive is deleted once its import succeeded; after a failure it is kept,
    so that *Re-run* in the Jobs admin can try again.
    """
    from .services.release_import import release_import
    from .services.release_upload import archive_unpack, imports_dir

    src = Path(path)
    unpacked = imports_dir() / "unpacked" / f"job-{ctx.job.pk}"
    try:
        if src.is_file():
            ctx.progress(1, f"unpacking {label or src.name}")
            root = archive_unpack(src, unpacked)
        else:
            root = src
        ctx.progress(3, "reading the tables")

        def progress(done: int, total: int) -> None:
            ctx.progress(3 + 96 * done / max(total, 1), f"{done} of {total} task folders")

        # One process: a Celery worker's pool processes may not start children of their own.
        summary = release_import(path=root, n_jobs=1, progress=progress, user=ctx.job.created_by, label=label)
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)
    if uploaded:
        shutil.rmtree(src.parent, ignore_errors=True)
    ctx.log(f"import run {summary.run_id}: {dict(summary.counts)}")
    return {"import_run": summary.run_id, "source": label or path, **summary.as_dict()}
