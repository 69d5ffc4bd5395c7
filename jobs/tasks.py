"""Jobs of the jobs app itself: a demo used by the tests and to check a deployment's workers."""

from __future__ import annotations

import time

from .runner import JobContext, job_task


@job_task("jobs.count", permission="jobs.add_job")
def count(ctx: JobContext, *, n: int = 10, fail: bool = False, delay: float = 0.0) -> dict:
    """Count to ``n`` reporting progress; with ``fail`` raise half way (to exercise FAILED)."""
    for i in range(1, n + 1):
        if fail and i > n // 2:
            raise RuntimeError(f"failing on purpose at {i} of {n}")
        if delay:
            time.sleep(delay)
        ctx.log(f"counted {i}")
        ctx.progress(100 * i / n, f"{i} of {n}")
    return {"counted": n}
